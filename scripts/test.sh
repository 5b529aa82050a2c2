#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (ctest, 2 jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh -DORDERFLOW_BUILD_TESTS=ON
# The browser test's npm packages (playwright-core; the browser is Debian's chromium).
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
cd build
ctest -j2 --output-on-failure --timeout 600
