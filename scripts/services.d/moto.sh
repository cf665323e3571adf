# The AWS S3 (and STS) endpoint: moto in server mode from the project's venv, on $MOTO_PORT.
# Moto keeps its state in memory: a restart starts with no buckets.

MOTO_PID="$SERVICES_DIR/moto/moto.pid"

moto_install() {
    [ -x "$ROOT_DIR/.venv/bin/moto_server" ] \
        || { log "moto: $ROOT_DIR/.venv/bin/moto_server missing - run 'make setup' first"; return 1; }
}

moto_up() {
    mkdir -p "$SERVICES_DIR/moto"
    pid_alive "$MOTO_PID" && return 0
    if port_busy "$MOTO_PORT"; then log "moto: port $MOTO_PORT is taken by another process"; return 1; fi
    nohup "$ROOT_DIR/.venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" \
        >"$SERVICES_DIR/moto/moto.log" 2>&1 </dev/null &
    echo $! >"$MOTO_PID"
    wait_port "$MOTO_PORT" 30 moto \
        || { log "moto: did not answer on port $MOTO_PORT"; tail -n 20 "$SERVICES_DIR/moto/moto.log" >&2; return 1; }
}

moto_down() { stop_pidfile "$MOTO_PID" 10; }

moto_status() {
    if pid_alive "$MOTO_PID"; then echo "moto (AWS S3): running, S3 at http://127.0.0.1:$MOTO_PORT"
    else echo "moto (AWS S3): stopped"; return 1; fi
}

moto_env() {
    echo "export DATAMOVER_S3_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
    echo "export DATAMOVER_S3_ACCESS_KEY=$AWS_TEST_ACCESS_KEY DATAMOVER_S3_SECRET_KEY=$AWS_TEST_SECRET_KEY"
}
