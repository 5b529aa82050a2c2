#!/usr/bin/env bash
# Builds orderflow and its test suite with AddressSanitizer and
# UndefinedBehaviorSanitizer in build-asan/ and runs the suite (all but the
# browser test, which exercises Chromium rather than orderflow's code).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
# Compiled by clang, eight sources per unit (a unity build), -O1 with line
# tables only: with ASan and UBSan on, GCC 12 took ~1,490 s of CPU for this
# build and clang with unity sources far less (docs/architecture.md, "CI");
# reports still name file and line. scripts/test.sh builds with GCC, so both
# compilers see every change.
cmake -S . -B build-asan -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -g1" -DCMAKE_UNITY_BUILD=ON -DORDERFLOW_SANITIZE=ON -DORDERFLOW_BUILD_TESTS=ON >/dev/null
ninja -C build-asan
# BUILD_ONLY=1: build and stop (.ci/run builds ahead while scripts/test.sh runs).
[ -z "${BUILD_ONLY:-}" ] || exit 0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# scripts/lsan.supp: a leak inside libpqxx 6.4 when a PostgreSQL session is lost.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/scripts/lsan.supp:print_suppressions=0}
# The clean-stop tests stop each kind 5 times here instead of 20, and the
# volume tests place 40% of their orders at 40% of their rate (as long, with
# the same faults, for less CPU: tests/util/scale.h).
export ORDERFLOW_SIGTERM_ROUNDS=${ORDERFLOW_SIGTERM_ROUNDS:-5}
export ORDERFLOW_ORDER_PERCENT=${ORDERFLOW_ORDER_PERCENT:-40}
cd build-asan
ctest -j2 --output-on-failure --timeout 600 -E '^BrowserTest\.'
