#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (ctest, 2 jobs): the unit
# tests, the integration tests on the embedded broker, the same integration
# tests (prefixed `kafka.`) on a real Apache Kafka that this script starts with
# scripts/kafka.sh and stops again, the 3-node cluster fault tests, the
# PostgreSQL read model on a PostgreSQL this script starts with
# scripts/postgres.sh, the Python client, and the browser test. Core dumps are
# kept (build/**/core*) so that a crash in CI can be read with gdb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh -DORDERFLOW_BUILD_TESTS=ON -DORDERFLOW_TEST_REAL_KAFKA=ON -DORDERFLOW_WERROR=ON
# The browser test's npm packages (playwright-core; the browser is Debian's chromium).
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
bash scripts/python-env.sh >/dev/null  # the Python client's venv (clients/python; kafka.PythonClient*)

# One real broker for the whole run, on ports of its own (29092/29093), in a
# fresh directory; the tests give each other distinct topic prefixes.
kafka_dir="$(mktemp -d "${TMPDIR:-/tmp}/orderflow-test-kafka.XXXXXX")"
root="$(pwd)"
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/orderflow-test-pg.XXXXXX")"
chmod 755 "$pg_dir"  # as root, the server runs as an unprivileged user
stop_all() {
  bash "$root/scripts/kafka.sh" stop --dir "$kafka_dir" >/dev/null 2>&1 || true
  rm -rf "$kafka_dir"
  bash "$root/scripts/postgres.sh" stop --dir "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_all EXIT
ORDERFLOW_TEST_KAFKA="$(bash scripts/kafka.sh start --nodes 1 --dir "$kafka_dir" --port 29092 | head -1)"
export ORDERFLOW_TEST_KAFKA
export ORDERFLOW_TEST_KAFKA_DIR="$kafka_dir"
echo "test.sh: Apache Kafka at $ORDERFLOW_TEST_KAFKA (logs in $kafka_dir)"
# One PostgreSQL for the whole run (the tests give each other distinct schemas).
ORDERFLOW_TEST_POSTGRES="$(bash scripts/postgres.sh start --dir "$pg_dir" --port 25432 | head -1)"
export ORDERFLOW_TEST_POSTGRES
echo "test.sh: PostgreSQL at $ORDERFLOW_TEST_POSTGRES (log in $pg_dir)"
ulimit -c unlimited 2>/dev/null || true

cd build
ctest -j2 --output-on-failure --timeout 600
