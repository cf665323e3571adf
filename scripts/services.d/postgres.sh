# PostgreSQL: Debian's server binaries, a private cluster in $SERVICES_DIR/postgres on $PG_PORT.

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
# The server refuses to run as root, so root runs it as the package's `postgres` user.
pg_run() {
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# pg_home: where the cluster lives: $SERVICES_DIR/postgres, unless root's checkout sits below a
# folder the `postgres` user cannot enter (e.g. a mktemp -d); then a private folder under /tmp named
# after the checkout, recorded in $SERVICES_DIR/postgres/home so status/down find it.
pg_home() {
    local record="$SERVICES_DIR/postgres/home" home="$SERVICES_DIR/postgres"
    [ -s "$record" ] && { cat "$record"; return; }
    mkdir -p "$home"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$home"
        if ! runuser -u postgres -- test -w "$home" 2>/dev/null; then
            home="/tmp/datamover-pg-$(printf '%s' "$ROOT_DIR" | md5sum | cut -c1-12)"
            mkdir -p "$home" && chown postgres: "$home" && chmod 700 "$home"
        fi
    fi
    echo "$home" >"$record"
    echo "$home"
}

postgres_install() {
    [ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/initdb" ] && return 0
    apt_install postgresql postgresql-client
}

postgres_up() {
    local bin home; bin="$(pg_bindir)"
    [ -x "$bin/pg_ctl" ] || { log "postgres: server binaries not found under /usr/lib/postgresql"; return 1; }
    home="$(pg_home)"
    local PG_DATA_DIR="$home/data" PG_LOG="$home/postgres.log"
    if [ ! -s "$PG_DATA_DIR/PG_VERSION" ]; then
        local pwfile="$home/.pw"
        printf '%s\n' "$PG_PASSWORD" > "$pwfile"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"
        pg_run "$bin/initdb" -D "$PG_DATA_DIR" -U "$PG_USER" --pwfile="$pwfile" -A scram-sha-256 \
            -E UTF8 --locale=C.UTF-8 >"$SERVICES_DIR/postgres/initdb.log" 2>&1 \
            || { log "postgres: initdb failed"; tail -n 20 "$SERVICES_DIR/postgres/initdb.log" >&2
                 rm -f "$pwfile"; return 1; }
        rm -f "$pwfile"
        cat >>"$PG_DATA_DIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$home'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
max_connections = 200
CONF
    fi
    if pg_run "$bin/pg_ctl" -D "$PG_DATA_DIR" status >/dev/null 2>&1; then return 0; fi
    if port_busy "$PG_PORT"; then log "postgres: port $PG_PORT is taken by another process"; return 1; fi
    pg_run "$bin/pg_ctl" -D "$PG_DATA_DIR" -l "$PG_LOG" -w -t 60 start >/dev/null \
        || { log "postgres: pg_ctl start failed"; tail -n 20 "$PG_LOG" >&2; return 1; }
    PGPASSWORD="$PG_PASSWORD" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -qtAc \
        "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'" | grep -q 1 \
        || PGPASSWORD="$PG_PASSWORD" "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DATABASE" \
        || { log "postgres: could not create database $PG_DATABASE"; return 1; }
}

postgres_down() {
    local bin PG_DATA_DIR; bin="$(pg_bindir)"; PG_DATA_DIR="$(pg_home)/data"
    [ -s "$PG_DATA_DIR/postmaster.pid" ] || return 0
    pg_run "$bin/pg_ctl" -D "$PG_DATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
}

postgres_status() {
    local bin PG_DATA_DIR; bin="$(pg_bindir)"; PG_DATA_DIR="$(pg_home)/data"
    if [ -n "$bin" ] && [ -s "$PG_DATA_DIR/PG_VERSION" ] && pg_run "$bin/pg_ctl" -D "$PG_DATA_DIR" status >/dev/null 2>&1; then
        echo "postgres: running, postgresql://$PG_USER@127.0.0.1:$PG_PORT/$PG_DATABASE"
    else
        echo "postgres: stopped"; return 1
    fi
}

postgres_env() {
    echo "export DATAMOVER_PG_DSN='postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE'"
    echo "export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=$PG_USER PGPASSWORD='$PG_PASSWORD' PGDATABASE=$PG_DATABASE"
}
