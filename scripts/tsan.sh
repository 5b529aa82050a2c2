#!/usr/bin/env bash
# Builds orderflow and its tests with ThreadSanitizer in build-tsan/ and runs
# the unit tests and the in-process integration tests (those that run the
# projector, the services and the HTTP server as threads of the test, on the
# embedded broker). Tests that drive separate `orderflow` processes, the fault
# matrix and the browser test are left to scripts/test.sh and scripts/sanitize.sh.
# librdkafka, RocksDB and Cap'n Proto come uninstrumented from Debian: TSan
# sees their locks (pthread calls are intercepted) but not their atomics;
# scripts/tsan.supp names the few reports that come from inside them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
# Compiled like scripts/sanitize.sh's build: clang, unity sources, -O1, line tables.
cmake -S . -B build-tsan -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -g1" -DCMAKE_UNITY_BUILD=ON -DORDERFLOW_TSAN=ON -DORDERFLOW_BUILD_TESTS=ON >/dev/null
ninja -C build-tsan domain_test eventstore_test projections_test schemas_test services_test integration_test pg_test
# BUILD_ONLY=1: build and stop (.ci/run builds ahead while scripts/test.sh runs).
[ -z "${BUILD_ONLY:-}" ] || exit 0
# history_size: long runs keep the earlier access's stack, which the suppressions need.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=7:suppressions=$(pwd)/scripts/tsan.supp}
cd build-tsan
ctest -j2 --output-on-failure --timeout 600 \
  -E '^(kafka\.|BrowserTest\.|PgTlsTest\.|CliTest\.|CrashTest\.|RestartTest\.|DiskFullTest\.|EffectivelyOnceTest\.|CleanStopTest\.|Faults/|LifecycleTest\.EveryServiceItsOwnProcess|LifecycleTest\.RandomSigkills|ResultDeathTest\.|ProjectionStoreTest\.StateAndOffsetsCommitTogetherUnderSigkill|PgProjectorTest\.(FiveThousand|WaitsWhile|RecordsThat|ExitsZeroOnSigterm|StockEquals)|PipelineTest\.ServiceProjectorRestores)'
