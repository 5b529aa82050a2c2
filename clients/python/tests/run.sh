#!/usr/bin/env bash
# Runs a Python test script of clients/python with the client's virtual
# environment, making it first if needed (scripts/python-env.sh; idempotent).
# ctest calls this for kafka.PythonClientDecodesAMixedV1V2Log (tests/CMakeLists.txt).
#
#   run.sh SCRIPT [ARGS...]      e.g. run.sh clients/python/tests/test_mixed_log.py
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
[[ $# -ge 1 ]] || { echo "run.sh: needs a test script, e.g. run.sh clients/python/tests/test_mixed_log.py" >&2; exit 2; }
python="$(bash "$root/scripts/python-env.sh")"
exec "$python" "$@"
