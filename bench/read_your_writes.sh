#!/usr/bin/env bash
# Reading one's own write: POST /orders, then GET its status_url
# (?min_position=P:O, parked until the projection applied the write), the
# GET's latency, while a simulation keeps the services and the projector busy.
#
#   BROKERS=127.0.0.1:9092 bash bench/read_your_writes.sh [PAIRS=300] [RATE=300]
#
# Starts `orderflow up` on BROKERS (a running cluster, e.g. `scripts/kafka.sh
# start`; the topics are new, under a unique prefix) with --simulate at RATE
# orders/s and HTTP on PORT (default 18080), then sends PAIRS POST + GET pairs,
# one at a time, 20 ms apart, and prints the GET's p50/p90/p99/max in ms.
# BINARY=PATH measures another orderflow binary (before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-300}
rate=${2:-300}
port=${PORT:-18080}
bin=${BINARY:-build/cli/orderflow}
: "${BROKERS:?set BROKERS to a running cluster (bash scripts/kafka.sh start)}"
[[ -x $bin ]] || { echo "read_your_writes: $bin is missing; build it first (bash scripts/build.sh)" >&2; exit 1; }
work=$(mktemp -d)
"$bin" up --http "127.0.0.1:$port" --brokers "$BROKERS" --topic-prefix "ryw-$$-$(date +%s)." --data-dir "$work/up" \
  --simulate 10000000 --rate "$rate" --log-level warn >"$work/up.log" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "read_your_writes: up did not get ready (see $work/up.log)" >&2; exit 1; }
sleep 3  # the simulation under way
python3 - "http://127.0.0.1:$port" "$pairs" <<'PY'
import json, sys, time, urllib.request
base, n = sys.argv[1], int(sys.argv[2])
lat = []
for i in range(n):
    body = json.dumps({"customer_id": "cust-ryw-%d" % (i % 97),
                       "lines": [{"sku": "SKU-ESPRESSO", "quantity": 1}]}).encode()
    req = urllib.request.Request(base + "/orders", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    placed = json.load(urllib.request.urlopen(req))
    t = time.monotonic()
    urllib.request.urlopen(base + placed["status_url"]).read()
    lat.append((time.monotonic() - t) * 1000)
    time.sleep(0.02)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]
print(json.dumps({"pairs": n, "p50_ms": round(q(0.5), 1), "p90_ms": round(q(0.9), 1),
                  "p99_ms": round(q(0.99), 1), "max_ms": round(lat[-1], 1)}))
PY
