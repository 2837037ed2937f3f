# kb-mirror: the two commands are `make up` and `make test` (see README.md).
.PHONY: up test lint fmt build stack-install stack-start stack-stop stack-status

up:            ## run the whole system on a local stack, watching ./inbox (KB_WATCH_DIR)
	deploy/local/up

test:          ## the whole test suite against real servers it starts itself
	deploy/local/test

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
