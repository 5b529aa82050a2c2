#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (ctest, 2 jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh -DORDERFLOW_BUILD_TESTS=ON
cd build
ctest -j2 --output-on-failure --timeout 600
