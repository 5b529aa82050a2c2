#!/usr/bin/env bash
# PostgreSQL over TLS: `scripts/postgres.sh start --tls` serves TCP clients over
# TLS only, and orderflow's PostgreSQL read model works through it with
# sslmode=verify-full: `replay --to-postgres` and the pg-projector fill two
# schemas from the same log (the embedded broker, its own process) that agree.
# A client without TLS, and one trusting another CA, are refused. One line per
# check; exits 1 if any failed.
#
#   tests/pg/pg_tls_test.sh [--port PORT]    (default $ORDERFLOW_PG_TLS_TEST_PORT or 25497)
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${ORDERFLOW_BINARY:-$root/build/cli/orderflow}"
port="${ORDERFLOW_PG_TLS_TEST_PORT:-25497}"
[[ "${1:-}" == --port ]] && port="${2:-}"
work="$(mktemp -d /tmp/orderflow-pg-tls-test.XXXXXX)"
chmod 755 "$work"  # as root, the server runs as an unprivileged user

passed=0
failed=0
pass() { echo "ok    $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
check() { local what="$1"; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
broker_pid=""
cleanup() {
  [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null
  bash "$root/scripts/postgres.sh" stop --dir "$work/pg" >/dev/null 2>&1
  if ((failed == 0)); then rm -rf "$work"; else echo "pg_tls_test: logs kept in $work"; fi
}
trap cleanup EXIT

[[ -x "$bin" ]] || { echo "pg_tls_test: orderflow binary $bin not built" >&2; exit 1; }
url=$(bash "$root/scripts/postgres.sh" start --tls --dir "$work/pg" --port "$port" 2>"$work/pg-start.err" | head -1)
if [[ "$url" != *"sslmode=verify-full&sslrootcert=$work/pg/tls/ca.pem" ]]; then
  echo "FAIL  postgres.sh start --tls: URL '$url': $(tail -2 "$work/pg-start.err")"
  failed=1
  exit 1
fi
pass "postgres.sh start --tls prints a verify-full URL with the CA"
plain="postgresql://orderflow@127.0.0.1:$port/orderflow"

out=$(psql "$url" -XAtc "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
check "a verify-full client is on TLS ($out)" eval '[[ "$out" == t\|TLSv1.[23] ]]'
out=$(psql "$plain?sslmode=disable" -XAtc "SELECT 1" 2>&1)
check "a client without TLS is refused" eval '[[ "$out" == *"no encryption"* ]]'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=another CA" \
  -keyout "$work/other.key" -out "$work/other.pem" >/dev/null 2>&1
out=$(psql "$plain?sslmode=verify-full&sslrootcert=$work/other.pem" -XAtc "SELECT 1" 2>&1)
check "a client trusting another CA is refused" eval '[[ "$out" == *"certificate verify failed"* ]]'

"$bin" broker --partitions 4 >"$work/broker.out" 2>"$work/broker.err" &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$work/broker.out" ]] && break; sleep 0.1; done
brokers=$(head -1 "$work/broker.out")
"$bin" up --brokers "$brokers" --partitions 4 --http off --data-dir "$work/live" --simulate 200 --exit-when-done \
  --transit-ms 0 --log-level warn --json >"$work/up.json" 2>"$work/up.log"
rc=$?
check "orderflow up ran 200 orders on the embedded broker" test "$rc" == 0

out=$("$bin" replay --brokers "$brokers" --to-postgres "$url" --pg-schema rebuilt --json --log-level warn 2>&1)
check "replay --to-postgres over verify-full TLS" \
  eval 'python3 -c "import json,sys; sys.exit(json.loads(sys.argv[1])[\"orders\"] != 200)" "$out" 2>/dev/null'
out=$("$bin" service pg-projector --brokers "$brokers" --postgres "$url" --pg-schema live --exit-when-caught-up \
        --log-level warn 2>&1)
rc=$?
check "the pg-projector over verify-full TLS caught up" test "$rc" == 0
query="SELECT count(*), sum(total_minor), count(*) FILTER (WHERE status IN ('delivered', 'cancelled')) FROM"
a=$(psql "$url" -XAtc "$query rebuilt.orders" 2>&1)
b=$(psql "$url" -XAtc "$query live.orders" 2>&1)
check "both schemas hold the same 200 terminal orders ($a)" eval '[[ "$a" == "$b" && "$a" == 200\|*\|200 ]]'

echo "pg_tls_test: $passed passed, $failed failed"
((failed == 0))
