#!/usr/bin/env bash
# Compares orderflow builds on one log: each build's `orderflow replay` of the
# same topic, the builds interleaved round by round (so a machine that slows
# down mid-run slows every build alike), then the medians of CPU per event
# (user + sys from /usr/bin/time), of replay's own span and of peak RSS, and
# the digests (every build should print the same one).
#
#   BROKERS=127.0.0.1:38592 PREFIX=v7r. ROUNDS=5 bash bench/replay_ab.sh \
#       before=/tmp/orderflow-before after=build/cli/orderflow
#
# Environment: BROKERS (required), PREFIX (the log's --topic-prefix, default
# none), ROUNDS (default 5), WORK (the scratch store, default a temporary
# directory, removed at the end). docs/benchmarks.md reads its output.
set -euo pipefail

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && usage
(($# >= 1)) || { echo "replay_ab: name at least one build as LABEL=PATH (--help)" >&2; exit 2; }
: "${BROKERS:?replay_ab: set BROKERS to the broker list (--help)}"
rounds=${ROUNDS:-5}
prefix=${PREFIX:-}
for spec in "$@"; do
  [[ "$spec" == *=* && -x "${spec#*=}" ]] || { echo "replay_ab: '$spec' is not LABEL=EXECUTABLE" >&2; exit 2; }
done
work=${WORK:-$(mktemp -d /tmp/replay_ab.XXXXXX)}
rows="$work/rows"
: > "$rows"
trap 'rm -rf "$work"' EXIT

for round in $(seq "$rounds"); do
  for spec in "$@"; do
    label=${spec%%=*} bin=${spec#*=}
    rm -rf "$work/store"
    args=(replay --brokers "$BROKERS" --data-dir "$work/store" --json)
    [[ -n "$prefix" ]] && args+=(--topic-prefix "$prefix")
    /usr/bin/time -f "TIME %U %S %M" -o "$work/time" "$bin" "${args[@]}" > "$work/out.json" 2> "$work/err" ||
      { echo "replay_ab: $label failed in round $round: $(tail -1 "$work/err")" >&2; exit 1; }
    python3 - "$label" "$work/out.json" "$work/time" >> "$rows" <<'PYEOF'
import json, sys
label, out, timing = sys.argv[1:4]
j = json.load(open(out))
user, sys_, rss_kib = [l for l in open(timing) if l.startswith("TIME")][-1].split()[1:4]
events = j.get("events") or j.get("records") or 1
print("%s %.3f %.3f %d %s" % (label, (float(user) + float(sys_)) * 1e6 / events, j["seconds"], int(rss_kib) // 1024,
                             j["digest"]))
PYEOF
    echo "replay_ab: round $round of $rounds, $label: $(tail -1 "$rows" | cut -d' ' -f2-4)" >&2
  done
done

python3 - "$rows" <<'PYEOF'
import collections, statistics, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    label, cpu, span, rss, digest = line.split()
    runs.setdefault(label, []).append((float(cpu), float(span), int(rss), digest))
print("%-12s %6s %16s %10s %12s  %s" % ("build", "runs", "CPU us/event", "span s", "peak RSS MiB", "digest"))
for label, r in runs.items():
    digests = sorted({x[3][:16] for x in r})
    print("%-12s %6d %16.2f %10.3f %12d  %s" % (label, len(r), statistics.median(x[0] for x in r),
          statistics.median(x[1] for x in r), max(x[2] for x in r), " ".join(digests)))
print("each: " + "; ".join("%s %s" % (label, " ".join("%.2f" % x[0] for x in r)) for label, r in runs.items()))
PYEOF
