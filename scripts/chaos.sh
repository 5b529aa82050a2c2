#!/usr/bin/env bash
# Chaos by hand: `orderflow up --exit-when-done` (one instance of every
# service) plus two more instances of each of its lifecycle services (fulfillment,
# notification) as separate processes, random SIGKILLs and restarts of those extra instances while
# orders flow, then `orderflow check` over the log and every outbox. Prints
# check's JSON and a summary line; exits non-zero if anything is wrong.
#
#   bash scripts/chaos.sh [--kafka] [ORDERS=8000] [RATE=300] [KILLS=16] [SECONDS=40]
#
# --kafka starts a 3-node Apache Kafka cluster here (scripts/kafka.sh, ports
# 19292-19297) and also SIGKILLs BROKER_KILLS (default 2) brokers during the
# run, each back 10 s later; then it checks what `up` promises when it exits:
# nothing is appended to the log afterwards (every instance's work was done),
# and the live digest equals a replay's. BROKERS=LIST runs on that cluster
# (under a fresh topic prefix) instead; otherwise an embedded broker
# (`orderflow broker`) is started here. KEEP=1 keeps the work directory
# (stores, outboxes, logs) and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
kafka_mode=0
if [[ ${1:-} == --kafka ]]; then kafka_mode=1; shift; fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
for a in "$@"; do
  [[ $a =~ ^[0-9]+$ ]] || { echo "chaos.sh: '$a' is not a number; usage: bash scripts/chaos.sh [--kafka] [ORDERS] [RATE] [KILLS] [SECONDS]" >&2; exit 2; }
done
orders=${1:-8000}
rate=${2:-300}
kills=${3:-16}
seconds=${4:-40}
broker_kills=${BROKER_KILLS:-2}
bin=build/cli/orderflow
[[ -x $bin ]] || { echo "chaos.sh: $bin not found; run bash scripts/build.sh first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-chaos.XXXXXX")
pids=()
cleanup() {
  if [[ ${KEEP:-0} == 1 ]]; then echo "chaos.sh: kept $work" >&2; fi
  exec 2>/dev/null  # no job notices for the processes killed here
  for p in "${pids[@]}" ${broker_pid:-}; do kill -9 "$p" || true; done
  if [[ $kafka_mode == 1 ]]; then bash scripts/kafka.sh stop --dir "$work/kafka" >/dev/null || true; fi
  if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

prefix=()
if [[ $kafka_mode == 1 ]]; then
  echo "chaos.sh: starting a 3-node Apache Kafka cluster in $work/kafka" >&2
  brokers=$(bash scripts/kafka.sh start --nodes 3 --port 19292 --dir "$work/kafka" | head -1)
  prefix=(--topic-prefix "chaos-$$.")
elif [[ -n ${BROKERS:-} ]]; then
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
    $([[ $name == notification ]] && echo --send-only) \
    2>>"$work/services.log" &
  extra[$1]=$!
  pids+=($!)
}
for name in fulfillment notification; do  # the services as up runs them
  for i in 2 3; do start "$name-$i"; done
done

keys=("${!extra[@]}")
interval=$(python3 -c "print($seconds / $kills)")
broker_every=$(( broker_kills > 0 ? kills / (broker_kills + 1) : 0 ))
broker_jobs=()
for ((k = 1; k <= kills; k++)); do
  sleep "$interval"
  if [[ $kafka_mode == 1 && $broker_every -gt 0 && $((k % broker_every)) == 0 && ${#broker_jobs[@]} -lt $broker_kills ]]; then
    node=$(( ${#broker_jobs[@]} % 3 + 1 ))
    bash scripts/kafka.sh kill "$node" --dir "$work/kafka" >/dev/null
    echo "chaos.sh: SIGKILL broker $node (back in 10 s)" >&2
    ( sleep 10; bash scripts/kafka.sh start-node "$node" --dir "$work/kafka" >/dev/null ) &
    broker_jobs+=($!)
  fi
  key=${keys[RANDOM % ${#keys[@]}]}
  kill -9 "${extra[$key]}" 2>/dev/null || true
  wait "${extra[$key]}" 2>/dev/null || true
  echo "chaos.sh: SIGKILL $key ($k of $kills)" >&2
  start "$key"
done

started=$SECONDS
wait "$up_pid" || { echo "chaos.sh: orderflow up failed; see $work/up.err" >&2; KEEP=1; exit 1; }
echo "chaos.sh: up finished $((SECONDS - started)) s after the last kill" >&2
# What the log holds the moment up is done: the extra instances must add nothing.
ends_at_exit=$("$bin" topics --brokers "$brokers" "${prefix[@]}" --json 2>/dev/null | python3 -c '
import json, sys
print(sum(p["log_end"] for t in json.load(sys.stdin) for p in t["partitions"]))' || echo unknown)
for j in "${broker_jobs[@]}"; do wait "$j" || true; done
sleep 5
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
if [[ $kafka_mode == 1 ]]; then
  ends_now=$("$bin" topics --brokers "$brokers" "${prefix[@]}" --json 2>/dev/null | python3 -c '
import json, sys
print(sum(p["log_end"] for t in json.load(sys.stdin) for p in t["partitions"]))' || echo unknown)
  live=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$work/up.json")
  replayed=$("$bin" replay --brokers "$brokers" "${prefix[@]}" --data-dir "$work/replay" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
  echo "chaos.sh: log end $ends_at_exit records when up exited, $ends_now after the extra instances stopped; live digest $live, replay $replayed" >&2
  [[ $ends_at_exit == "$ends_now" && $ends_now != unknown ]] || { echo "chaos.sh: records were appended after up exited" >&2; status=1; }
  [[ $live == "$replayed" ]] || { echo "chaos.sh: the live digest differs from a replay's" >&2; status=1; }
fi
exit "$status"
