# kb-mirror: the two commands are `make up` and `make test` (see README.md).
.PHONY: up test compose-up compose-down lint fmt build stack-install stack-start stack-stop stack-status bench-retrieval bench-embed bench-writers bench-query bench-soak bench-ingest

up:            ## run the whole system on a local stack, watching ./inbox (KB_WATCH_DIR)
	deploy/local/up

test:          ## the whole test suite against real servers it starts itself
	deploy/local/test

# COMPOSE_CLUSTER=1: three NATS nodes, everything at 3 replicas (docker-compose.cluster.yml).
# COMPOSE_HOSTED=1: hosted Postgres and Neo4j instead of the bundled ones (docker-compose.hosted.yml).
COMPOSE_FILES = $(if $(COMPOSE_CLUSTER),-f deploy/compose/docker-compose.cluster.yml) \
	$(if $(COMPOSE_HOSTED),-f deploy/compose/docker-compose.hosted.yml)

compose-up:    ## build every image locally (no registry) and start the compose deployment
	deploy/images/build
	deploy/compose/init-secrets
	mkdir -p "$${WATCH_DIR:-inbox}"
	deploy/compose/compose $(COMPOSE_FILES) up -d --wait

compose-down:  ## stop the compose deployment; the volumes (every store) stay
	deploy/compose/compose $(COMPOSE_FILES) down

lint:          ## formatting and clippy, as CI checks them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

build:
	cargo build --workspace --bins

stack-install:
	deploy/local/stack install
stack-start:
	deploy/local/stack start
stack-stop:
	deploy/local/stack stop
stack-status:
	deploy/local/stack status

# Benchmarks: release builds against the `bench` stack instance; figures in docs/benchmarks.md.
bench-retrieval: ## ingest the corpus transcripts through the pipeline; recall@5/10, parser MB/s
	deploy/local/bench retrieval
bench-embed:     ## local model vs Python sentence-transformers; 1/2/4 embedder workers
	deploy/local/bench embed
bench-writers:   ## pg-writer and graph-writer vs raw COPY / UNWIND MERGE; replay
	deploy/local/bench writers
bench-query:     ## recall/MRR per search mode; kb-query p50/p99/qps at 1/8/32 clients vs raw pgbench ANN
	deploy/local/bench query
bench-ingest:    ## the 60-file transcript set into both stores: ingest_s, edit/delete latency, RSS; vs the peer (KB_BENCH_PEER_PREFIX)
	deploy/local/bench ingest
bench-soak:      ## 20 min of continuous edits and deletes: RSS, stream and store sizes over time; stores = folder
	deploy/local/bench soak
