#!/usr/bin/env bash
# `make bench`: runs `behalf bench` against the release server, started here on a free
# port with a temporary database of BEHALF_BENCH_MEMBERS seeded members (default
# 1,000,000) and the bench's three accounts: first on SQLite, then, when
# BEHALF_TEST_POSTGRES_URL is set, on a fresh PostgreSQL database (dropped afterwards).
# Prints each table, writes target/bench/sqlite.json (and postgres.json), and checks
# the audit chain with `behalf audit verify` after the load. Arguments are passed on
# to `behalf bench`, e.g. `end2end/bench.sh --duration 5 --scenario orders`.
# BEHALF_BENCH_BIN runs another build of `behalf` (e.g. target/debug/behalf, to try the
# script; its figures are not the product's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${BEHALF_BENCH_BIN:-$root/target/release/behalf}"
[ -x "$bin" ] || { echo "bench.sh: $bin is missing; build it with 'make build' first" >&2; exit 2; }

members="${BEHALF_BENCH_MEMBERS:-1000000}"
# The accounts `behalf bench` uses by default (see server/src/bench/mod.rs).
password="behalf-bench-password"
out="$root/target/bench"
mkdir -p "$out"

tmp=$(mktemp -d)
pid=""
pg_db=""
stop_server() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
cleanup() {
  stop_server
  rm -rf "$tmp"
  if [ -n "$pg_db" ]; then psql "$BEHALF_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
}
trap cleanup EXIT
export BEHALF_LOG="${BEHALF_LOG:-warn}"

# Seeds the database of BEHALF_DATABASE_URL, serves it, runs the bench against it,
# stops the server and verifies the audit chain. $1 names the database (sqlite or
# postgres), and the JSON file; the rest goes to `behalf bench`.
bench_on() {
  local label=$1
  shift
  # The audit chain's key, beside the temporary database (never in the working tree).
  export BEHALF_AUDIT_KEY_FILE="$tmp/$label.audit-key"
  echo "== $label: seeding $members members"
  # Into the empty database first (the seed builds its indexes once at the end).
  "$bin" seed --members "$members" --password "$password"
  "$bin" create-member --email bench-admin@behalf.test --password "$password" --name "Bench Admin" --role super_user >/dev/null
  "$bin" create-member --email bench-support@behalf.test --password "$password" --name "Bench Support" --role support >/dev/null
  "$bin" create-member --email bench-member@behalf.test --password "$password" --name "Bench Member" --role member >/dev/null

  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Every request comes from 127.0.0.1: the per-address sign-in limit is lifted (the
  # per-account throttle stays; the bench keeps under it).
  LEPTOS_SITE_ROOT="$root/target/site" "$bin" serve --addr "127.0.0.1:$port" --no-demo \
    --sign-in-per-ip-per-minute 100000 >"$tmp/$label-server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "the server exited:" >&2; cat "$tmp/$label-server.log" >&2; exit 1; fi
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the server did not come up:" >&2; cat "$tmp/$label-server.log" >&2; exit 1; }

  echo "== $label: behalf bench http://127.0.0.1:$port"
  local status=0
  "$bin" bench "http://127.0.0.1:$port" --server-pid "$pid" --json "$out/$label.json" "$@" || status=$?
  stop_server
  echo "== $label: the audit chain after the load"
  "$bin" audit verify
  if [ "$status" -ne 0 ]; then
    echo "--- server log (last 50 lines) ---"
    tail -n 50 "$tmp/$label-server.log" || true
    return "$status"
  fi
  echo "== $label: results in $out/$label.json"
}

BEHALF_DATABASE_URL="sqlite:$tmp/bench.db" bench_on sqlite "$@"

if [ -z "${BEHALF_TEST_POSTGRES_URL:-}" ]; then
  echo "note: BEHALF_TEST_POSTGRES_URL is not set, so the bench runs on SQLite only"
elif ! command -v psql >/dev/null; then
  echo "note: psql is missing (it creates the bench database), so the bench runs on SQLite only"
else
  pg_db="behalf_bench_$$"
  psql "$BEHALF_TEST_POSTGRES_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
  BEHALF_DATABASE_URL="${BEHALF_TEST_POSTGRES_URL%/*}/$pg_db" bench_on postgres "$@"
fi
