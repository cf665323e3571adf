# Shared settings for scripts/services and its per-service modules (sourced, not run).
# Every service keeps its state under $STATE_DIR/<service>, binds 127.0.0.1 only,
# and records the pids it started in $STATE_DIR/<service>/*.pid so `down` stops only its own processes.

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${DATAMOVER_STATE_DIR:-$ROOT_DIR/.state}"
# A second checkout (a git worktree) can use the services another checkout started, on the same
# ports, by pointing DATAMOVER_SERVICES_DIR (and DATAMOVER_CACHE_DIR) at that checkout's folders.
SERVICES_DIR="${DATAMOVER_SERVICES_DIR:-$STATE_DIR/services}"
CACHE_DIR="${DATAMOVER_CACHE_DIR:-$STATE_DIR/cache}"

# Loopback ports, all off the services' defaults so a developer's own servers keep theirs.
PG_PORT="${DATAMOVER_PG_PORT:-55432}"
KAFKA_PORT="${DATAMOVER_KAFKA_PORT:-59092}"
KAFKA_CONTROLLER_PORT="${DATAMOVER_KAFKA_CONTROLLER_PORT:-59093}"
CEPH_MON_PORT="${DATAMOVER_CEPH_MON_PORT:-56789}"
CEPH_RGW_PORT="${DATAMOVER_CEPH_RGW_PORT:-57480}"
MOTO_PORT="${DATAMOVER_MOTO_PORT:-55000}"
PUSHGATEWAY_PORT="${DATAMOVER_PUSHGATEWAY_PORT:-59091}"
PROMETHEUS_PORT="${DATAMOVER_PROMETHEUS_PORT:-59090}"
REDIS_PORT="${DATAMOVER_REDIS_PORT:-56379}"

# Fixed local test credentials (never used outside loopback).
PG_USER="datamover"
PG_PASSWORD="datamover-local"
PG_DATABASE="datamover"
CEPH_ACCESS_KEY="CEPHLOCALTESTKEY0001"
CEPH_SECRET_KEY="ceph-local-test-secret-key-not-for-production"
AWS_TEST_ACCESS_KEY="AKIALOCALTESTKEY0001"
AWS_TEST_SECRET_KEY="aws-local-test-secret-key-not-for-production"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# proc_running PID: true when PID is a live process; an exited one that its parent has not reaped
# yet (a zombie, state Z) counts as gone, since the sandbox's init reaps orphans only slowly.
proc_running() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [ "$state" != "Z" ]
}

# pid_alive FILE: true when FILE holds the pid of a running process.
pid_alive() { [ -s "$1" ] && proc_running "$(cat "$1")"; }

# stop_pidfile FILE [SECONDS]: TERM the recorded process, KILL it after SECONDS, remove the file.
stop_pidfile() {
    local file="$1" wait_s="${2:-20}" pid i
    [ -s "$file" ] || { rm -f "$file"; return 0; }
    pid="$(cat "$file")"
    if proc_running "$pid"; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < wait_s * 10; i++)); do proc_running "$pid" || break; sleep 0.1; done
        proc_running "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

# wait_port PORT SECONDS NAME: wait until something accepts TCP connections on 127.0.0.1:PORT.
wait_port() {
    local port="$1" secs="$2" name="$3" i
    for ((i = 0; i < secs * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# reserve_ports: take the services' fixed ports out of the kernel's ephemeral range (32768-60999 on
# Debian, which holds them all). Otherwise, while a service is down, a client retrying 127.0.0.1:PORT can
# be handed PORT itself as its local port and connect to itself (TCP self-connect): the restarted service
# then fails with "Address already in use", and a readiness probe may even take the self-connection for
# the service. Needs root or sudo (a sysctl, until reboot); without them, a warning.
reserve_ports() {
    local file=/proc/sys/net/ipv4/ip_local_reserved_ports current wanted
    wanted="$PG_PORT,$KAFKA_PORT,$KAFKA_CONTROLLER_PORT,$CEPH_MON_PORT,$CEPH_RGW_PORT,$MOTO_PORT"
    wanted+=",$PUSHGATEWAY_PORT,$PROMETHEUS_PORT,$REDIS_PORT"
    wanted+=",$AIRFLOW_API_PORT,$AIRFLOW_WORKER_LOG_PORT,$AIRFLOW_TRIGGER_LOG_PORT"  # (set by scripts/services)
    [ -r "$file" ] || return 0
    current="$(cat "$file")"
    local port missing=0
    for port in ${wanted//,/ }; do
        port_reserved "$port" "$current" || missing=1
    done
    [ "$missing" -eq 1 ] || return 0
    local value="${current:+$current,}$wanted" sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    echo "$value" | $sudo tee "$file" >/dev/null 2>&1 \
        || log "warning: could not reserve the services' ports ($wanted) in $file: a service restarted while clients retry it may find its port taken"
}

# port_reserved PORT LIST: true when PORT is in the kernel's reserved list (single ports and ranges).
port_reserved() {
    local port="$1" item
    for item in ${2//,/ }; do
        if [[ "$item" == *-* ]]; then
            [ "$port" -ge "${item%-*}" ] && [ "$port" -le "${item#*-}" ] && return 0
        elif [ "$item" = "$port" ]; then
            return 0
        fi
    done
    return 1
}

# port_busy PORT: true when something already listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# apt_install PKG...: install missing Debian packages (root or sudo), once.
apt_install() {
    local missing=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing Debian packages: ${missing[*]}"
    if [ ! -f "$STATE_DIR/.apt-updated" ] || [ -n "$(find "$STATE_DIR/.apt-updated" -mmin +720 2>/dev/null)" ]; then
        $sudo apt-get update -qq >&2 || die "apt-get update failed"
        mkdir -p "$STATE_DIR" && touch "$STATE_DIR/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
}
