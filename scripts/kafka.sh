#!/usr/bin/env bash
# Runs Apache Kafka (KRaft: every node broker + controller) on loopback, from
# the jars that deploy/kafka/pom.xml pins. No Docker.
#
#   kafka.sh start [--nodes 1|3] [--dir DIR] [--port BASE]
#                               start (or complete) the cluster; first stdout line: bootstrap list
#   kafka.sh stop [--dir DIR]       stop every node (SIGTERM, then SIGKILL after 30 s)
#   kafka.sh status [--dir DIR] [--json]
#   kafka.sh kill N [--dir DIR]     SIGKILL node N (fault tests)
#   kafka.sh stop-node N [--dir DIR]    SIGTERM node N and wait until it exited: a controlled
#                                   shutdown that moves its partitions' leadership to the others
#   kafka.sh elect-leaders [--dir DIR]  move each partition's leadership back to its preferred replica
#   kafka.sh start-node N [--dir DIR]   start node N again and wait until it serves
#   kafka.sh bootstrap [--dir DIR]  print the bootstrap list of a started cluster
#   kafka.sh controller [--dir DIR] print the node id of the active KRaft controller
#   kafka.sh run-node N [--nodes 1|3] [--dir DIR] [--port BASE]
#                                   format if needed and run node N in the foreground
#                                   (containers: deploy/docker-compose.yml)
#   kafka.sh tool CLASS [ARGS...]   run a Kafka tool class with the same jars, e.g.
#                                   kafka.tools.DumpLogSegments --files X.log --deep-iteration
#
# The jars are fetched once with `mvn dependency:copy-dependencies` into
# $ORDERFLOW_KAFKA_CACHE (default ~/.cache/orderflow/kafka-<version>) and reused
# without the network afterwards ($ORDERFLOW_KAFKA_LIBS names a ready jar
# directory instead, as in the Docker image). Node N serves clients on BASE+2(N-1) and the
# controller quorum on BASE+2(N-1)+1; BASE defaults to 9092. DIR defaults to
# $ORDERFLOW_KAFKA_DIR or /tmp/orderflow-kafka and holds each node's data, log
# (node-N/server.log) and pid. `start` is idempotent: nodes already running are
# left alone. Nodes advertise 127.0.0.1 unless $ORDERFLOW_KAFKA_HOSTS lists one
# host name per node ("kafka-1,kafka-2,kafka-3"); $ORDERFLOW_KAFKA_CLUSTER_ID
# gives nodes that do not share DIR one cluster id.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
deploy="$root/deploy/kafka"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$deploy/pom.xml")
cache="${ORDERFLOW_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/kafka-$version}"
dir="${ORDERFLOW_KAFKA_DIR:-/tmp/orderflow-kafka}"
nodes=""
port=""
json=0

die() { echo "kafka.sh: $*" >&2; exit 1; }
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

cmd="${1:-}"
[[ -n "$cmd" ]] || { usage >&2; exit 2; }
[[ "$cmd" == -h || "$cmd" == --help || "$cmd" == help ]] && { usage; exit 0; }
shift
node_arg=""
if [[ "$cmd" == kill || "$cmd" == stop-node || "$cmd" == start-node || "$cmd" == run-node ]]; then
  node_arg="${1:-}"
  [[ "$node_arg" =~ ^[1-9]$ ]] || { echo "kafka.sh: $cmd needs a node number, e.g. kafka.sh $cmd 2" >&2; exit 2; }
  shift
fi
tool_args=()
if [[ "$cmd" == tool ]]; then
  [[ $# -ge 1 ]] || { echo "kafka.sh: tool needs a class name, e.g. kafka.tools.DumpLogSegments" >&2; exit 2; }
  tool_args=("$@")
  set --
fi
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) nodes="${2:-}"; shift 2 ;;
    --dir) dir="${2:-}"; shift 2 ;;
    --port) port="${2:-}"; shift 2 ;;
    --json) json=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "kafka.sh: unknown argument '$1' (see kafka.sh --help)" >&2; exit 2 ;;
  esac
done
[[ -z "$nodes" || "$nodes" == 1 || "$nodes" == 3 ]] || { echo "kafka.sh: --nodes must be 1 or 3" >&2; exit 2; }
[[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || { echo "kafka.sh: --port must be a number" >&2; exit 2; }
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

# ---- jars ---------------------------------------------------------------------

need_java() {
  command -v java >/dev/null ||
    die "java not found: install a JRE 17 (sudo apt-get install openjdk-17-jre-headless, or bash scripts/setup.sh)"
}

ensure_jars() {
  need_java
  if [[ -n ${ORDERFLOW_KAFKA_LIBS:-} ]]; then cache="$(dirname "$ORDERFLOW_KAFKA_LIBS")"; return; fi
  local sum
  sum=$(sha256sum "$deploy/pom.xml" | cut -d' ' -f1)
  if [[ -f "$cache/pom.sha256" && "$(cat "$cache/pom.sha256")" == "$sum" ]]; then return; fi
  command -v mvn >/dev/null ||
    die "mvn not found: install Maven to fetch the Kafka jars once (sudo apt-get install maven, or bash scripts/setup.sh)"
  echo "kafka.sh: fetching Apache Kafka $version jars into $cache (once)" >&2
  rm -rf "$cache.tmp"
  mkdir -p "$cache.tmp"
  if ! mvn -q -B -f "$deploy/pom.xml" dependency:copy-dependencies -DoutputDirectory="$cache.tmp/libs" >"$cache.tmp/mvn.log" 2>&1; then
    tail -5 "$cache.tmp/mvn.log" >&2
    die "mvn could not fetch the Kafka jars (log in $cache.tmp/mvn.log); is Maven Central reachable?"
  fi
  echo "$sum" >"$cache.tmp/pom.sha256"
  rm -rf "$cache"
  mv "$cache.tmp" "$cache"
}

java_run() {  # java_run HEAP CLASS ARGS...
  local heap="$1"; shift
  java -Xms128m -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$deploy/tools-log4j.properties" \
    -cp "$cache/libs/*" "$@"
}

# ---- cluster state ------------------------------------------------------------

saved() { [[ -f "$dir/$1" ]] && cat "$dir/$1" || true; }
node_count() { local n; n=$(saved nodes); echo "${n:-${nodes:-1}}"; }
base_port() { local p; p=$(saved port); echo "${p:-${port:-9092}}"; }
client_port() { echo $(($(base_port) + 2 * ($1 - 1))); }
node_host() {  # the name node $1 advertises
  local hosts
  IFS=, read -ra hosts <<<"${ORDERFLOW_KAFKA_HOSTS:-}"
  echo "${hosts[$(($1 - 1))]:-127.0.0.1}"
}
bind_host() { [[ -n ${ORDERFLOW_KAFKA_HOSTS:-} ]] && echo 0.0.0.0 || echo 127.0.0.1; }
controller_port() { echo $(($(base_port) + 2 * ($1 - 1) + 1)); }
node_pid() { [[ -f "$dir/node-$1/pid" ]] && cat "$dir/node-$1/pid" || true; }
node_alive() {
  local pid; pid=$(node_pid "$1")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null
}
bootstrap_list() {
  local n list=""
  for ((n = 1; n <= $(node_count); n++)); do list+="${list:+,}$(node_host "$n"):$(client_port "$n")"; done
  echo "$list"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

node_overrides() {  # the per-node settings passed with --override
  local n="$1" count voters="" i
  count=$(node_count)
  for ((i = 1; i <= count; i++)); do voters+="${voters:+,}$i@$(node_host "$i"):$(controller_port "$i")"; done
  echo "--override node.id=$n"
  echo "--override controller.quorum.voters=$voters"
  echo "--override listeners=PLAINTEXT://$(bind_host):$(client_port "$n"),CONTROLLER://$(bind_host):$(controller_port "$n")"
  echo "--override advertised.listeners=PLAINTEXT://$(node_host "$n"):$(client_port "$n")"
  echo "--override log.dirs=$dir/node-$n/data"
}

properties() { [[ $(node_count) == 3 ]] && echo "$deploy/cluster.properties" || echo "$deploy/single.properties"; }
heap() { [[ $(node_count) == 3 ]] && echo 512m || echo 1g; }

format_node() {
  local n="$1"
  [[ -f "$dir/node-$n/data/meta.properties" ]] && return
  mkdir -p "$dir/node-$n"
  # StorageTool reads the properties file only: write this node's copy with its overrides applied.
  local props="$dir/node-$n/server.properties"
  cp "$(properties)" "$props"
  local line
  while read -r _ line; do echo "$line" >>"$props"; done < <(node_overrides "$n")
  java_run 256m kafka.tools.StorageTool format -t "$(cat "$dir/cluster-id")" -c "$props" --ignore-formatted \
    >"$dir/node-$n/format.log" 2>&1 || { cat "$dir/node-$n/format.log" >&2; die "formatting node $n failed"; }
}

launch_node() {
  local n="$1"
  if node_alive "$n"; then return; fi
  port_open "$(client_port "$n")" && die "port $(client_port "$n") is in use by another program: pick other ports with --port BASE"
  format_node "$n"
  mkdir -p "$dir/node-$n"
  : >"$dir/node-$n/server.log"
  local args
  read -ra args <<<"$(node_overrides "$n" | tr '\n' ' ')"
  setsid nohup java -Xms256m -Xmx"$(heap)" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$deploy/log4j.properties" -Dkafka.logs.dir="$dir/node-$n" \
    -cp "$cache/libs/*" kafka.Kafka "$(properties)" "${args[@]}" \
    >"$dir/node-$n/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/node-$n/pid"
}

wait_serving() {  # wait_serving N...
  local n deadline=$((SECONDS + 90))
  for n in "$@"; do
    while ! { grep -q "Kafka Server started" "$dir/node-$n/server.log" 2>/dev/null && port_open "$(client_port "$n")"; }; do
      kill -0 "$(node_pid "$n")" 2>/dev/null || { tail -20 "$dir/node-$n/server.log" "$dir/node-$n/stdout.log" >&2 2>/dev/null
                           die "node $n exited while starting (log: $dir/node-$n/server.log)"; }
      ((SECONDS < deadline)) || die "node $n did not start serving within 90 s (log: $dir/node-$n/server.log)"
      sleep 0.2
    done
  done
}

# ---- commands -----------------------------------------------------------------

case "$cmd" in
  start)
    ensure_jars
    if [[ -f "$dir/nodes" && -n "$nodes" && "$nodes" != "$(saved nodes)" ]]; then
      die "$dir holds a $(saved nodes)-node cluster; stop it and use another --dir for $nodes nodes"
    fi
    [[ -f "$dir/nodes" ]] || echo "${nodes:-1}" >"$dir/nodes"
    [[ -f "$dir/port" ]] || echo "${port:-9092}" >"$dir/port"
    [[ -f "$dir/cluster-id" ]] || java_run 256m kafka.tools.StorageTool random-uuid >"$dir/cluster-id"
    started=()
    for ((n = 1; n <= $(node_count); n++)); do
      if ! node_alive "$n"; then launch_node "$n"; started+=("$n"); fi
    done
    ((${#started[@]} == 0)) || wait_serving "${started[@]}"
    bootstrap_list | tee "$dir/bootstrap"
    echo "kafka.sh: Apache Kafka $version, $(node_count) node(s) serving in $dir" >&2
    ;;
  start-node)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir: run kafka.sh start first"
    ((node_arg <= $(node_count))) || die "the cluster in $dir has $(node_count) node(s)"
    ensure_jars
    launch_node "$node_arg"
    wait_serving "$node_arg"
    ;;
  run-node)
    ensure_jars
    [[ -f "$dir/nodes" ]] || echo "${nodes:-1}" >"$dir/nodes"
    [[ -f "$dir/port" ]] || echo "${port:-9092}" >"$dir/port"
    if [[ ! -f "$dir/cluster-id" ]]; then
      if [[ -n ${ORDERFLOW_KAFKA_CLUSTER_ID:-} ]]; then echo "$ORDERFLOW_KAFKA_CLUSTER_ID" >"$dir/cluster-id"
      else java_run 256m kafka.tools.StorageTool random-uuid >"$dir/cluster-id"; fi
    fi
    format_node "$node_arg"
    read -ra args <<<"$(node_overrides "$node_arg" | tr '\n' ' ')"
    echo $$ >"$dir/node-$node_arg/pid"
    exec java -Xms256m -Xmx"$(heap)" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$deploy/console-log4j.properties" \
      -cp "$cache/libs/*" kafka.Kafka "$(properties)" "${args[@]}"
    ;;
  kill)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir"
    if node_alive "$node_arg"; then kill -9 "$(node_pid "$node_arg")"; fi
    ;;
  stop-node)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir"
    ((node_arg <= $(node_count))) || die "the cluster in $dir has $(node_count) node(s)"
    if node_alive "$node_arg"; then
      kill -TERM "$(node_pid "$node_arg")"
      deadline=$((SECONDS + 60))
      while node_alive "$node_arg"; do
        ((SECONDS < deadline)) || die "node $node_arg did not stop within 60 s of SIGTERM (log: $dir/node-$node_arg/server.log)"
        sleep 0.2
      done
    fi
    ;;
  elect-leaders)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir: run kafka.sh start first"
    ensure_jars
    # Partitions already led by their preferred replica are reported as such, not as errors.
    out=$(java_run 256m org.apache.kafka.tools.LeaderElectionCommand --bootstrap-server "$(bootstrap_list)" \
      --election-type PREFERRED --all-topic-partitions 2>&1) ||
      { grep -q "ElectionNotNeeded\|election not needed\|already elected" <<<"$out" || { echo "$out" >&2; die "preferred leader election failed"; }; }
    echo "$out" | grep -i "success" | head -1 >&2 || true
    ;;
  stop)
    [[ -f "$dir/nodes" ]] || { echo "kafka.sh: nothing to stop in $dir" >&2; exit 0; }
    for ((n = 1; n <= $(node_count); n++)); do
      if node_alive "$n"; then kill -TERM "$(node_pid "$n")"; fi
    done
    deadline=$((SECONDS + 30))
    for ((n = 1; n <= $(node_count); n++)); do
      while node_alive "$n"; do
        if ((SECONDS >= deadline)); then kill -9 "$(node_pid "$n")" 2>/dev/null || true; fi
        sleep 0.2
      done
    done
    echo "kafka.sh: stopped the cluster in $dir" >&2
    ;;
  status)
    [[ -f "$dir/nodes" ]] || { echo "kafka.sh: no cluster in $dir" >&2; exit 1; }
    up=0
    entries=()
    for ((n = 1; n <= $(node_count); n++)); do
      if node_alive "$n" && port_open "$(client_port "$n")"; then state=up; up=$((up + 1)); else state=down; fi
      if ((json)); then
        entries+=("{\"node\":$n,\"address\":\"127.0.0.1:$(client_port "$n")\",\"state\":\"$state\",\"pid\":\"$(node_pid "$n")\"}")
      else
        echo "node $n 127.0.0.1:$(client_port "$n") $state"
      fi
    done
    if ((json)); then
      (IFS=,; echo "{\"version\":\"$version\",\"dir\":\"$dir\",\"bootstrap\":\"$(bootstrap_list)\",\"nodes\":[${entries[*]}]}")
    fi
    ((up > 0))
    ;;
  bootstrap)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir: run kafka.sh start first"
    bootstrap_list
    ;;
  controller)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir: run kafka.sh start first"
    ensure_jars
    java_run 256m org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$(bootstrap_list)" \
      describe --status 2>/dev/null | sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p' | grep -m1 '[0-9]' ||
      die "no active controller answered (is a majority of the nodes up?)"
    ;;
  tool)
    ensure_jars
    java_run 512m "${tool_args[@]}"
    ;;
  *)
    echo "kafka.sh: unknown command '$cmd' (start, stop, status, kill N, stop-node N, start-node N, elect-leaders, bootstrap, controller, tool)" >&2
    exit 2
    ;;
esac
