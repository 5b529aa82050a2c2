#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (ctest, 2 jobs): the unit
# tests, the integration tests on the embedded broker, the same integration
# tests (prefixed `kafka.`) on a real Apache Kafka that this script starts with
# scripts/kafka.sh and stops again, the 3-node cluster fault tests, and the
# browser test.
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
stop_kafka() { bash "$root/scripts/kafka.sh" stop --dir "$kafka_dir" >/dev/null 2>&1 || true; rm -rf "$kafka_dir"; }
trap stop_kafka EXIT
ORDERFLOW_TEST_KAFKA="$(bash scripts/kafka.sh start --nodes 1 --dir "$kafka_dir" --port 29092 | head -1)"
export ORDERFLOW_TEST_KAFKA
export ORDERFLOW_TEST_KAFKA_DIR="$kafka_dir"
echo "test.sh: Apache Kafka at $ORDERFLOW_TEST_KAFKA (logs in $kafka_dir)"

cd build
ctest -j2 --output-on-failure --timeout 600
