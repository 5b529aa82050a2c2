#!/usr/bin/env bash
# Flake hunt: runs the chosen tests N times, each round in a random order
# (ctest --schedule-random, 2 jobs), against the same brokers as
# scripts/test.sh (one Apache Kafka, one PostgreSQL, started here and stopped
# on exit), and prints each test's failures out of N.
#
#   bash scripts/flaky.sh N [REGEX]      e.g.  bash scripts/flaky.sh 3 'kafka\.|Cluster|PgProjector'
#
# REGEX is a ctest -R pattern (default: every test). Builds as test.sh does
# unless SKIP_BUILD=1 (then build/ is used as it is). Each round's output goes
# to build/flaky/round-K.log; a failing test's output is kept there.
# Exit status: 0 when no test failed in any round, 1 otherwise, 2 on usage.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: bash scripts/flaky.sh N [REGEX]   (N rounds, REGEX a ctest -R pattern; SKIP_BUILD=1 to use build/ as it is)" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
[[ "$1" == "-h" || "$1" == "--help" ]] && { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
[[ "$1" =~ ^[1-9][0-9]*$ ]] || { echo "flaky.sh: N must be a positive number of rounds, got '$1'" >&2; usage; }
rounds=$1
regex=${2:-.}
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  bash scripts/build.sh -DORDERFLOW_BUILD_TESTS=ON -DORDERFLOW_TEST_REAL_KAFKA=ON -DORDERFLOW_WERROR=ON
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  bash scripts/python-env.sh >/dev/null
fi
[[ -f build/CTestTestfile.cmake ]] || { echo "flaky.sh: no build/ with tests; run without SKIP_BUILD=1" >&2; exit 1; }
count=$(cd build && ctest -N -R "$regex" | sed -n 's/^Total Tests: //p')
[[ "${count:-0}" -gt 0 ]] || { echo "flaky.sh: no test matches '$regex' (see: cd build && ctest -N)" >&2; exit 2; }

source scripts/test-env.sh

out=build/flaky
rm -rf "$out" && mkdir -p "$out"
declare -A failures=()
started=$(date +%s)
for ((k = 1; k <= rounds; ++k)); do
  rm -f build/Testing/Temporary/LastTestsFailed.log
  t0=$(date +%s)
  (cd build && ctest -j2 --schedule-random --output-on-failure --timeout 600 -R "$regex") >"$out/round-$k.log" 2>&1 || true
  failed=()
  if [[ -f build/Testing/Temporary/LastTestsFailed.log ]]; then
    while IFS=: read -r _ name; do failed+=("$name"); failures[$name]=$((${failures[$name]:-0} + 1)); done \
      <build/Testing/Temporary/LastTestsFailed.log
  fi
  echo "flaky.sh: round $k of $rounds: ${#failed[@]} of $count failed in $(($(date +%s) - t0)) s${failed:+: ${failed[*]}} (log: $out/round-$k.log)"
done
echo "flaky.sh: $rounds round(s) of $count test(s) matching '$regex' in $(($(date +%s) - started)) s"
if [[ ${#failures[@]} -eq 0 ]]; then
  echo "flaky.sh: 0 failures"
  exit 0
fi
echo "failures  test"
for name in "${!failures[@]}"; do printf '%4d/%-4d %s\n' "${failures[$name]}" "$rounds" "$name"; done | sort -rn
exit 1
