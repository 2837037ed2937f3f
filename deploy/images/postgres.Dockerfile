# PostgreSQL 18 + pgvector from the local stack's pinned wheel (pgvector rebuilt for any x86-64).
# Same variables and data layout as the official PostgreSQL 18 images: POSTGRES_USER,
# POSTGRES_PASSWORD(_FILE), POSTGRES_DB; the volume goes on /var/lib/postgresql.
ARG BASE
FROM ${BASE}
RUN useradd --system --uid 999 --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && install -d -o postgres -g postgres -m 755 /var/lib/postgresql
COPY pg/ /usr/lib/kb-postgres/
COPY entrypoint /usr/local/bin/kb-postgres-entrypoint
ENV PATH=/usr/lib/kb-postgres/pgserver/pginstall/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/18/docker
USER postgres:postgres
EXPOSE 5432
# Fast shutdown: SIGTERM would wait for every client to disconnect.
STOPSIGNAL SIGINT
ENTRYPOINT ["kb-postgres-entrypoint"]
LABEL org.opencontainers.image.title="kb-mirror postgres"
