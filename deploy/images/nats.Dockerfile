# NATS with JetStream from the pinned nats-server of the local stack; arguments as the official image.
ARG BASE
FROM ${BASE}
RUN useradd --system --uid 10002 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin nats \
 && install -d -o nats -g nats /data
COPY nats-server /usr/local/bin/nats-server
USER nats:nats
EXPOSE 4222 6222 8222
ENTRYPOINT ["nats-server"]
CMD ["-js", "-sd", "/data", "-m", "8222"]
LABEL org.opencontainers.image.title="kb-mirror nats"
