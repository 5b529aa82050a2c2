#!/usr/bin/env bash
# Sets up, builds and runs `orderflow up` on the embedded broker.
# Without arguments it simulates 2000 orders in a fresh orderflow-data/ (a
# reproducible demo) and exits once every order is delivered or cancelled.
# With arguments, a --data-dir that exists is resumed: its archive is
# republished into the embedded broker first.
# Arguments replace those defaults and are passed to `orderflow up` as given,
# e.g. `bash scripts/up.sh --simulate 100000 --rate 500 --data-dir my-data`.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=orderflow bash scripts/build.sh
if (($# == 0)); then
  rm -rf orderflow-data
  set -- --simulate 2000 --exit-when-done --data-dir orderflow-data
fi
build/cli/orderflow up "$@"
if [[ -d orderflow-data ]]; then
  echo "state is in orderflow-data/: try build/cli/orderflow analytics, build/cli/orderflow order list --status delivered"
fi
