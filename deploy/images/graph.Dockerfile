# The Bolt graph server of the local stack (ArcadeDB with its Bolt plugin, on the wheel's JRE),
# taking NEO4J_AUTH(_FILE) like the official Neo4j image; Bolt on 7687, HTTP on 7474, data in /data.
ARG BASE
FROM ${BASE}
RUN useradd --system --uid 10003 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin arcadedb \
 && install -d -o arcadedb -g arcadedb /data
COPY jre/ /opt/arcadedb/jre/
COPY jars/ /opt/arcadedb/jars/
COPY entrypoint /usr/local/bin/kb-graph-entrypoint
USER arcadedb:arcadedb
EXPOSE 7474 7687
ENTRYPOINT ["kb-graph-entrypoint"]
LABEL org.opencontainers.image.title="kb-mirror graph"
