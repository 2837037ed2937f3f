# The five services, kb-query and the kb CLI in one image; docker-compose.yml picks the binary.
# Built by deploy/images/build from binaries compiled on the host and the local model.
ARG BASE
FROM ${BASE}
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin kb \
 && install -d -o kb -g kb /inbox
COPY bin/ /usr/local/bin/
COPY model/ /opt/kb/model/
ENV KB_EMBEDDER__MODEL_DIR=/opt/kb/model/all-minilm-l6-v2 \
    KB_EMBEDDER__ONNXRUNTIME_LIB=/opt/kb/model/libonnxruntime.so \
    KB_TELEMETRY__LOG_FORMAT=json \
    KB_TELEMETRY__METRICS_ADDR=0.0.0.0:9100
USER kb:kb
CMD ["kb", "--help"]
# Last, so that a new revision reuses every layer above.
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kb-mirror" org.opencontainers.image.revision="${REVISION}"
