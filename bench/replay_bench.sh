#!/usr/bin/env bash
# Replay benchmark: rebuild speed from offset zero into RocksDB, as a ratio
# against a bare librdkafka consumer reading the same log in the same run.
#
#   bash bench/replay_bench.sh [ORDERS] [PARTITIONS] [ROUNDS]
#   LIFECYCLE=1 bash bench/replay_bench.sh 20000
#
# Starts `orderflow broker` (the embedded broker, in its own process), fills
# orders.events with ORDERS simulated orders (default 400000; OrderPlaced only,
# the worst case per event, unless LIFECYCLE=1 runs every service so each
# order carries its whole lifecycle, ~10 events), then alternates
# the baseline consumer and `orderflow replay` ROUNDS times (default 3) and
# prints each rate, CPU time per event (user + sys of the process, from
# getrusage) and peak RSS, the medians and their ratio. Never a pass/fail test.
# CPU per event is the figure to compare across runs: it does not depend on
# how the shared cores are divided, as the rates do.
# With the embedded broker, the broker's CPU per event during each replay is
# printed too (bench/cpu.sh).
# Each round also runs build/bench/replay_floor: the same consumer keeping each
# record in RocksDB the cheapest way (one key, no decoding, sorted files
# ingested), the most any durable replay could reach on this machine.
# BROKERS=LIST runs on that cluster instead (real Kafka: `bash scripts/kafka.sh
# start`), under a fresh topic prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cpu.sh
orders=${1:-400000}
partitions=${2:-24}
rounds=${3:-3}

bash scripts/build.sh -DORDERFLOW_BUILD_BENCH=ON >/dev/null
bin=build/cli/orderflow
work=$(mktemp -d)
trap '[[ -n ${broker_pid:-} ]] && kill $broker_pid 2>/dev/null; rm -rf "$work"' EXIT

prefix=()
topic=orders.events
if [[ -n ${BROKERS:-} ]]; then
  brokers=$BROKERS
  broker_pid=
  prefix=(--topic-prefix "bench-$$.")
  topic="bench-$$.orders.events"
else
  "$bin" broker --partitions "$partitions" >"$work/broker.out" 2>"$work/broker.err" &
  broker_pid=$!
  for _ in $(seq 50); do [[ -s $work/broker.out ]] && break; sleep 0.1; done
  brokers=$(head -1 "$work/broker.out")
fi

echo "filling orders.events with $orders orders over $partitions partitions..." >&2
mode=(--projector-only)
[[ ${LIFECYCLE:-0} == 1 ]] && mode=(--transit-ms 0)
"$bin" up --http off --brokers "$brokers" "${prefix[@]}" --partitions "$partitions" --data-dir "$work/live" \
  --simulate "$orders" --exit-when-done --log-level warn --json "${mode[@]}" >"$work/up.json"

# Runs a command, prints its stdout, and writes its peak RSS (KiB) and its
# CPU time (user + sys, seconds) to $work/rss and $work/cpu.
measured() {
  python3 - "$work" "$@" <<'PY'
import resource, subprocess, sys
out = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE, check=True).stdout
sys.stdout.write(out.decode())
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1] + "/rss", "w").write(str(usage.ru_maxrss))
open(sys.argv[1] + "/cpu", "w").write("%.3f" % (usage.ru_utime + usage.ru_stime))
PY
}

baseline=() replay=() floor=() baseline_rss=() replay_rss=() baseline_cpu=() replay_cpu=() floor_cpu=()
broker_cpu=()
for i in $(seq "$rounds"); do
  b=$(measured build/bench/consume_baseline "$brokers" "$topic")
  baseline_rss+=("$(cat "$work/rss")") baseline_cpu+=("$(cat "$work/cpu")")
  rm -rf "$work/floor"
  f=$(measured build/bench/replay_floor "$brokers" "$topic" "$work/floor")
  floor_cpu+=("$(cat "$work/cpu")")
  floor+=("$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["records_per_second"]))' "$f")")
  rm -rf "$work/replayed"
  [[ -n ${broker_pid:-} ]] && b0=$(proc_cpu_s "$broker_pid")
  r=$(measured "$bin" replay --brokers "$brokers" "${prefix[@]}" --data-dir "$work/replayed" --json)
  replay_rss+=("$(cat "$work/rss")") replay_cpu+=("$(cat "$work/cpu")")
  [[ -n ${broker_pid:-} ]] && broker_cpu+=("$(awk -v a="$b0" -v b="$(proc_cpu_s "$broker_pid")" 'BEGIN {print b - a}')")
  baseline+=("$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["records_per_second"]))' "$b")")
  replay+=("$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["events_per_second"]))' "$r")")
  echo "round $i: baseline ${baseline[-1]} records/s (CPU ${baseline_cpu[-1]} s, peak RSS $((baseline_rss[-1] / 1024)) MiB)," \
       "replay ${replay[-1]} events/s (CPU ${replay_cpu[-1]} s, peak RSS $((replay_rss[-1] / 1024)) MiB)," \
       "floor ${floor[-1]} records/s (CPU ${floor_cpu[-1]} s)" >&2
done
records=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["records"])' "$b")
bytes=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bytes"])' "$b")
python3 - "$records" "$bytes" "$partitions" "${baseline[*]}" "${replay[*]}" "${baseline_rss[*]}" "${replay_rss[*]}" \
  "${floor[*]}" "${baseline_cpu[*]}" "${replay_cpu[*]}" "${floor_cpu[*]}" "${broker_cpu[*]:-}" <<'PY'
import json, statistics, sys
records, nbytes, partitions = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
base = [int(x) for x in sys.argv[4].split()]
rep = [int(x) for x in sys.argv[5].split()]
mib = lambda kib: round(int(kib) / 1024)
flo = [int(x) for x in sys.argv[8].split()]
# CPU per event in microseconds, per round.
us = lambda arg: [round(float(x) * 1e6 / records, 2) for x in arg.split()]
cb, cr, cf = us(sys.argv[9]), us(sys.argv[10]), us(sys.argv[11])
mb, mr, mf = statistics.median(base), statistics.median(rep), statistics.median(flo)
print(json.dumps({
    "log_events": records, "log_bytes": nbytes, "partitions": partitions,
    "baseline_records_per_second": base, "replay_events_per_second": rep,
    "median_baseline": mb, "median_replay": mr, "replay_over_baseline": round(mr / mb, 3),
    "floor_records_per_second": flo, "floor_over_baseline": round(mf / mb, 3),
    "baseline_cpu_us_per_event": cb, "replay_cpu_us_per_event": cr, "floor_cpu_us_per_event": cf,
    "median_replay_cpu_us_per_event": statistics.median(cr),
    "median_baseline_cpu_us_per_event": statistics.median(cb),
    # The embedded broker's CPU during each replay (none on BROKERS=LIST).
    "broker_cpu_us_per_event_during_replay": us(sys.argv[12]),
    "baseline_peak_rss_mib": [mib(x) for x in sys.argv[6].split()],
    "replay_peak_rss_mib": [mib(x) for x in sys.argv[7].split()],
}))
PY
