#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh), configures and builds orderflow
# into build/ with ninja (and ccache when present). Extra args go to cmake;
# TARGETS="a b" builds only those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
ninja -C build ${TARGETS:-}
