# shellcheck shell=bash
# Shared helpers for deploy/local/stack: messages, instance config, process and port checks.

die() {
    echo "stack: $*" >&2
    exit 1
}

note() {
    echo "stack: $*" >&2
}

is_root() {
    [[ $(id -u) -eq 0 ]]
}

# Ports and settings of an instance. Every port can be overridden from the environment so that
# two stacks can run side by side. Sets globals used by the other files.
# shellcheck disable=SC2034
load_instance_config() {
    local nats nats_mon pg bolt http heap
    case "$INSTANCE" in
        dev) nats=4222 nats_mon=8222 pg=5433 bolt=7687 http=2480 heap=512m ;;
        test) nats=14222 nats_mon=18222 pg=15433 bolt=17687 http=12480 heap=768m ;;
        bench) nats=24222 nats_mon=28222 pg=25433 bolt=27687 http=22480 heap=1g ;;
        *)
            # No default ports for other names: guessing would collide with dev or test.
            local v
            for v in KB_STACK_NATS_PORT KB_STACK_NATS_MONITOR_PORT KB_STACK_PG_PORT \
                KB_STACK_BOLT_PORT KB_STACK_ARCADEDB_HTTP_PORT; do
                [[ -n ${!v:-} ]] || die "instance '$INSTANCE' has no default ports: set $v (and the other KB_STACK_*_PORT variables)"
            done
            heap=512m
            ;;
    esac
    NATS_PORT=${KB_STACK_NATS_PORT:-$nats}
    NATS_MONITOR_PORT=${KB_STACK_NATS_MONITOR_PORT:-$nats_mon}
    PG_PORT=${KB_STACK_PG_PORT:-$pg}
    BOLT_PORT=${KB_STACK_BOLT_PORT:-$bolt}
    ARCADEDB_HTTP_PORT=${KB_STACK_ARCADEDB_HTTP_PORT:-$http}
    ARCADEDB_HEAP=${KB_STACK_ARCADEDB_HEAP:-$heap}
    # Extra JVM options for the graph server (space-separated), e.g. a garbage collector to try.
    ARCADEDB_JAVA_OPTS=${KB_STACK_ARCADEDB_JAVA_OPTS:-}
    GRAPH_PASSWORD=${KB_STACK_GRAPH_PASSWORD:-kb-local-password}
    ARCADEDB_ROOT_PASSWORD=${KB_STACK_ARCADEDB_ROOT_PASSWORD:-$GRAPH_PASSWORD}
    READY_TIMEOUT=${KB_STACK_TIMEOUT:-90}
    STOP_TIMEOUT=${KB_STACK_STOP_TIMEOUT:-20}

    local p
    for p in "$NATS_PORT" "$NATS_MONITOR_PORT" "$PG_PORT" "$BOLT_PORT" "$ARCADEDB_HTTP_PORT"; do
        if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
            die "invalid port '$p'"
        fi
    done
    # ArcadeDB rejects root passwords shorter than 8 characters at first start.
    ((${#ARCADEDB_ROOT_PASSWORD} >= 8)) || die "the ArcadeDB root password must have at least 8 characters"

    RUN_DIR=$STACK_DIR/run/$INSTANCE
}

# Status code of GET http://127.0.0.1:PORT/PATH, or nothing if nobody answers. Plain bash so that
# a fresh machine needs no curl.
http_status() (
    local port=$1 path=$2 proto code
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
    IFS=' ' read -r -t 5 proto code _ <&3 || exit 1
    [[ $proto == HTTP/* ]] || exit 1
    echo "$code"
) 2>/dev/null

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True if PID is alive and its command line contains PATTERN (guards against reused pids).
pid_matches() {
    local pid=$1 pattern=$2 cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == *"$pattern"* ]]
}

# Pid from PIDFILE if that process is alive and matches PATTERN; fails otherwise.
live_pid() {
    local pidfile=$1 pattern=$2 pid
    { read -r pid <"$pidfile"; } 2>/dev/null || return 1
    pid_matches "$pid" "$pattern" || return 1
    echo "$pid"
}

# TERM, wait up to STOP_TIMEOUT seconds, then KILL.
terminate_pid() {
    local name=$1 pid=$2 deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            note "$name (pid $pid) ignored TERM for ${STOP_TIMEOUT}s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
}

# Polls READY_FN until it succeeds; fails with the log tail if ALIVE_FN fails or time runs out.
wait_ready() {
    local name=$1 logfile=$2 alive_fn=$3 ready_fn=$4 deadline
    deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        "$ready_fn" && return 0
        if ! "$alive_fn"; then
            startup_failed "$name" "$logfile" "$name exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            startup_failed "$name" "$logfile" "$name was not ready after ${READY_TIMEOUT}s"
        fi
        sleep 0.1
    done
}

startup_failed() {
    local name=$1 logfile=$2 msg=$3
    {
        echo "stack: FAILED to start $name for instance '$INSTANCE': $msg"
        if [[ -s $logfile ]]; then
            echo "stack: last lines of $logfile:"
            tail -n 40 "$logfile" | sed 's/^/    /'
        else
            echo "stack: (no log at $logfile)"
        fi
    } >&2
    exit 1
}

# Refuses to start a server on a port somebody else is listening on.
require_free_port() {
    local name=$1 port=$2
    if port_in_use "$port"; then
        die "cannot start $name for instance '$INSTANCE': port $port is already in use by another process (override it with the KB_STACK_*_PORT variables)"
    fi
}

# The port a running server of this instance was started with (recorded at start).
check_recorded_port() {
    local name=$1 file=$2 want=$3 have
    { read -r have <"$file"; } 2>/dev/null || return 0
    if [[ $have != "$want" ]]; then
        die "$name for instance '$INSTANCE' is already running on port $have, not $want: stop the instance first"
    fi
}

# Our directories are readable by everyone so that the Postgres service user can enter them
# whatever the umask.
make_stack_dir() {
    install -d -m 755 "$STACK_DIR" "$STACK_DIR/pkgs" "$STACK_DIR/run"
}

# True if the process in PIDFILE exists and is not a zombie. Used while a server starts: until
# it execs, its command line is still ours, so pid_matches would not recognise it yet.
pidfile_alive() {
    local pid stat
    # Plain `read` with a guarded redirection: a failed $(<file) would end the script.
    { read -r pid <"$1"; } 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}
