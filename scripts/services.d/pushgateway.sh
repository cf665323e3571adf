# Prometheus Pushgateway: Debian's prometheus-pushgateway binary on $PUSHGATEWAY_PORT (not its systemd unit).

PUSHGATEWAY_PID="$SERVICES_DIR/pushgateway/pushgateway.pid"

pushgateway_install() { apt_install prometheus-pushgateway; }

pushgateway_up() {
    mkdir -p "$SERVICES_DIR/pushgateway"
    pid_alive "$PUSHGATEWAY_PID" && return 0
    if port_busy "$PUSHGATEWAY_PORT"; then log "pushgateway: port $PUSHGATEWAY_PORT is taken"; return 1; fi
    nohup /usr/bin/prometheus-pushgateway --web.listen-address="127.0.0.1:$PUSHGATEWAY_PORT" \
        --persistence.file="$SERVICES_DIR/pushgateway/metrics.store" \
        >"$SERVICES_DIR/pushgateway/pushgateway.log" 2>&1 </dev/null &
    echo $! >"$PUSHGATEWAY_PID"
    wait_port "$PUSHGATEWAY_PORT" 30 pushgateway \
        || { log "pushgateway: did not answer on port $PUSHGATEWAY_PORT"
             tail -n 20 "$SERVICES_DIR/pushgateway/pushgateway.log" >&2; return 1; }
}

pushgateway_down() { stop_pidfile "$PUSHGATEWAY_PID" 10; }

pushgateway_status() {
    if pid_alive "$PUSHGATEWAY_PID"; then echo "pushgateway: running, http://127.0.0.1:$PUSHGATEWAY_PORT"
    else echo "pushgateway: stopped"; return 1; fi
}

pushgateway_env() { echo "export DATAMOVER_PUSHGATEWAY_URL=http://127.0.0.1:$PUSHGATEWAY_PORT"; }
