# The two commands of the README are `make run` and `make test`; CI (.ci/run) calls the same
# targets. Every target has a `## help` line: `make help` lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

BROKER := deploy/local/broker.sh
TEST_BROKER_DIR := .devstack/test-broker

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install what the stack needs (PostgreSQL running, Tansu broker, cargo-nextest)
	@deploy/local/deps.sh

.PHONY: run
run: deps ## Start the whole dev stack, feed it realistic webhooks, print a summary; Ctrl-C stops it
	@deploy/local/run.sh

.PHONY: test
test: deps ## Run every test against PostgreSQL and a real Kafka-API broker
	@cargo build --workspace --bins --quiet
	@trap '$(BROKER) stop $(TEST_BROKER_DIR)' EXIT; \
	  rm -rf $(TEST_BROKER_DIR); \
	  export TEST_KAFKA_BROKERS=$$($(BROKER) start $(TEST_BROKER_DIR)); \
	  cargo nextest run --workspace --no-fail-fast

.PHONY: bench
bench: deps ## Rebuild 1,000,000 events from the log (REBUILD_EVENTS, REBUILD_PARTITIONS to change); prints events/s and peak memory
	@cargo build --release --quiet -p projector
	@trap '$(BROKER) stop $(TEST_BROKER_DIR)' EXIT; \
	  rm -rf $(TEST_BROKER_DIR); \
	  export TEST_KAFKA_BROKERS=$$($(BROKER) start $(TEST_BROKER_DIR)); \
	  cargo bench -p omie-sync-e2e --bench rebuild

.PHONY: lint
lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: schemas
schemas: ## Regenerate schemas/ (event JSON Schemas, OpenAPI documents) from the Rust code
	UPDATE_SCHEMAS=1 cargo test -p omie-sync-events --test schemas_drift
	UPDATE_SCHEMAS=1 cargo test -p omie-sync-e2e --test openapi the_checked_in_documents_match_the_code

.PHONY: token
token: ## Print an admin token for the demo tenant (TENANT=<uuid> ROLE=admin|financeiro to change)
	@cargo build --quiet --workspace --bins
	@target/debug/devstack token --tenant $${TENANT:-00000000-0000-4000-8000-00000000a001} --role $${ROLE:-admin}

.PHONY: clean
clean: ## Remove build output and the dev stack's data
	cargo clean
	rm -rf .devstack
