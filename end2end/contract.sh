#!/usr/bin/env bash
# Contract fuzzing of the JSON API: schemathesis (from PyPI, in a virtualenv under
# target/) against a running release server's /api/v1/openapi.json, authenticated
# with a seeded editor's bearer token. It checks for server errors, response schema
# conformance and status code conformance, and fails on anything it finds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${BEHALF_BIN:-$root/target/release/behalf}"
[ -x "$bin" ] || { echo "contract.sh: $bin is missing; build it with 'make build' first" >&2; exit 2; }
SCHEMATHESIS_VERSION=4.32.5
venv="$root/target/schemathesis-venv"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

tmp=$(mktemp -d)
# The audit chain's key, beside the temporary database (never in the working tree).
export BEHALF_AUDIT_KEY_FILE="$tmp/audit.key"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
export BEHALF_DATABASE_URL="sqlite:$tmp/contract.db"
export BEHALF_LOG="${BEHALF_LOG:-warn}"
export BEHALF_DEMO=0 # never the first-run demo (members are created below, before serve, anyway)
password="contract-password-123"
"$bin" migrate >/dev/null
"$bin" create-member --email fuzz-editor@contract.test --password "$password" --name "Fuzz Editor" --role editor >/dev/null
"$bin" seed --members 40 --seed 3 --password "$password" >/dev/null
LEPTOS_SITE_ROOT="$root/target/site" "$bin" serve --addr "127.0.0.1:$port" --sign-in-per-ip-per-minute 100000 \
  >"$tmp/server.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 150); do
  if curl -fsS "$base/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "the server exited:" >&2; cat "$tmp/server.log" >&2; exit 1; fi
  sleep 0.2
done
token=$(curl -fsS "$base/api/v1/login" -H 'content-type: application/json' \
  -d "{\"email\":\"fuzz-editor@contract.test\",\"password\":\"$password\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

started=$(date +%s)
set +e
# logout is left out: it ends the very token every other call is made with; the
# presence stream (server-sent events) has no end to read to (the integration tests
# read its events, across two instances on PostgreSQL). One
# worker: with two threads hypothesis's lambda descriptions (ast parsing) can crash with
# "AST constructor recursion depth mismatch", a runtime error of the tool, not a finding.
"$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --max-examples "${CONTRACT_MAX_EXAMPLES:-40}" \
  --exclude-path /api/v1/logout \
  --exclude-path /api/v1/profile/events \
  --header "Authorization: Bearer $token" \
  --workers 1 \
  --request-timeout 20 \
  --seed 1 \
  --generation-deterministic
status=$?
set -e
echo "contract: schemathesis took $(( $(date +%s) - started )) s (exit $status)"
if [ "$status" -ne 0 ]; then
  echo "--- server log (last 50 lines) ---"
  tail -n 50 "$tmp/server.log" || true
fi
exit "$status"
