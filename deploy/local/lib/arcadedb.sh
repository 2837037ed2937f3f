# shellcheck shell=bash
# ArcadeDB with its Bolt plugin (the local Neo4j stand-in) for one instance, on the wheel's own JRE.

arcadedb_paths() {
    ARCADEDB_HOME=$STACK_DIR/pkgs/arcadedb-embedded/arcadedb_embedded
    ARCADEDB_ROOT=$RUN_DIR/arcadedb
    ARCADEDB_LOG=$RUN_DIR/arcadedb.log
    ARCADEDB_PIDFILE=$RUN_DIR/arcadedb.pid
}

arcadedb_pid() {
    arcadedb_paths
    live_pid "$ARCADEDB_PIDFILE" "-Darcadedb.server.rootPath=$ARCADEDB_ROOT "
}

arcadedb_alive() { arcadedb_pid >/dev/null; }
arcadedb_starting() { pidfile_alive "$ARCADEDB_PIDFILE"; }

# Not the Bolt port: authentication fails for a while after it opens.
arcadedb_ready() {
    [[ $(http_status "$ARCADEDB_HTTP_PORT" /api/v1/ready) == 204 ]]
}

arcadedb_start() {
    arcadedb_paths
    if arcadedb_alive; then
        check_recorded_port arcadedb "$RUN_DIR/arcadedb.port" "$ARCADEDB_HTTP_PORT $BOLT_PORT"
    else
        require_free_port "arcadedb (http)" "$ARCADEDB_HTTP_PORT"
        require_free_port "arcadedb (bolt)" "$BOLT_PORT"
        local java=$ARCADEDB_HOME/jre/bin/java
        [[ -x $java ]] || die "ArcadeDB is not installed at $ARCADEDB_HOME: run '$0 install'"
        mkdir -p "$ARCADEDB_ROOT/databases"
        echo "$ARCADEDB_HTTP_PORT $BOLT_PORT" >"$RUN_DIR/arcadedb.port"
        # The neo4j database and user exist from the first start on; tests add their own databases.
        # The trailing space in rootPath=... lets arcadedb_pid match this exact instance.
        local -a java_opts
        read -r -a java_opts <<<"$ARCADEDB_JAVA_OPTS"
        (
            cd "$ARCADEDB_ROOT" || exit 1
            exec setsid "$java" "-Xmx$ARCADEDB_HEAP" ${java_opts[@]+"${java_opts[@]}"} \
                --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
                --add-opens=java.base/java.nio=ALL-UNNAMED \
                --add-opens=java.base/java.nio.channels.spi=ALL-UNNAMED \
                --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED \
                --add-opens=java.base/java.lang=ALL-UNNAMED \
                -Djava.awt.headless=true \
                "-Darcadedb.server.rootPath=$ARCADEDB_ROOT" \
                "-Darcadedb.server.databaseDirectory=$ARCADEDB_ROOT/databases" \
                "-Darcadedb.server.rootPassword=$ARCADEDB_ROOT_PASSWORD" \
                -Darcadedb.server.httpIncomingHost=127.0.0.1 \
                "-Darcadedb.server.httpIncomingPort=$ARCADEDB_HTTP_PORT" \
                -Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin \
                -Darcadedb.bolt.host=127.0.0.1 \
                "-Darcadedb.bolt.port=$BOLT_PORT" \
                -Darcadedb.bolt.defaultDatabase=neo4j \
                "-Darcadedb.server.defaultDatabases=neo4j[neo4j:$GRAPH_PASSWORD:admin]" \
                -cp "$ARCADEDB_HOME/jars/*" \
                com.arcadedb.server.ArcadeDBServer
        ) </dev/null >>"$ARCADEDB_LOG" 2>&1 9>&- &
        echo $! >"$ARCADEDB_PIDFILE"
    fi
    wait_ready arcadedb "$ARCADEDB_LOG" arcadedb_starting arcadedb_ready
}

arcadedb_stop() {
    local pid
    arcadedb_paths
    if pid=$(arcadedb_pid); then
        terminate_pid arcadedb "$pid"
        note "arcadedb stopped (pid $pid)"
    fi
    rm -f "$ARCADEDB_PIDFILE" "$RUN_DIR/arcadedb.port"
}

arcadedb_status() {
    arcadedb_paths
    local pid http=$ARCADEDB_HTTP_PORT bolt=$BOLT_PORT
    if pid=$(arcadedb_pid); then
        { read -r http bolt <"$RUN_DIR/arcadedb.port"; } 2>/dev/null || true
        printf '%-9s running  bolt=%s http=%s pid=%s\n' arcadedb "$bolt" "$http" "$pid"
    else
        printf '%-9s stopped  bolt=%s http=%s\n' arcadedb "$BOLT_PORT" "$ARCADEDB_HTTP_PORT"
        return 1
    fi
}
