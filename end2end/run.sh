#!/usr/bin/env bash
# Runs the Playwright suite against a freshly built release server on a free port
# with a temporary database, then prints one summary line for CI. The database is a
# SQLite file, or with BEHALF_E2E_DATABASE=postgres a fresh database on the server of
# BEHALF_TEST_POSTGRES_URL (dropped afterwards).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/behalf"
[ -x "$bin" ] || { echo "run.sh: $bin is missing; build it with 'make build' first" >&2; exit 2; }

tmp=$(mktemp -d)
# The audit chain's key, beside the temporary database (never in the working tree).
export BEHALF_AUDIT_KEY_FILE="$tmp/audit.key"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg_db=""
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
  if [ -n "$pg_db" ]; then psql "$BEHALF_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
}
trap cleanup EXIT
case "${BEHALF_E2E_DATABASE:-sqlite}" in
  sqlite) export BEHALF_DATABASE_URL="sqlite:$tmp/e2e.db" ;;
  postgres)
    : "${BEHALF_TEST_POSTGRES_URL:?BEHALF_E2E_DATABASE=postgres needs BEHALF_TEST_POSTGRES_URL}"
    pg_db="behalf_e2e_$$"
    psql "$BEHALF_TEST_POSTGRES_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
    export BEHALF_DATABASE_URL="${BEHALF_TEST_POSTGRES_URL%/*}/$pg_db"
    ;;
  *) echo "run.sh: BEHALF_E2E_DATABASE is sqlite or postgres" >&2; exit 2 ;;
esac
echo "e2e database: ${BEHALF_E2E_DATABASE:-sqlite}"
export BEHALF_E2E_PASSWORD="e2e-password-123"
export BEHALF_LOG="${BEHALF_LOG:-warn}"
export BEHALF_DEMO=0 # never the first-run demo (members are created below, before serve, anyway)

"$bin" migrate >/dev/null
"$bin" create-member --email ada@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Ada Admin" --role super_user >/dev/null
"$bin" create-member --email ann@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Ann Lee" --role member >/dev/null
# Only the login-on-behalf tests use these two.
"$bin" create-member --email sam@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Sam Ortiz" --role support >/dev/null
"$bin" create-member --email tom@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Tom Target" --role member >/dev/null
"$bin" seed --members 60 --seed 7 --password "$BEHALF_E2E_PASSWORD" >/dev/null
# Only the one-click link test uses these two (after the seed, so the seeded IDs stay).
"$bin" create-member --email eve@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Eve Editor" --role editor >/dev/null
"$bin" create-member --email lia@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Lia Link" --role member >/dev/null
# Only the oversight test uses these two.
"$bin" create-member --email sue@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Sue Support" --role support >/dev/null
"$bin" create-member --email omar@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Omar Member" --role member >/dev/null
# Only the first-download test uses this one (it changes her name).
"$bin" create-member --email pia@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Pia Park" --role member >/dev/null
# Only the consent tests (Step 12) use these three.
"$bin" create-member --email sid@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Sid Support" --role support >/dev/null
"$bin" create-member --email cleo@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Cleo Consent" --role member >/dev/null
"$bin" create-member --email mia@e2e.test --password "$BEHALF_E2E_PASSWORD" --name "Mia Member" --role member >/dev/null

# Every test signs in from 127.0.0.1: the per-address limit is lifted (the per-account
# throttle stays, and has its own integration tests).
LEPTOS_SITE_ROOT="$root/target/site" "$bin" serve --addr "127.0.0.1:$port" --sign-in-per-ip-per-minute 10000 \
  >"$tmp/server.log" 2>&1 &
pid=$!

for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "the server exited:" >&2; cat "$tmp/server.log" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the server did not come up:" >&2; cat "$tmp/server.log" >&2; exit 1; }

cd "$root/end2end"
rm -f test-results/report.json
set +e
BEHALF_E2E_URL="http://127.0.0.1:$port" npx playwright test "$@"
status=$?
set -e
if [ -f test-results/report.json ]; then
  E2E_DB="${BEHALF_E2E_DATABASE:-sqlite}" node -e '
    const s = require("./test-results/report.json").stats;
    console.log(`e2e (${process.env.E2E_DB}): ${s.expected + s.flaky} passed, ${s.unexpected} failed, ${s.skipped} skipped`);
  '
else
  echo "e2e: 0 passed, 1 failed, 0 skipped (no report was written)"
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "--- server log (last 50 lines) ---"
  tail -n 50 "$tmp/server.log" || true
fi
exit "$status"
