#!/usr/bin/env bash
# GET /orders/{id} served from the local RocksDB projection, measured with wrk.
#
#   bash bench/http_bench.sh [ORDERS] [CONNECTIONS] [SECONDS] [RUNS]
#   (defaults: 10000 orders, 16 connections, 10 s, 3 runs)
#
# Starts `orderflow up` on the embedded broker with ORDERS simulated orders
# (full lifecycle), waits until every order is delivered or cancelled, lists
# the order ids through GET /orders, then runs wrk against
#   1. GET /healthz          the baseline: the HTTP stack alone
#   2. GET /orders/{id}      a RocksDB read and the JSON of the order, ids rotating
# and prints requests/s, p50/p99 latency, orderflow's CPU (user + sys of the
# `up` process, /proc/PID/stat) per request and the ratio of 2 to 1 per run,
# and how the order cache answered (fresh/revalidated/rendered); then
#   3. POST /orders          a new order each request, answered once the log
#                            acknowledged it (bench/http_post_order.lua), RUNS
#                            times, while the services process what it placed;
#   4. 1 and 2 over HTTPS    `up` restarted on the same data with --tls-cert and
#                            --tls-key (scripts/https-cert.sh), RUNS times, beside
#                            the plain figures of the same run (wrk keeps its
#                            connections: the handshake is paid once per connection).
# CROWD=IDLE:STREAMS (e.g. CROWD=10000:1000) first opens IDLE silent
# connections and STREAMS event streams (bench/http_crowd.py) and keeps them
# open while wrk runs. BINARY=PATH measures another orderflow binary (an older
# build, for before/after). UP_ARGS adds options to `orderflow up` (e.g.
# UP_ARGS="--services-nice 10").
# Kafka is not involved in the reads: the embedded broker idles meanwhile
# (the runs start once the projection applied nothing new for 3 s).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cpu.sh
orders=${1:-10000}
connections=${2:-16}
seconds=${3:-10}
runs=${4:-3}

command -v wrk >/dev/null || { echo "wrk is missing: run scripts/setup.sh" >&2; exit 1; }
if [[ -z ${BINARY:-} ]]; then
  TARGETS=orderflow bash scripts/build.sh >/dev/null
fi
bin=${BINARY:-build/cli/orderflow}
crowd=()
if [[ -n ${CROWD:-} ]]; then
  # Room for the crowd; the default idle timeout (60 s) would end it mid-run.
  crowd=(--http-max-connections 20000 --http-max-streams 5000 --http-idle-timeout 3600000)
fi
work=$(mktemp -d)
cleanup() {
  [[ -n ${crowd_pid:-} ]] && kill "$crowd_pid" 2>/dev/null || true
  [[ -n ${up_pid:-} ]] && kill -INT "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r -a up_args <<<"${UP_ARGS:-}"
start_up() {  # extra up options...; sets up_pid, base
  "$bin" up --http 127.0.0.1:0 --data-dir "$work/data" --transit-ms 0 --log-level info "${crowd[@]}" "${up_args[@]}" \
    "$@" 2>"$work/up.log" >/dev/null &
  up_pid=$!
  base=""
  for _ in $(seq 1 600); do
    base=$(grep -o 'HTTP API and web page on https\?://[^/]*' "$work/up.log" | sed 's|.* on ||' || true)
    [[ -n $base ]] && break
    sleep 0.1
  done
  [[ -n $base ]] || { echo "orderflow up did not start:" >&2; cat "$work/up.log" >&2; exit 1; }
}
start_up --simulate "$orders"
address=${base#http://}
echo "orderflow up on $base; waiting for $orders orders to finish" >&2

wait_quiet() {  # base orders ids-file [ca]: every order finished, ids listed, the projection quiet for 3 s
python3 - "$@" <<'EOF'
import json, ssl, sys, time, urllib.request
base, want, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tls = ssl.create_default_context(cafile=sys.argv[4]) if len(sys.argv) > 4 else None
def open_url(path):
    return urllib.request.urlopen(base + path, context=tls)
def get(path):
    return json.load(open_url(path))
while True:
    by_status = get("/analytics")["orders_by_status"]
    done = by_status.get("delivered", 0) + by_status.get("cancelled", 0)
    if done >= want and sum(by_status.values()) == done:
        break
    time.sleep(0.5)
ids, after = [], ""
while True:
    page = get("/orders?limit=500" + ("&after=" + after if after else ""))
    ids += [o["order_id"] for o in page["orders"]]
    if not page["next"]:
        break
    after = page["next"]
open(out, "w").write("\n".join(ids) + "\n")
print(f"{len(ids)} orders in the store", file=sys.stderr)
# The lifecycle's last events (notifications) land after the orders are
# delivered: wait until the projection has applied nothing new for 3 s, so
# the first run measures reads, not reads beside the pipeline's tail.
def applied():
    text = open_url("/metrics").read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("orderflow_events_applied_total{"))
last, since = applied(), time.time()
while time.time() - since < 3:
    time.sleep(0.5)
    now = applied()
    if now != last:
        last, since = now, time.time()
EOF
}
wait_quiet "$base" "$orders" "$work/ids.txt"

if [[ -n ${CROWD:-} ]]; then
  python3 bench/http_crowd.py "$address" "${CROWD%%:*}" "${CROWD##*:}" "/orders/$(head -1 "$work/ids.txt")/events" \
    >"$work/crowd.log" 2>&1 &
  crowd_pid=$!
  for _ in $(seq 1 1200); do
    grep -q '^ready' "$work/crowd.log" && break
    kill -0 "$crowd_pid" 2>/dev/null || { echo "the crowd failed:" >&2; cat "$work/crowd.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^ready' "$work/crowd.log" || { echo "the crowd did not open in 120 s" >&2; exit 1; }
  echo "crowd open: $(grep '^ready' "$work/crowd.log")" >&2
fi

run_wrk() {  # path-or-script -> "rps p50_us p99_us cpu_us_per_request"
  local out c0
  c0=$(proc_cpu_s "$up_pid")
  if [[ $1 == post ]]; then
    out=$(wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/http_post_order.lua "$base")
  elif [[ $1 == script ]]; then
    out=$(IDS_FILE="$work/ids.txt" wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/http_get_order.lua "$base")
  else
    out=$(wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/http_latency.lua "$base$1")
  fi
  local rps p50 p99 requests cpu
  cpu=$(awk -v a="$c0" -v b="$(proc_cpu_s "$up_pid")" 'BEGIN {print b - a}')
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(grep -o 'p50_us=[0-9]*' <<<"$out" | cut -d= -f2)
  p99=$(grep -o 'p99_us=[0-9]*' <<<"$out" | cut -d= -f2)
  if grep -q 'Non-2xx' <<<"$out"; then echo "wrk saw errors:" >&2; echo "$out" >&2; exit 1; fi
  echo "$rps $p50 $p99 $(per_unit_us "$cpu" "$requests")"
}

plain_get=()
printf "%-4s %14s %10s %10s %10s %14s %10s %10s %10s %7s\n" run healthz_rps p50_us p99_us cpu_us_req \
  get_order_rps p50_us p99_us cpu_us_req ratio
for run in $(seq 1 "$runs"); do
  read -r h_rps h_p50 h_p99 h_cpu < <(run_wrk /healthz)
  read -r o_rps o_p50 o_p99 o_cpu < <(run_wrk script)
  ratio=$(awk -v a="$o_rps" -v b="$h_rps" 'BEGIN {printf "%.3f", a / b}')
  plain_get+=("$o_rps")
  printf "%-4s %14s %10s %10s %10s %14s %10s %10s %10s %7s\n" "$run" "$h_rps" "$h_p50" "$h_p99" "$h_cpu" \
    "$o_rps" "$o_p50" "$o_p99" "$o_cpu" "$ratio"
done
python3 - "$base" >&2 <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode()
counts = [line.split('result="')[1].replace('"} ', "=") for line in text.splitlines()
          if line.startswith("orderflow_http_order_cache_total{")]
print("GET /orders/{id} answers from the order cache:", " ".join(counts))
EOF
# Writes last: the orders they place keep the services busy afterwards.
# The CPU per POST counts the whole lifecycle the order starts (every service
# and the broker run inside `up`), as far as it ran within the run.
printf "%-4s %14s %10s %10s %10s\n" run post_order_rps p50_us p99_us cpu_us_req
for run in $(seq 1 "$runs"); do
  read -r p_rps p_p50 p_p99 p_cpu < <(run_wrk post)
  printf "%-4s %14s %10s %10s %10s\n" "$run" "$p_rps" "$p_p50" "$p_p99" "$p_cpu"
done
if [[ -n ${CROWD:-} ]]; then
  kill -0 "$crowd_pid" 2>/dev/null || { echo "the crowd died:" >&2; cat "$work/crowd.log" >&2; exit 1; }
  echo "crowd still open at the end: $(tail -1 "$work/crowd.log")" >&2
fi

# HTTPS: the same reads through TLS on the same data.
[[ -n ${crowd_pid:-} ]] && kill "$crowd_pid" 2>/dev/null && crowd_pid=""
kill -INT "$up_pid" && wait "$up_pid" || true
up_pid=""
bash scripts/https-cert.sh "$work/tls" >/dev/null 2>&1
start_up --tls-cert "$work/tls/server.pem" --tls-key "$work/tls/server.key"
echo "orderflow up restarted on $base (TLS 1.2+, the same data)" >&2
total=$(wc -l <"$work/ids.txt")
wait_quiet "$base" "$total" "$work/ids.https.txt" "$work/tls/ca.pem"
printf "%-4s %14s %10s %10s %10s %14s %10s %10s %10s %12s\n" run https_healthz "p50_us" "p99_us" cpu_us_req \
  https_get_order p50_us p99_us cpu_us_req https/plain
for run in $(seq 1 "$runs"); do
  read -r h_rps h_p50 h_p99 h_cpu < <(run_wrk /healthz)
  read -r o_rps o_p50 o_p99 o_cpu < <(run_wrk script)
  ratio=$(awk -v a="$o_rps" -v b="${plain_get[$((run - 1))]}" 'BEGIN {printf "%.3f", a / b}')
  printf "%-4s %14s %10s %10s %10s %14s %10s %10s %10s %12s\n" "$run" "$h_rps" "$h_p50" "$h_p99" "$h_cpu" \
    "$o_rps" "$o_p50" "$o_p99" "$o_cpu" "$ratio"
done
