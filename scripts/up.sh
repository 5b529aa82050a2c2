#!/usr/bin/env bash
# Sets up, builds and runs `orderflow up` on the embedded broker.
# Without arguments it simulates 2000 orders and exits once they are projected;
# any arguments replace those (e.g. `bash scripts/up.sh --simulate 100000 --rate 500`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh -DORDERFLOW_BUILD_TESTS=OFF
if (($# == 0)); then set -- --simulate 2000 --exit-when-done; fi
exec build/cli/orderflow up --data-dir orderflow-data "$@"
