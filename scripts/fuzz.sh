#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in
# build-fuzz/, and runs each for FUZZ_SECONDS (default 30) on its checked-in
# corpus (tests/fuzz/corpus/<target>, read only; new inputs go to a temp dir).
# A crash, leak, timeout or failed invariant fails the script and leaves the
# input in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
# A fixed seed makes a CI run repeatable (FUZZ_SEED=0 picks one at random).
seed=${FUZZ_SEED:-1}
bash scripts/setup.sh >/dev/null
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DORDERFLOW_FUZZ=ON \
  -DORDERFLOW_BUILD_TESTS=OFF >/dev/null
ninja -C build-fuzz
# BUILD_ONLY=1: build and stop (.ci/run builds ahead while scripts/test.sh runs).
[ -z "${BUILD_ONLY:-}" ] || exit 0
mkdir -p build-fuzz/artifacts
for target in decode_event upcast order_request; do
  work=$(mktemp -d)
  echo "fuzz: $target for ${seconds}s"
  build-fuzz/tests/fuzz/${target}_fuzz -seed="$seed" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=build-fuzz/artifacts/${target}- -print_final_stats=1 "$work" "tests/fuzz/corpus/$target" \
    2>"build-fuzz/$target.log" || { tail -40 "build-fuzz/$target.log"; rm -rf "$work"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::new_units_added" "build-fuzz/$target.log" | tr '\n' ' '
  echo
  rm -rf "$work"
done
