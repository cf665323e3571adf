# Kafka service module for scripts/services (sourced after common.sh, not run).
#
# Runs Apache Kafka 4.x as one KRaft node (combined broker + controller) on 127.0.0.1 with plain
# `java -cp`, from the Maven Central jars (org.apache.kafka:kafka_2.13 + runtime deps + log4j2),
# fetched once by Maven into $CACHE_DIR/kafka-<version>/libs (see kafka-pom.xml next to this file).
# State (server.properties, KRaft/log data, logs, pid file) lives in $SERVICES_DIR/kafka.
# Topics are never created implicitly (auto.create.topics.enable=false): the DAGs' setup code does it.

KAFKA_VERSION="${DATAMOVER_KAFKA_VERSION:-4.4.0}"
KAFKA_START_TIMEOUT="${DATAMOVER_KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${DATAMOVER_KAFKA_STOP_TIMEOUT:-20}"
KAFKA_HEAP_OPTS="${DATAMOVER_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

_kafka_moddir() { printf '%s\n' "$ROOT_DIR/scripts/services.d"; }
_kafka_home() { printf '%s\n' "$CACHE_DIR/kafka-$KAFKA_VERSION"; }
_kafka_libs() { printf '%s\n' "$CACHE_DIR/kafka-$KAFKA_VERSION/libs"; }
_kafka_state() { printf '%s\n' "$SERVICES_DIR/kafka"; }
_kafka_pidfile() { printf '%s\n' "$SERVICES_DIR/kafka/kafka.pid"; }

# _kafka_java_ok BIN: true when BIN is a java >= 17 (Kafka 4 brokers need 17+).
_kafka_java_ok() {
    local v
    [ -x "$1" ] || return 1
    v="$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
    [ -n "$v" ] && [ "${v%%.*}" -ge 17 ] 2>/dev/null
}

# _kafka_java: print the path of a java >= 17 ($JAVA_HOME, PATH, then Debian's openjdk-17), or fail.
_kafka_java() {
    local c
    for c in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null)" /usr/lib/jvm/java-*-openjdk-*/bin/java; do
        [ -n "$c" ] && _kafka_java_ok "$c" && { printf '%s\n' "$c"; return 0; }
    done
    return 1
}

# _kafka_ours: true when the pid file names a live process that is our Kafka (guards against pid reuse).
_kafka_ours() {
    local pidfile pid cmdline
    pidfile="$(_kafka_pidfile)"
    pid_alive "$pidfile" || return 1
    pid="$(cat "$pidfile")"
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    case "$cmdline" in
        *" kafka.Kafka $(_kafka_state)/server.properties"*) return 0 ;;
        *) return 1 ;;
    esac
}

# _kafka_fail WHY [LOG_OFFSET]: print "kafka: WHY"; with LOG_OFFSET (server.log size before this start)
# also print the tail of this start's console output and server.log. Returns 0 (callers `return 1`
# themselves), so a caller running under `set -e` still gets to clean up after it.
_kafka_fail() {
    local state f
    state="$(_kafka_state)"
    printf 'kafka: %s\n' "$1" >&2
    [ $# -ge 2 ] || return 0
    f="$state/logs/kafka.out"
    if [ -s "$f" ]; then
        printf -- '--- last lines of %s ---\n' "$f" >&2
        tail -n 20 "$f" >&2
    fi
    f="$state/logs/server.log"
    if [ -s "$f" ] && [ "$(stat -c %s "$f")" -gt "$2" ]; then
        printf -- '--- last lines of %s ---\n' "$f" >&2
        tail -c "+$(($2 + 1))" "$f" | tail -n 25 >&2
    fi
    return 0
}

kafka_install() {
    local java libs home tmp mvnlog
    if ! _kafka_java >/dev/null; then
        apt_install openjdk-17-jre-headless
        _kafka_java >/dev/null || { echo "kafka: no java >= 17 found after installing openjdk-17-jre-headless" >&2; return 1; }
    fi
    command -v mvn >/dev/null 2>&1 || apt_install maven
    command -v mvn >/dev/null 2>&1 || { echo "kafka: mvn not found after installing maven" >&2; return 1; }

    home="$(_kafka_home)"
    libs="$(_kafka_libs)"
    if [ -f "$libs/.complete" ] && [ -f "$libs/kafka_2.13-$KAFKA_VERSION.jar" ]; then
        return 0
    fi
    log "kafka: fetching kafka_2.13 $KAFKA_VERSION and its runtime jars from Maven Central"
    mkdir -p "$home"
    tmp="$home/libs.tmp.$$"
    mvnlog="$home/mvn.log"
    rm -rf "$tmp"
    # Own local repository under the cache, so nothing outside the project's state is touched.
    # JAVA_HOME for mvn: the one we run Kafka with.
    java="$(_kafka_java)"
    if ! JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$java")")")" \
        mvn -q -B -Dstyle.color=never \
            -f "$(_kafka_moddir)/kafka-pom.xml" \
            -Dmaven.repo.local="$CACHE_DIR/m2" \
            -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
            >"$mvnlog" 2>&1; then
        rm -rf "$tmp"
        echo "kafka: mvn dependency:copy-dependencies failed (kafka_2.13 $KAFKA_VERSION); see $mvnlog" >&2
        tail -n 30 "$mvnlog" >&2
        return 1
    fi
    if [ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]; then
        rm -rf "$tmp"
        echo "kafka: kafka_2.13-$KAFKA_VERSION.jar missing after mvn run; see $mvnlog" >&2
        return 1
    fi
    touch "$tmp/.complete"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    log "kafka: $(ls "$libs" | grep -c '\.jar$') jars in $libs"
}

# _kafka_write_config STATE: (re)generate server.properties; safe on every start.
_kafka_write_config() {
    local state="$1"
    cat >"$state/server.properties.tmp" <<EOF
# Generated by scripts/services.d/kafka.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$state/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=104857600
EOF
    mv "$state/server.properties.tmp" "$state/server.properties"
}

# _kafka_wait_ready PID LOGFILE OFFSET: wait for "Kafka Server started" past OFFSET plus an open port.
# (grep -c, not -q: it reads all input, so `set -o pipefail` callers never see tail's SIGPIPE.)
_kafka_wait_ready() {
    local pid="$1" logf="$2" off="$3" i
    for ((i = 0; i < KAFKA_START_TIMEOUT * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || return 2
        if [ -f "$logf" ] && tail -c "+$((off + 1))" "$logf" 2>/dev/null | grep -c 'Kafka Server started' >/dev/null \
            && port_busy "$KAFKA_PORT"; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

kafka_up() {
    local state pidfile java libs cid off pid rc
    state="$(_kafka_state)"
    pidfile="$(_kafka_pidfile)"

    if _kafka_ours; then
        if port_busy "$KAFKA_PORT"; then
            log "kafka: already running (pid $(cat "$pidfile")), bootstrap 127.0.0.1:$KAFKA_PORT"
            return 0
        fi
        # Started by an earlier call that has not finished starting yet: wait for it.
        wait_port "$KAFKA_PORT" "$KAFKA_START_TIMEOUT" kafka && return 0
        _kafka_fail "pid $(cat "$pidfile") is running but 127.0.0.1:$KAFKA_PORT does not answer" 0
        return 1
    fi
    rm -f "$pidfile"

    kafka_install || return 1
    java="$(_kafka_java)" || { _kafka_fail "no java >= 17"; return 1; }
    libs="$(_kafka_libs)"

    if port_busy "$KAFKA_PORT"; then
        _kafka_fail "127.0.0.1:$KAFKA_PORT is already in use by another process (set DATAMOVER_KAFKA_PORT)"
        return 1
    fi
    if port_busy "$KAFKA_CONTROLLER_PORT"; then
        _kafka_fail "127.0.0.1:$KAFKA_CONTROLLER_PORT is already in use by another process (set DATAMOVER_KAFKA_CONTROLLER_PORT)"
        return 1
    fi

    mkdir -p "$state/data" "$state/logs"
    _kafka_write_config "$state"

    local jvm_common=(
        -Djava.awt.headless=true
        -Dkafka.logs.dir="$state/logs"
        -Dlog4j2.configurationFile="$(_kafka_moddir)/kafka-log4j2.properties"
        -cp "$libs/*"
    )

    # Format the KRaft storage once (static voter quorum, so no --standalone); keep the cluster id.
    if [ ! -f "$state/data/meta.properties" ]; then
        if [ -s "$state/cluster.id" ]; then
            cid="$(cat "$state/cluster.id")"
        else
            cid="$("$java" -Xmx128m "${jvm_common[@]}" kafka.tools.StorageTool random-uuid 2>>"$state/logs/format.log")" \
                || { _kafka_fail "could not generate a cluster id (see $state/logs/format.log)"; return 1; }
            printf '%s\n' "$cid" >"$state/cluster.id"
        fi
        log "kafka: formatting KRaft storage in $state/data (cluster id $cid)"
        if ! "$java" -Xmx256m "${jvm_common[@]}" kafka.tools.StorageTool format \
            --config "$state/server.properties" --cluster-id "$cid" --ignore-formatted \
            >>"$state/logs/format.log" 2>&1; then
            _kafka_fail "storage format failed (see $state/logs/format.log)"
            tail -n 20 "$state/logs/format.log" >&2
            return 1
        fi
    fi

    off=0
    [ -f "$state/logs/server.log" ] && off="$(stat -c %s "$state/logs/server.log")"
    log "kafka: starting Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT"
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
    nohup "$java" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        "${jvm_common[@]}" kafka.Kafka "$state/server.properties" \
        </dev/null >"$state/logs/kafka.out" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$pidfile"

    rc=0
    _kafka_wait_ready "$pid" "$state/logs/server.log" "$off" || rc=$?
    case "$rc" in
        0)
            log "kafka: up (pid $pid), bootstrap 127.0.0.1:$KAFKA_PORT"
            return 0 ;;
        2)
            rm -f "$pidfile"
            _kafka_fail "the server exited during startup" "$off"
            return 1 ;;
        *)
            _kafka_fail "not ready after ${KAFKA_START_TIMEOUT}s (stopping it)" "$off"
            stop_pidfile "$pidfile" "$KAFKA_STOP_TIMEOUT"
            # Seen once after a restart: the KRaft controller stalled on its own registration
            # (NotControllerException naming itself) and never announced the broker; a second start works.
            if [ -z "${_KAFKA_RETRIED:-}" ]; then
                log "kafka: starting once more"
                _KAFKA_RETRIED=1 kafka_up
                return $?
            fi
            return 1 ;;
    esac
}

kafka_down() {
    local pidfile
    pidfile="$(_kafka_pidfile)"
    if _kafka_ours; then
        log "kafka: stopping (pid $(cat "$pidfile"))"
        stop_pidfile "$pidfile" "$KAFKA_STOP_TIMEOUT"
    else
        # Missing, dead, or a reused pid that is not our Kafka: never signal it, just forget it.
        rm -f "$pidfile"
    fi
    return 0
}

kafka_status() {
    if _kafka_ours && port_busy "$KAFKA_PORT"; then
        echo "kafka: running, bootstrap 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    if _kafka_ours; then
        echo "kafka: starting or unresponsive (pid $(cat "$(_kafka_pidfile)")), 127.0.0.1:$KAFKA_PORT not answering"
        return 1
    fi
    echo "kafka: stopped"
    return 1
}

kafka_env() {
    echo "export DATAMOVER_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT"
}
