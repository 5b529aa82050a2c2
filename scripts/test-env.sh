# Sourced by scripts/test.sh and scripts/flaky.sh (not run on its own): starts
# the brokers the suite runs against and stops them when the sourcing script
# exits. One real Apache Kafka (scripts/kafka.sh, ports 29092/29093) and one
# PostgreSQL (scripts/postgres.sh, port 25432), each in a fresh directory; the
# tests give each other distinct topic prefixes and schemas. Exports
# ORDERFLOW_TEST_KAFKA, ORDERFLOW_TEST_KAFKA_DIR and ORDERFLOW_TEST_POSTGRES.
# Core dumps are kept (build/**/core*) so that a crash can be read with gdb.
test_env_root="$(pwd)"
test_env_kafka_dir="$(mktemp -d "${TMPDIR:-/tmp}/orderflow-test-kafka.XXXXXX")"
test_env_pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/orderflow-test-pg.XXXXXX")"
chmod 755 "$test_env_pg_dir"  # as root, the server runs as an unprivileged user
test_env_stop() {
  bash "$test_env_root/scripts/kafka.sh" stop --dir "$test_env_kafka_dir" >/dev/null 2>&1 || true
  rm -rf "$test_env_kafka_dir"
  bash "$test_env_root/scripts/postgres.sh" stop --dir "$test_env_pg_dir" >/dev/null 2>&1 || true
  rm -rf "$test_env_pg_dir"
}
trap test_env_stop EXIT
ORDERFLOW_TEST_KAFKA="$(bash scripts/kafka.sh start --nodes 1 --dir "$test_env_kafka_dir" --port 29092 | head -1)"
export ORDERFLOW_TEST_KAFKA
export ORDERFLOW_TEST_KAFKA_DIR="$test_env_kafka_dir"
echo "$(basename "$0"): Apache Kafka at $ORDERFLOW_TEST_KAFKA (logs in $test_env_kafka_dir)"
ORDERFLOW_TEST_POSTGRES="$(bash scripts/postgres.sh start --dir "$test_env_pg_dir" --port 25432 | head -1)"
export ORDERFLOW_TEST_POSTGRES
echo "$(basename "$0"): PostgreSQL at $ORDERFLOW_TEST_POSTGRES (log in $test_env_pg_dir)"
ulimit -c unlimited 2>/dev/null || true
