#!/usr/bin/env bash
# Peer benchmark: orderflow's rebuild beside Apache Kafka Streams, on one
# Apache Kafka broker and one log.
#
#   bash bench/peer_bench.sh [ORDERS]
#   LIFECYCLE=1 bash bench/peer_bench.sh 4000
#   ROUNDS=3 BROKERS=127.0.0.1:9092 bash bench/peer_bench.sh
#
# Starts one Apache Kafka 3.9.1 broker (scripts/kafka.sh, in a temp dir, on
# ports PORT and PORT+1, PORT default 39092; stopped on exit) unless
# BROKERS=LIST names a running cluster. Fills a fresh log, <prefix>.orders.events
# over 24 partitions under a unique topic prefix, with ORDERS simulated orders
# (default 400000, OrderPlaced only; LIFECYCLE=1 runs every service with
# --transit-ms 0 so each order carries its whole lifecycle, ~10 events, default
# 40000 orders). The log is always filled in two steps: 90 % of the orders,
# `orderflow snapshot create` of the live store, then the last 10 % appended by
# a second `orderflow up` on the same store (--seed 2), so every row reads the
# same log. Then, ROUNDS times (default 1), each row measured as a whole process:
#
#   baseline         build/bench/consume_baseline: a bare librdkafka consumer
#   replay           orderflow replay from offset zero into a fresh store
#   snapshot+tail    orderflow replay --from-snapshot (90 %) + the 10 % tail
#   ks build         Kafka Streams fold into RocksDB, changelog on (its default)
#   ks restore       Kafka Streams rebuilding that store from its changelog
#   ks build nolog   Kafka Streams fold with --no-changelog
#
# (bench/peers/kafka-streams/README.md describes the Kafka Streams program; its
# jar is built with Maven when missing or older than its sources.) Per row: the
# records it handled and the rate its tool reports over its own timed span, the
# process's wall time, CPU time (user + sys, from getrusage of the child) per
# event of the log and per record handled, peak RSS, and the broker's CPU time
# during the row (utime + stime from /proc/PID/stat; only for a broker started
# here). CPU per log event is the figure to compare: it does not depend on how
# the two cores are shared, and for snapshot+tail and restore it is the cost of
# the whole state rather than of the part they read. The Kafka Streams restore
# reads changelog records, one per key per cache flush, not one per event.
# The Kafka Streams rows also give the JVM's CPU time within their own timed
# span ("span CPU s"), without the JVM start-up and class loading that the
# whole-process CPU time counts (a few CPU seconds, which small logs feel).
#
# Progress and a table on stderr, one JSON line on stdout. Never a pass/fail
# test: digests and record counts are reported, not judged. A step that fails
# stops the script with a one-line message and exit 1; its logs are kept.
# With BROKERS, the topics and consumer groups made under the prefix stay.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
lifecycle=${LIFECYCLE:-0}
if [[ $lifecycle == 1 ]]; then orders=${1:-40000}; else orders=${1:-400000}; fi
rounds=${ROUNDS:-1}
port=${PORT:-39092}
partitions=24
[[ $orders =~ ^[0-9]+$ && $orders -ge 10 ]] || { echo "peer_bench.sh: ORDERS must be a number >= 10" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "peer_bench.sh: ROUNDS must be a positive number" >&2; exit 2; }

bin=build/cli/orderflow
baseline_bin=build/bench/consume_baseline
peer=bench/peers/kafka-streams
jar=$peer/target/kafka-streams-peer.jar
java_opts=(-Xmx1g)

work=$(mktemp -d /tmp/peer_bench.XXXXXX)
logs=$work/logs
mkdir -p "$logs"
broker_pid=
ok=0
cleanup() {
  if [[ -f $work/kafka/nodes ]]; then bash scripts/kafka.sh stop --dir "$work/kafka" >/dev/null 2>&1 || true; fi
  if ((ok)); then rm -rf "$work"
  else
    # Keep the logs of a failed run, drop the bulk (broker data, stores).
    find "$work" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} + 2>/dev/null || true
  fi
}
trap cleanup EXIT
die() { echo "peer_bench.sh: $*" >&2; exit 1; }
trap 'die "line $LINENO failed: $BASH_COMMAND (logs: $logs)"' ERR
progress() { echo "peer_bench: $*" >&2; }
# The last line of a log that says something (not blank, not a Java stack frame).
last_line() { grep -Ev '^[[:space:]]*$|^[[:space:]]+(at |\.\.\. [0-9]+ more)' "$1" 2>/dev/null | tail -1 | cut -c1-300; }

[[ -x $bin && -x $baseline_bin ]] ||
  die "$bin or $baseline_bin missing: build them with bash scripts/build.sh -DORDERFLOW_BUILD_BENCH=ON"
command -v java >/dev/null || die "java not found (a JRE 17 runs Kafka and the Kafka Streams peer)"
if [[ ! -f $jar || -n $(find "$peer/pom.xml" "$peer/src" -newer "$jar" -type f 2>/dev/null | head -1) ]]; then
  progress "building $jar with Maven..."
  mvn -q -B -f "$peer/pom.xml" package >"$logs/mvn.log" 2>&1 || die "mvn package of $peer failed: $(last_line "$logs/mvn.log") (log: $logs/mvn.log)"
fi

# run NAME CMD...: runs CMD, its stdout into $work/NAME.out and its stderr into $logs/NAME.err.
run() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$logs/$name.err" ||
    die "$name failed (exit $?): $(last_line "$logs/$name.err") (logs: $logs)"
}

# measure ROW ROUND CMD...: runs CMD as a child of a python process that reads
# its CPU time (user + sys) and peak RSS from getrusage(RUSAGE_CHILDREN), its
# wall time, and the broker's utime + stime around it; appends one JSON line
# {"row","round","out" (the child's JSON stdout),"cpu_s","rss_kib","wall_s","broker_cpu_s"}
# to $work/rows.jsonl.
measure() {
  local row=$1 round=$2; shift 2
  local name="${row// /-}-$round" line
  line=$(python3 - "$row" "$round" "$logs/$name.err" "$broker_pid" "$@" <<'PY'
import json, os, resource, subprocess, sys, time
row, rnd, log, broker_pid, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
def broker_ticks():
    if not broker_pid:
        return None
    with open("/proc/%s/stat" % broker_pid) as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # fields from 3 (state) on
    return int(fields[11]) + int(fields[12])      # 14 utime, 15 stime (clock ticks)
b0, t0 = broker_ticks(), time.monotonic()
with open(log, "w") as err:
    child = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err)
wall, b1 = time.monotonic() - t0, broker_ticks()
if child.returncode != 0:
    sys.exit(child.returncode if 0 < child.returncode < 126 else 1)
try:
    out = json.loads(child.stdout)
except ValueError:
    with open(log, "a") as err:
        err.write("stdout is not one JSON value: %r\n" % child.stdout[:300])
    sys.exit(1)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "row": row, "round": rnd, "out": out, "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
    "rss_kib": usage.ru_maxrss, "wall_s": round(wall, 3),
    "broker_cpu_s": None if b0 is None else round((b1 - b0) / os.sysconf("SC_CLK_TCK"), 2)}))
PY
  ) || die "$row (round $round) failed (exit $?): $(last_line "$logs/$name.err") (logs: $logs)"
  echo "$line" >>"$work/rows.jsonl"
  python3 - "$line" >&2 <<'PY'
import json, sys
m = json.loads(sys.argv[1]); o = m["out"]
n = o.get("events", o.get("records"))
print("peer_bench:   %-15s %s records in %.2f s of process (CPU %.2f s, peak RSS %d MiB%s)" % (
    m["row"], n, m["wall_s"], m["cpu_s"], m["rss_kib"] // 1024,
    "" if m["broker_cpu_s"] is None else ", broker CPU %.2f s" % m["broker_cpu_s"]))
PY
}

# ---- the broker ------------------------------------------------------------
if [[ -n ${BROKERS:-} ]]; then
  brokers=$BROKERS
  progress "using the cluster at $brokers (broker CPU not measured)"
else
  progress "starting Apache Kafka (1 node) in $work/kafka on port $port..."
  run kafka-start bash scripts/kafka.sh start --nodes 1 --dir "$work/kafka" --port "$port"
  brokers=$(head -1 "$work/kafka-start.out")
  broker_pid=$(cat "$work/kafka/node-1/pid")
  grep -q kafka.Kafka "/proc/$broker_pid/cmdline" 2>/dev/null || die "no Kafka broker process at pid $broker_pid"
fi
prefix="pb-$$-$(date +%s)."
topic="${prefix}orders.events"
of=(--brokers "$brokers" --topic-prefix "$prefix")

# ---- the log: 90 %, snapshot, 10 % --------------------------------------------
first=$((orders * 9 / 10))
second=$((orders - first))
mode=(--projector-only)
[[ $lifecycle == 1 ]] && mode=(--transit-ms 0)
fill() {  # fill NAME N SEED
  SECONDS=0
  run "$1" "$bin" up --http off "${of[@]}" --partitions "$partitions" --data-dir "$work/live" \
    --simulate "$2" --seed "$3" --exit-when-done --log-level warn --json "${mode[@]}"
  progress "  $2 orders in $SECONDS s"
}
progress "filling $topic with $first + $second orders ($([[ $lifecycle == 1 ]] && echo "whole lifecycle" || echo "OrderPlaced only"), $partitions partitions)..."
fill fill-1 "$first" 1
run snapshot "$bin" snapshot create --name p90 --data-dir "$work/live" --snapshots "$work/snapshots" --json
fill fill-2 "$second" 2
# The second fill must have appended to the same log and store: the live store
# then knows every order.
python3 - "$work/fill-2.out" "$orders" <<'PY' || die "the second fill did not append to the first one's log (see $work/fill-2.out)"
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if sum(s["orders_by_status"].values()) == int(sys.argv[2]) else 1)
PY

# ---- the rows -----------------------------------------------------------------
ks=(java "${java_opts[@]}" -jar "$jar" "$brokers" "$topic")
for round in $(seq "$rounds"); do
  progress "round $round of $rounds"
  measure "baseline" "$round" "$baseline_bin" "$brokers" "$topic"
  measure "replay" "$round" "$bin" replay "${of[@]}" --data-dir "$work/full-$round" --json
  rm -rf "$work/full-$round"
  measure "snapshot+tail" "$round" "$bin" replay "${of[@]}" --data-dir "$work/tail-$round" \
    --from-snapshot p90 --snapshots "$work/snapshots" --json
  rm -rf "$work/tail-$round"
  app="${prefix}ks-r$round"
  measure "ks build" "$round" "${ks[@]}" "$app" build "$work/ks-state"
  measure "ks restore" "$round" "${ks[@]}" "$app" restore "$work/ks-state"
  measure "ks build nolog" "$round" "${ks[@]}" "${prefix}ks-nolog-r$round" build "$work/ks-state" --no-changelog
  rm -rf "$work/ks-state"
done

# ---- report -------------------------------------------------------------------
python3 - "$work/rows.jsonl" "$work/fill-1.out" "$work/fill-2.out" "$work/snapshots/p90/manifest.json" \
  "$orders" "$lifecycle" "$rounds" "$partitions" "$topic" "$([[ -n $broker_pid ]] && echo 1 || echo 0)" <<'PY'
import json, statistics, sys
rows_file, fill1, fill2, manifest_file = sys.argv[1:5]
orders, lifecycle, rounds, partitions = int(sys.argv[5]), sys.argv[6] == "1", int(sys.argv[7]), int(sys.argv[8])
topic, own_broker = sys.argv[9], sys.argv[10] == "1"
ms = [json.loads(l) for l in open(rows_file)]
f1, f2, manifest = json.load(open(fill1)), json.load(open(fill2)), json.load(open(manifest_file))
order = ["baseline", "replay", "snapshot+tail", "ks build", "ks restore", "ks build nolog"]
log_events = ms[0]["out"]["records"]
log_bytes = ms[0]["out"]["bytes"]
snapshot_events = sum(manifest["offsets"].values())
med = lambda xs: None if not xs or any(x is None for x in xs) else statistics.median(xs)

def handled(o):  # records the row's tool went through, and its own timed rate
    if "events" in o:
        return o["events"], o["seconds"], o["events_per_second"]
    return o["records"], o["seconds"], o["records_per_second"]

rows = {}
for name in order:
    mine = [m for m in ms if m["row"] == name]
    r = {"records": [], "seconds": [], "per_second": [], "wall_s": [], "cpu_s": [],
         "cpu_us_per_log_event": [], "cpu_us_per_record": [], "peak_rss_mib": [], "broker_cpu_s": [],
         "span_cpu_s": []}
    for m in mine:
        n, s, rate = handled(m["out"])
        r["records"].append(n); r["seconds"].append(round(s, 3)); r["per_second"].append(round(rate))
        r["wall_s"].append(m["wall_s"]); r["cpu_s"].append(m["cpu_s"])
        r["cpu_us_per_log_event"].append(round(m["cpu_s"] * 1e6 / log_events, 2))
        r["cpu_us_per_record"].append(round(m["cpu_s"] * 1e6 / n, 2) if n else None)
        r["peak_rss_mib"].append(round(m["rss_kib"] / 1024))
        r["broker_cpu_s"].append(m["broker_cpu_s"])
        r["span_cpu_s"].append(m["out"].get("cpu_seconds"))  # Kafka Streams: CPU within its timed span
    if not name.startswith("ks"):
        del r["span_cpu_s"]
    for k in ("per_second", "cpu_us_per_log_event", "wall_s", "peak_rss_mib", "broker_cpu_s"):
        r["median_" + k] = med(r[k])
    r["tool_output"] = [m["out"] if name.startswith("ks") else
                        {k: v for k, v in m["out"].items() if k != "offsets"} for m in mine]
    rows[name] = r

digests = {"live": f2.get("digest"), "snapshot": manifest.get("digest"),
           "replay": [m["out"]["digest"] for m in ms if m["row"] == "replay"],
           "snapshot_tail": [m["out"]["digest"] for m in ms if m["row"] == "snapshot+tail"]}
digests["replay_equals_live"] = all(d == digests["live"] for d in digests["replay"])
digests["snapshot_tail_equals_replay"] = all(d == digests["replay"][0] for d in digests["snapshot_tail"])
checks = {
    "replay_events_equal_log": all(n == log_events for n in rows["replay"]["records"]),
    "snapshot_plus_tail_equal_log": all(snapshot_events + n == log_events for n in rows["snapshot+tail"]["records"]),
    "ks_build_records_equal_log": all(n == log_events for n in rows["ks build"]["records"] + rows["ks build nolog"]["records"]),
}
cpu = lambda name: rows[name]["median_cpu_us_per_log_event"]
rate = lambda name: rows[name]["median_per_second"]
ratios = {
    "cpu_ks_build_over_replay": round(cpu("ks build") / cpu("replay"), 2),
    "cpu_ks_build_nolog_over_replay": round(cpu("ks build nolog") / cpu("replay"), 2),
    "cpu_ks_restore_over_replay": round(cpu("ks restore") / cpu("replay"), 2),
    "cpu_ks_restore_over_snapshot_tail": round(cpu("ks restore") / cpu("snapshot+tail"), 2),
    "cpu_replay_over_baseline": round(cpu("replay") / cpu("baseline"), 2),
    "rate_replay_over_ks_build": round(rate("replay") / rate("ks build"), 2),
    "rate_replay_over_ks_build_nolog": round(rate("replay") / rate("ks build nolog"), 2),
    "rate_replay_over_baseline": round(rate("replay") / rate("baseline"), 3),
}

w = sys.stderr.write
w("\n%s: %d events, %.1f MiB, %d partitions, %d orders (%s); snapshot at %d events (%.0f %%); %d round(s), medians\n" % (
    topic, log_events, log_bytes / 2**20, partitions, orders, "lifecycle" if lifecycle else "OrderPlaced only",
    snapshot_events, 100.0 * snapshot_events / log_events, rounds))
head = ("row", "records", "tool s", "records/s", "span CPU s", "wall s", "CPU s", "CPU us/log ev", "CPU us/record",
        "RSS MiB", "broker CPU s")
fmt = "%-15s %9s %7s %10s %10s %7s %7s %13s %13s %8s %12s\n"
w(fmt % head)
for name in order:
    r = rows[name]
    num = lambda k, f: "-" if med(r.get(k)) is None else f % med(r[k])
    w(fmt % (name, num("records", "%d"), num("seconds", "%.2f"), num("per_second", "%d"), num("span_cpu_s", "%.2f"),
             num("wall_s", "%.2f"),
             num("cpu_s", "%.2f"), num("cpu_us_per_log_event", "%.2f"), num("cpu_us_per_record", "%.2f"),
             num("peak_rss_mib", "%d"), num("broker_cpu_s", "%.2f")))
w("records: log records read (baseline, replay, ks build), tail events (snapshot+tail), changelog records (ks restore)\n")
w("tool s, records/s: each tool's own timed span (span CPU s: Kafka Streams' process CPU within it);\n"
  "wall s, CPU s (user + sys), CPU us per log event / per record, RSS: the whole process\n")
w("digests: replay %s live store, snapshot+tail %s replay; ks build records %s log events\n" % (
    "=" if digests["replay_equals_live"] else "!=", "=" if digests["snapshot_tail_equals_replay"] else "!=",
    "=" if checks["ks_build_records_equal_log"] else "!="))
w("CPU per log event over replay: ks build %.2f, ks build nolog %.2f, ks restore %.2f\n\n" % (
    ratios["cpu_ks_build_over_replay"], ratios["cpu_ks_build_nolog_over_replay"], ratios["cpu_ks_restore_over_replay"]))

print(json.dumps({
    "topic": topic, "orders": orders, "lifecycle": lifecycle, "partitions": partitions, "rounds": rounds,
    "log_events": log_events, "log_bytes": log_bytes, "broker": "apache-kafka-3.9.1" if own_broker else "given",
    "snapshot_events": snapshot_events, "tail_events": log_events - snapshot_events,
    "fill_seconds": [f1.get("seconds"), f2.get("seconds")],
    "rows": rows, "ratios": ratios, "digests": digests, "checks": checks,
}))
PY
ok=1
