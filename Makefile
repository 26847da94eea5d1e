# Behalf — the two commands: `make run` and `make test`.
# Both install what is missing on a fresh machine (see ../shared/TOOLCHAIN.md for why
# each tool is installed the way it is).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# wasm-opt comes from npm's binaryen (Debian's is too old and breaks hydration).
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

CARGO_LEPTOS_VERSION := 0.3.10
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/"/, "", $$3); print $$3; exit }' Cargo.lock)
SITE_ROOT := $(CURDIR)/target/site

.PHONY: run test test-phases build tools chromium node-modules fmt lint unit wasm-budget contract e2e bench clean

## run: build in release mode, serve on http://127.0.0.1:3000 (a new database gets its first super user
## and a demo to try, with the logins printed; BEHALF_DEMO=0 starts it empty)
run: build
	LEPTOS_SITE_ROOT=$(SITE_ROOT) ./target/release/behalf serve

## test: formatting, clippy, unit and integration tests (SQLite, and PostgreSQL when
## BEHALF_TEST_POSTGRES_URL is set), then against a fresh release build: the JSON API's
## contract fuzzer (schemathesis) and Playwright
TEST_PHASES := tools chromium fmt lint unit build wasm-budget contract e2e
test: $(TEST_PHASES)

## test-phases: the phases of `make test`, in order (.ci/run times each one)
test-phases:
	@echo $(TEST_PHASES)

## build: the release server and the split, type-erased WebAssembly (pages a member's first
## page does not need are chunks loaded when first visited)
build: tools
	cargo leptos build --release --split

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy -p app -p server --all-targets -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

unit:
	@if [ -z "$${BEHALF_TEST_POSTGRES_URL:-}" ]; then echo "note: BEHALF_TEST_POSTGRES_URL is not set, so the PostgreSQL variants of the database tests will be skipped"; fi
	cargo test -p app -p server

## wasm-budget: what a member's first page downloads (the main .wasm, its JS glue and the
## split loader, gzip -9) must stay within WASM_BUDGET_KB (the end-to-end suite checks
## that the sign-in page and My account fetch no other WebAssembly file)
# Step 12 added the live region Someone is signed in on your behalf (its event stream and
# End it now) to every member page: 297 → 312 KB (docs/benchmarks.md, "Download size").
WASM_BUDGET_KB := 315
wasm-budget:
	@wasm=$$(gzip -9 -c $(SITE_ROOT)/pkg/behalf.wasm | wc -c); \
	js=$$(cat $(SITE_ROOT)/pkg/behalf.js $$(ls $(SITE_ROOT)/pkg/__wasm_split*.js 2>/dev/null) | gzip -9 | wc -c); \
	total=$$(( (wasm + js + 1023) / 1024 )); \
	echo "first page download: behalf.wasm $$(( wasm / 1024 )) KB + JS $$(( js / 1024 )) KB gzip -9 = $$total KB (budget $(WASM_BUDGET_KB) KB)"; \
	[ $$total -le $(WASM_BUDGET_KB) ] || { echo "the first page's download is over budget"; exit 1; }

## contract: schemathesis (PyPI, in a virtualenv under target/) fuzzes the JSON API of the
## release server from its own OpenAPI document: no server error, every response as documented
contract:
	end2end/contract.sh

e2e: chromium node-modules
	end2end/run.sh
	@if [ -z "$${BEHALF_TEST_POSTGRES_URL:-}" ]; then echo "note: BEHALF_TEST_POSTGRES_URL is not set, so the end-to-end suite runs on SQLite only"; \
	elif ! command -v psql >/dev/null; then echo "note: psql is missing (it creates the end-to-end database), so the end-to-end suite runs on SQLite only"; \
	else BEHALF_E2E_DATABASE=postgres end2end/run.sh; fi

tools: node-modules
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@# --debug: cargo-leptos's own release profile (fat LTO, one codegen unit) made this
	@# install the longest phase of a cold CI run; a debug build of it builds our
	@# release site just the same (docs/benchmarks.md, "How long `make test` takes").
	@cargo leptos --version 2>/dev/null | grep -q " $(CARGO_LEPTOS_VERSION)$$" || cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --locked --debug
	@wasm-bindgen --version 2>/dev/null | grep -q " $(WASM_BINDGEN_VERSION)$$" || cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

node-modules:
	@[ -x end2end/node_modules/.bin/playwright ] && [ -x end2end/node_modules/.bin/wasm-opt ] || (cd end2end && npm ci --no-audit --no-fund)

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  apt-get update; \
	  for attempt in 1 2 3; do apt-get install -y chromium && break; echo "apt-get failed (attempt $$attempt), retrying"; sleep 5; done; \
	fi
	@[ -x /usr/bin/chromium ] || { echo "Chromium could not be installed"; exit 1; }

## bench: `behalf bench` (requests, errors, req/s, p50/p95/p99, server memory) against the release
## server on a temporary database of BEHALF_BENCH_MEMBERS seeded members (default 1,000,000):
## sign-in, pages, pages on behalf, the members search, switches, orders on behalf, a sign-in
## flood, the API's alias_login and one-click links; then `audit verify`. SQLite, then PostgreSQL
## when BEHALF_TEST_POSTGRES_URL is set; results in target/bench/sqlite.json and postgres.json
bench: build
	end2end/bench.sh

clean:
	cargo clean
	rm -rf end2end/node_modules end2end/test-results
