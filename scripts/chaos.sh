#!/usr/bin/env bash
# Chaos by hand: `orderflow up` (one instance of every service) plus two more
# instances of every lifecycle service as separate processes, random SIGKILLs
# and restarts of those extra instances while orders flow, then `orderflow
# check` over the log and every outbox. Prints check's JSON and a summary line;
# exits with check's status.
#
#   bash scripts/chaos.sh [ORDERS=8000] [RATE=300] [KILLS=16] [SECONDS=40]
#
# BROKERS=LIST runs on that cluster (under a fresh topic prefix) instead of an
# embedded broker (`orderflow broker`) started here. KEEP=1 keeps the work
# directory (stores, outboxes, logs) and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
orders=${1:-8000}
rate=${2:-300}
kills=${3:-16}
seconds=${4:-40}
bin=build/cli/orderflow
[[ -x $bin ]] || { echo "chaos.sh: $bin not found; run bash scripts/build.sh first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-chaos.XXXXXX")
pids=()
cleanup() {
  if [[ ${KEEP:-0} == 1 ]]; then echo "chaos.sh: kept $work" >&2; fi
  exec 2>/dev/null  # no job notices for the processes killed here
  for p in "${pids[@]}" ${broker_pid:-}; do kill -9 "$p" || true; done
  if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

prefix=()
if [[ -n ${BROKERS:-} ]]; then
  brokers=$BROKERS
  prefix=(--topic-prefix "chaos-$$.")
else
  "$bin" broker --partitions 6 >"$work/broker.out" 2>"$work/broker.err" &
  broker_pid=$!
  for _ in $(seq 100); do [[ -s $work/broker.out ]] && break; sleep 0.1; done
  brokers=$(head -1 "$work/broker.out")
fi
common=(--brokers "$brokers" "${prefix[@]}" --transit-ms 200)

"$bin" up "${common[@]}" --http off --data-dir "$work/up" --simulate "$orders" --rate "$rate" --exit-when-done \
  --json --log-level warn >"$work/up.json" 2>"$work/up.err" &
up_pid=$!
sleep 2  # up creates the topics

declare -A extra
start() {  # start NAME-INSTANCE
  local name=${1%-*} instance=${1##*-}
  "$bin" service "$name" --instance "$instance" "${common[@]}" --data-dir "$work/$1" --log-level warn \
    2>>"$work/services.log" &
  extra[$1]=$!
  pids+=($!)
}
for name in payment inventory shipping delivery notification; do
  for i in 2 3; do start "$name-$i"; done
done

keys=("${!extra[@]}")
interval=$(python3 -c "print($seconds / $kills)")
for ((k = 1; k <= kills; k++)); do
  sleep "$interval"
  key=${keys[RANDOM % ${#keys[@]}]}
  kill -9 "${extra[$key]}" 2>/dev/null || true
  wait "${extra[$key]}" 2>/dev/null || true
  echo "chaos.sh: SIGKILL $key ($k of $kills)" >&2
  start "$key"
done

started=$SECONDS
wait "$up_pid" || { echo "chaos.sh: orderflow up failed; see $work/up.err" >&2; KEEP=1; exit 1; }
echo "chaos.sh: up finished $((SECONDS - started)) s after the last kill" >&2
for key in "${keys[@]}"; do kill -TERM "${extra[$key]}" 2>/dev/null || true; done
for key in "${keys[@]}"; do wait "${extra[$key]}" 2>/dev/null || true; done

outboxes=()
for f in "$work"/up/services/notification/outbox.log "$work"/notification-*/outbox.log; do
  [[ -f $f ]] && outboxes+=(--outbox "$f")
done
status=0
"$bin" check --brokers "$brokers" "${prefix[@]}" "${outboxes[@]}" --json >"$work/check.json" || status=$?
cat "$work/check.json"
python3 - "$work/check.json" "$kills" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
repeats = sum(n - 1 for n in r["notifications_repeated"].values())
print(f"chaos.sh: {r['orders']} orders, {sys.argv[2]} SIGKILLs, {r['outbox_lines']} outbox lines, "
      f"{len(r['notifications_repeated'])} notification ids written more than once ({repeats} extra lines), "
      f"{r['duplicate_events']} duplicate records in the log, ok={r['ok']}", file=sys.stderr)
PY
exit "$status"
