#!/usr/bin/env bash
# PostgreSQL read model benchmark: how fast the pg-projector and
# `replay --to-postgres` consume a log, each next to its RocksDB counterpart
# on the same log in the same run (ratios, never pass/fail).
#
#   bash bench/pg_bench.sh [ORDERS] [ROUNDS]
#
# Starts `orderflow broker` (embedded, its own process) and a throwaway
# PostgreSQL (scripts/postgres.sh, fsync off), runs ORDERS orders (default
# 20000) through every service with `orderflow up`, so each order carries its
# whole lifecycle (~10 events), then ROUNDS times (default 3) measures:
#   projector     `orderflow service projector --exit-when-caught-up` into an empty RocksDB store
#   pg-projector  `orderflow service pg-projector --exit-when-caught-up` into an empty schema
#   replay        `orderflow replay` (RocksDB bulk rebuild)
#   replay-pg     `orderflow replay --to-postgres` (COPY into a fresh schema, swapped in)
# Rates are records read per second of wall time, process start included.
# Beside each rate: orderflow's CPU (user + sys) per record, and for the
# PostgreSQL rows the server's CPU per record (postmaster and its backends),
# and the embedded broker's CPU per record (bench/cpu.sh).
# The pg-projector and replay-pg read inventory.events too (stock): their
# record counts are larger, and the rate counts all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cpu.sh
orders=${1:-20000}
rounds=${2:-3}

[[ ${SKIP_BUILD:-0} == 1 ]] || bash scripts/build.sh >/dev/null  # SKIP_BUILD=1: use build/ as it is
bin=build/cli/orderflow
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  [[ -n ${broker_pid:-} ]] && kill "$broker_pid" 2>/dev/null
  bash scripts/postgres.sh stop --dir "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" broker >"$work/broker.out" 2>"$work/broker.err" &
broker_pid=$!
for _ in $(seq 50); do [[ -s $work/broker.out ]] && break; sleep 0.1; done
brokers=$(head -1 "$work/broker.out")
url=$(bash scripts/postgres.sh start --dir "$work/pg" --port "${PG_PORT:-25498}" | head -1)
pg_pid=$(head -1 "$work/pg/data/postmaster.pid")

echo "running $orders orders through every service..." >&2
"$bin" up --http off --brokers "$brokers" --data-dir "$work/live" --simulate "$orders" --exit-when-done \
  --transit-ms 0 --log-level warn --json >"$work/up.json"

now() { date +%s.%N; }
# rate RECORDS T0 T1: records per second between two `now`s.
rate() { python3 -c "import sys; print(round(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))" "$1" "$2" "$3"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Records on orders.events (what the RocksDB projector reads).
records=$("$bin" replay --brokers "$brokers" --data-dir "$work/count" --json --log-level warn |
          python3 -c "import json,sys; print(json.load(sys.stdin)['events'])")
rm -rf "$work/count"

projector=() pg_projector=() replay=() replay_pg=()
# CPU microseconds per record, per row and round: "orderflow PostgreSQL broker;".
declare -A cpu=()
# measure CMD...: runs CMD with its stdout to $work/out and sets the CPU seconds
# that orderflow (CMD), PostgreSQL and the broker spent meanwhile: c_of c_pg c_b.
measure() {
  local pg0 b0
  pg0=$(proc_cpu_s "$pg_pid") b0=$(proc_cpu_s "$broker_pid")
  cpu_run "$work/cpu" "$@" >"$work/out"
  sleep 0.3  # the backend of a closed connection exits and is reaped
  c_of=$(cat "$work/cpu")
  c_pg=$(awk -v a="$pg0" -v b="$(proc_cpu_s "$pg_pid")" 'BEGIN {print b - a}')
  c_b=$(awk -v a="$b0" -v b="$(proc_cpu_s "$broker_pid")" 'BEGIN {print b - a}')
}
per_record() {  # ROW RECORDS: appends the last measure's CPU per record to cpu[ROW]
  cpu[$1]+="$(per_unit_us "$c_of" "$2") $(per_unit_us "$c_pg" "$2") $(per_unit_us "$c_b" "$2");"
}
last() { local v="${cpu[$1]%;}"; echo "${v##*;}"; }
for round in $(seq "$rounds"); do
  rm -rf "$work/p"
  t0=$(now)
  measure "$bin" service projector --brokers "$brokers" --data-dir "$work/p" --exit-when-caught-up --log-level warn
  t1=$(now)
  projector+=("$(rate "$records" "$t0" "$t1")")
  per_record projector "$records"

  schema="bench_$round"
  t0=$(now)
  measure "$bin" service pg-projector --brokers "$brokers" --postgres "$url" --pg-schema "$schema" --exit-when-caught-up \
    --log-level warn
  t1=$(now)
  pg_records=$(psql "$url" -Atc "SELECT sum(next_offset) FROM $schema.offsets")
  pg_projector+=("$(rate "$pg_records" "$t0" "$t1")")
  per_record pg-projector "$pg_records"

  rm -rf "$work/r"
  measure "$bin" replay --brokers "$brokers" --data-dir "$work/r" --json --log-level warn
  replay+=("$(python3 -c "import json,sys; print(round(json.load(sys.stdin)['events_per_second']))" <"$work/out")")
  per_record replay "$records"
  measure "$bin" replay --brokers "$brokers" --to-postgres "$url" --pg-schema "$schema" --json --log-level warn
  replay_pg+=("$(python3 -c "import json,sys; print(round(json.load(sys.stdin)['events_per_second']))" <"$work/out")")
  per_record replay-pg "$pg_records"
  echo "round $round: projector ${projector[-1]}/s ($records records), pg-projector ${pg_projector[-1]}/s" \
       "($pg_records records), replay ${replay[-1]}/s, replay --to-postgres ${replay_pg[-1]}/s;" \
       "CPU us/record (orderflow PostgreSQL broker): projector $(last projector), pg-projector $(last pg-projector)," \
       "replay $(last replay), replay --to-postgres $(last replay-pg)" >&2
done

p=$(median "${projector[@]}") pg=$(median "${pg_projector[@]}") r=$(median "${replay[@]}") rpg=$(median "${replay_pg[@]}")
python3 - "$orders" "$p" "$pg" "$r" "$rpg" "${cpu[projector]}" "${cpu[pg-projector]}" "${cpu[replay]}" "${cpu[replay-pg]}" <<'PY'
import statistics, sys
orders, p, pg, r, rpg = sys.argv[1], *map(int, sys.argv[2:6])
def cpu(arg):  # medians of "orderflow pg broker;" per round
    rounds = [x.split() for x in arg.split(";") if x.strip()]
    return ["%.2f" % statistics.median(float(r[i]) for r in rounds) for i in range(3)]
c = {name: cpu(arg) for name, arg in zip(("projector", "pg", "replay", "rpg"), sys.argv[6:10])}
print(f"orders {orders}, medians of the rounds (records/s; CPU us per record: orderflow, PostgreSQL, broker):")
print(f"  projector (RocksDB)        {p:>9}   cpu {c['projector'][0]:>6} {'-':>6} {c['projector'][2]:>6}")
print(f"  pg-projector (PostgreSQL)  {pg:>9}   cpu {c['pg'][0]:>6} {c['pg'][1]:>6} {c['pg'][2]:>6}"
      f"   ratio to projector {pg / p:.2f}")
print(f"  replay (RocksDB)           {r:>9}   cpu {c['replay'][0]:>6} {'-':>6} {c['replay'][2]:>6}")
print(f"  replay --to-postgres       {rpg:>9}   cpu {c['rpg'][0]:>6} {c['rpg'][1]:>6} {c['rpg'][2]:>6}"
      f"   ratio to replay    {rpg / r:.2f}")
PY
