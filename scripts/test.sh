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

# One real Kafka and one PostgreSQL for the whole run, stopped on exit.
source scripts/test-env.sh

cd build
ctest -j2 --output-on-failure --timeout 600
