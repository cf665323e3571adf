# Redis: the Celery broker (and result backend) of `make standalone-celery` and the Celery tests:
# Debian's redis-server on 127.0.0.1:$REDIS_PORT, no persistence (the queue is transient: Airflow's
# scheduler re-queues what a lost broker dropped), not its systemd unit.

REDIS_PID="$SERVICES_DIR/redis/redis.pid"

redis_install() { apt_install redis-server; }

redis_up() {
    mkdir -p "$SERVICES_DIR/redis"
    pid_alive "$REDIS_PID" && return 0
    if port_busy "$REDIS_PORT"; then log "redis: port $REDIS_PORT is taken"; return 1; fi
    nohup /usr/bin/redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
        --save '' --appendonly no --dir "$SERVICES_DIR/redis" --maxmemory 256mb \
        >"$SERVICES_DIR/redis/redis.log" 2>&1 </dev/null &
    echo $! >"$REDIS_PID"
    wait_port "$REDIS_PORT" 30 redis \
        || { log "redis: did not answer on port $REDIS_PORT"; tail -n 20 "$SERVICES_DIR/redis/redis.log" >&2; return 1; }
}

redis_down() { stop_pidfile "$REDIS_PID" 10; }

redis_status() {
    if pid_alive "$REDIS_PID"; then echo "redis: running, redis://127.0.0.1:$REDIS_PORT/0"
    else echo "redis: stopped"; return 1; fi
}

redis_env() {
    echo "export DATAMOVER_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    # The Celery executor's broker and result backend (used when AIRFLOW__CORE__EXECUTOR=CeleryExecutor;
    # the result backend is the metadata database, as Airflow recommends).
    echo "export AIRFLOW__CELERY__BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0"
}
