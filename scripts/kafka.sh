#!/usr/bin/env bash
# Runs Apache Kafka (KRaft: every node broker + controller) on loopback, from
# the jars that deploy/kafka/pom.xml pins. No Docker.
#
#   kafka.sh start [--nodes 1|3] [--dir DIR] [--port BASE] [--secure [--topic-prefix P]]
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
#   kafka.sh acls [--dir DIR] [--topic-prefix P]
#                                   (secure clusters) apply deploy/kafka/acls again, e.g. after
#                                   editing it or for another topic prefix
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
#
# --secure (recorded in DIR/security; later commands on DIR follow it): the client
# port speaks SASL_SSL only (SCRAM-SHA-512), the nodes replicate over it as user
# `broker` and talk to the controller quorum over mutual TLS; the
# StandardAuthorizer denies what no ACL allows (super users: admin, broker, the
# nodes' certificates). kafka.sh makes a CA and a certificate per node in
# DIR/tls/ (CA: DIR/tls/ca.pem), one SCRAM user per orderflow component named in
# deploy/kafka/acls ($ORDERFLOW_KAFKA_ACLS names another file) with a random
# password (DIR/passwords, mode 600), grants that file's ACLs (names prefixed with
# --topic-prefix, default $ORDERFLOW_TOPIC_PREFIX; kept in DIR/topic-prefix) and writes per user
# DIR/clients/USER.properties (librdkafka) and DIR/clients/USER.java.properties
# (Kafka's Java tools), e.g.
#   kafka.sh tool org.apache.kafka.tools.TopicCommand --bootstrap-server B \
#     --command-config DIR/clients/admin.java.properties --list
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
deploy="$root/deploy/kafka"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$deploy/pom.xml")
cache="${ORDERFLOW_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/kafka-$version}"
dir="${ORDERFLOW_KAFKA_DIR:-/tmp/orderflow-kafka}"
nodes=""
port=""
json=0
secure=0
topic_prefix=""
prefix_given=0
acls_file="${ORDERFLOW_KAFKA_ACLS:-$deploy/acls}"

die() { echo "kafka.sh: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; }

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
    --secure) secure=1; shift ;;
    --topic-prefix) [[ $# -ge 2 ]] || { echo "kafka.sh: --topic-prefix needs a value (may be '')" >&2; exit 2; }
                    topic_prefix="$2"; prefix_given=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "kafka.sh: unknown argument '$1' (see kafka.sh --help)" >&2; exit 2 ;;
  esac
done
[[ -z "$nodes" || "$nodes" == 1 || "$nodes" == 3 ]] || { echo "kafka.sh: --nodes must be 1 or 3" >&2; exit 2; }
[[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || { echo "kafka.sh: --port must be a number" >&2; exit 2; }
[[ "$topic_prefix" =~ ^[A-Za-z0-9._-]*$ ]] ||
  { echo "kafka.sh: --topic-prefix may hold letters, digits, '.', '_' and '-' only (as orderflow's)" >&2; exit 2; }
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
is_secure() { [[ "$(saved security)" == SASL_SSL ]]; }
client_listener() { is_secure && echo SASL_SSL || echo PLAINTEXT; }

node_overrides() {  # the per-node settings passed with --override
  local n="$1" count voters="" i
  count=$(node_count)
  for ((i = 1; i <= count; i++)); do voters+="${voters:+,}$i@$(node_host "$i"):$(controller_port "$i")"; done
  echo "--override node.id=$n"
  echo "--override controller.quorum.voters=$voters"
  echo "--override listeners=$(client_listener)://$(bind_host):$(client_port "$n"),CONTROLLER://$(bind_host):$(controller_port "$n")"
  echo "--override advertised.listeners=$(client_listener)://$(node_host "$n"):$(client_port "$n")"
  echo "--override log.dirs=$dir/node-$n/data"
}

properties() { [[ $(node_count) == 3 ]] && echo "$deploy/cluster.properties" || echo "$deploy/single.properties"; }
heap() { [[ $(node_count) == 3 ]] && echo 512m || echo 1g; }

format_node() {
  local n="$1"
  [[ -f "$dir/node-$n/data/meta.properties" ]] && return
  mkdir -p "$dir/node-$n"
  # StorageTool reads the properties file only: write this node's copy with its overrides applied.
  local props="$dir/node-$n/server.properties" args="$dir/node-$n/format.args" user
  # The tool's arguments go in a Java argument file (mode 600, removed after):
  # the SCRAM passwords never reach a process's argv (/proc/PID/cmdline).
  (umask 077; printf '%s\n' kafka.tools.StorageTool format -t "$(cat "$dir/cluster-id")" -c "$props" --ignore-formatted >"$args")
  if is_secure; then
    write_secure_node_properties "$n"
    # Every user's SCRAM credentials go into the metadata log's bootstrap records.
    for user in $(all_users); do printf '%s\n' -S "SCRAM-SHA-512=[name=$user,password=$(password "$user")]" >>"$args"; done
  else
    cp "$(properties)" "$props"
    local line
    while read -r _ line; do echo "$line" >>"$props"; done < <(node_overrides "$n")
  fi
  java_run 256m "@$args" >"$dir/node-$n/format.log" 2>&1 ||
    { rm -f "$args"; cat "$dir/node-$n/format.log" >&2; die "formatting node $n failed"; }
  rm -f "$args"
}

launch_node() {
  local n="$1"
  if node_alive "$n"; then return; fi
  port_open "$(client_port "$n")" && die "port $(client_port "$n") is in use by another program: pick other ports with --port BASE"
  format_node "$n"
  mkdir -p "$dir/node-$n"
  : >"$dir/node-$n/server.log"
  local args config
  config="$(properties)"
  # A secure node reads its own copy, which holds its credentials (none on the command line).
  if is_secure; then write_secure_node_properties "$n"; config="$dir/node-$n/server.properties"; fi
  read -ra args <<<"$(node_overrides "$n" | tr '\n' ' ')"
  setsid nohup java -Xms256m -Xmx"$(heap)" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$deploy/log4j.properties" -Dkafka.logs.dir="$dir/node-$n" \
    -cp "$cache/libs/*" kafka.Kafka "$config" "${args[@]}" \
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

# ---- secure clusters (--secure) -------------------------------------------------
# DIR/security: SASL_SSL. DIR/tls/: the CA and a key + certificate per node.
# DIR/passwords (600): "USER PASSWORD" lines. DIR/clients/ (700): each user's
# client properties. DIR/topic-prefix: the prefix the first start granted for.
# DIR/acls.applied: which ACL files and prefixes were granted.

# The topic prefix the ACLs are granted for: --topic-prefix, else the one
# recorded at the first start, else $ORDERFLOW_TOPIC_PREFIX (as orderflow's).
resolve_prefix() {
  ((prefix_given)) && return
  if [[ -f "$dir/topic-prefix" ]]; then topic_prefix=$(cat "$dir/topic-prefix"); else topic_prefix="${ORDERFLOW_TOPIC_PREFIX:-}"; fi
  [[ "$topic_prefix" =~ ^[A-Za-z0-9._-]*$ ]] ||
    die "topic prefix '$topic_prefix' may hold letters, digits, '.', '_' and '-' only (as orderflow's)"
}

need_openssl() {
  command -v openssl >/dev/null || die "openssl not found: install it (sudo apt-get install openssl) for --secure"
}

password() { [[ -f "$dir/passwords" ]] && awk -v u="$1" '$1 == u { print $2; exit }' "$dir/passwords" || true; }

jaas() {  # the JAAS line with user $1's SCRAM credentials
  echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$(password "$1")\";"
}

super_users() {  # admin, the nodes' replication user, and each node's certificate (controller listener)
  local n list="User:admin;User:broker"
  for ((n = 1; n <= $(node_count); n++)); do list+=";User:CN=node-$n,O=orderflow"; done
  echo "$list"
}

# The ACLs of $acls_file, one binding a line: USER OPERATION TYPE PATTERN NAME
# (tab-separated, NAME with $topic_prefix in front). Dies naming the bad line.
acl_lines() {
  local no=0 line user ops resource extra kind name type pattern op where ops_list
  [[ -f "$acls_file" ]] || die "no ACL file $acls_file"
  while IFS= read -r line || [[ -n "$line" ]]; do
    no=$((no + 1))
    line="${line%%#*}"
    user="" ops="" resource="" extra=""
    read -r user ops resource extra <<<"$line" || true
    [[ -n "$user" ]] || continue
    where="$acls_file line $no"
    [[ -n "$resource" && -z "$extra" ]] ||
      die "$where: expected USER OPERATIONS RESOURCE, e.g. 'payment READ,WRITE topic:orders.events'"
    [[ "$user" =~ ^[a-z][a-z0-9_-]*$ ]] || die "$where: user '$user' must be lower-case letters, digits, '-' or '_'"
    [[ "$resource" == *:* ]] ||
      die "$where: resource '$resource' needs a kind: topic:NAME, group:NAME or transactional-id:NAME"
    kind="${resource%%:*}" name="${resource#*:}"
    case "$kind" in
      topic) type=TOPIC ;;
      group) type=GROUP ;;
      transactional-id) type=TRANSACTIONAL_ID ;;
      *) die "$where: unknown resource kind '$kind' (topic, group, transactional-id)" ;;
    esac
    pattern=LITERAL
    if [[ "$name" == *'*' ]]; then pattern=PREFIXED; name="${name%'*'}"; fi
    [[ "$name" =~ ^[A-Za-z0-9._-]*$ ]] ||
      die "$where: '$resource': a name holds letters, digits, '.', '_' and '-', and '*' only at its end"
    name="$topic_prefix$name"
    [[ -n "$name" ]] || die "$where: '$resource' would match every $kind: give the start of the names"
    IFS=, read -ra ops_list <<<"$ops"
    for op in "${ops_list[@]}"; do
      op="${op^^}"
      case "$op" in
        READ | WRITE | CREATE | DELETE | ALTER | DESCRIBE | DESCRIBE_CONFIGS | ALTER_CONFIGS | IDEMPOTENT_WRITE) ;;
        *) die "$where: unknown operation '$op' (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE)" ;;
      esac
      printf '%s\t%s\t%s\t%s\t%s\n' "$user" "$op" "$type" "$pattern" "$name"
    done
  done <"$acls_file"
}

all_users() {  # admin, broker and every user the ACL file names, one per line
  local lines
  lines=$(acl_lines)
  { echo admin; echo broker; cut -f1 <<<"$lines"; } | awk 'NF && !seen[$1]++'
}

ensure_tls() {  # DIR/tls: the cluster's own CA, and a key and certificate per node
  local tls="$dir/tls" n host san
  mkdir -p "$tls"
  chmod 700 "$tls"
  if [[ ! -f "$tls/ca.pem" ]]; then
    (umask 077
     openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -sha256 \
       -subj "/O=orderflow/CN=orderflow Kafka CA $(openssl rand -hex 4)" \
       -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
       -keyout "$tls/ca.key.tmp" -out "$tls/ca.pem.tmp") >"$tls/openssl.log" 2>&1 ||
      { cat "$tls/openssl.log" >&2; die "openssl could not make the CA in $tls"; }
    chmod 644 "$tls/ca.pem.tmp"
    mv "$tls/ca.key.tmp" "$tls/ca.key"
    mv "$tls/ca.pem.tmp" "$tls/ca.pem"
  fi
  for ((n = 1; n <= $(node_count); n++)); do
    [[ -f "$tls/node-$n.keystore.pem" ]] && continue
    host=$(node_host "$n")
    san="IP:127.0.0.1,DNS:localhost"
    if [[ "$host" =~ ^[0-9.]+$ ]]; then [[ "$host" == 127.0.0.1 ]] || san+=",IP:$host"; else san+=",DNS:$host"; fi
    (umask 077
     openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -subj "/O=orderflow/CN=node-$n" \
       -keyout "$tls/node-$n.key" -out "$tls/node-$n.csr" &&
     openssl x509 -req -in "$tls/node-$n.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
       -CAserial "$tls/ca.srl" -days 825 -sha256 -out "$tls/node-$n.pem" \
       -extfile <(printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
                   "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth,clientAuth") &&
     # Kafka's PEM keystore: the (unencrypted PKCS#8) key, then the chain.
     cat "$tls/node-$n.key" "$tls/node-$n.pem" "$tls/ca.pem" >"$tls/node-$n.keystore.pem.tmp") >"$tls/openssl.log" 2>&1 ||
      { cat "$tls/openssl.log" >&2; die "openssl could not make node $n's certificate in $tls"; }
    rm -f "$tls/node-$n.csr"
    mv "$tls/node-$n.keystore.pem.tmp" "$tls/node-$n.keystore.pem"
  done
}

write_client_properties() {  # DIR/clients/USER.properties (librdkafka) and USER.java.properties
  local user="$1" clients="$dir/clients"
  mkdir -p "$clients"
  chmod 700 "$clients"
  (umask 077
   cat >"$clients/$user.properties.tmp" <<EOF
# librdkafka properties of user $user on the secure cluster in $dir
bootstrap.servers=$(bootstrap_list)
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.username=$user
sasl.password=$(password "$user")
ssl.ca.location=$dir/tls/ca.pem
EOF
   cat >"$clients/$user.java.properties.tmp" <<EOF
# Java client properties of user $user on the secure cluster in $dir (Kafka's
# tools: --command-config, --consumer.config, --producer.config, --admin.config)
bootstrap.servers=$(bootstrap_list)
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(jaas "$user")
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
EOF
  )
  mv "$clients/$user.properties.tmp" "$clients/$user.properties"
  mv "$clients/$user.java.properties.tmp" "$clients/$user.java.properties"
}

prepare_secure() {  # certificates, a password for every user, and their client properties
  need_openssl
  resolve_prefix
  [[ -f "$dir/topic-prefix" ]] || echo "$topic_prefix" >"$dir/topic-prefix"
  acl_lines >/dev/null  # a mistake in the ACL file stops here, before anything is made
  ensure_tls
  local user
  for user in $(all_users); do
    [[ -n "$(password "$user")" ]] || (umask 077; echo "$user $(openssl rand -hex 24)" >>"$dir/passwords")
    write_client_properties "$user"
  done
}

write_secure_node_properties() {  # DIR/node-N/server.properties (600): the node's whole configuration
  local n="$1" props="$dir/node-$n/server.properties" line
  mkdir -p "$dir/node-$n"
  (umask 077
   { cat "$(properties)"
     echo
     cat "$deploy/secure.properties"
     echo
     echo "# Written by scripts/kafka.sh for node $n of the secure cluster in $dir."
     echo "ssl.keystore.location=$dir/tls/node-$n.keystore.pem"
     echo "ssl.truststore.location=$dir/tls/ca.pem"
     echo "super.users=$(super_users)"
     echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$(jaas broker)"
     while read -r _ line; do echo "$line"; done < <(node_overrides "$n")
   } >"$props.tmp")
  mv "$props.tmp" "$props"
}

# Grants the ACL file's bindings and creates the users it names that have no
# SCRAM credentials yet (added to the file after the cluster was formatted),
# in one JVM: deploy/kafka/ApplyAcls.java, compiled once into the jar cache.
apply_acls() {
  local lines users user classes
  lines=$(acl_lines)
  users=$(all_users)
  classes="$cache/acl-tool-$(sha256sum "$deploy/ApplyAcls.java" | cut -c1-16)"
  if [[ ! -f "$classes/ApplyAcls.class" ]]; then
    rm -rf "$classes.tmp"
    mkdir -p "$classes.tmp"
    # javac's own main class: the JRE's module image has it where no javac command is installed.
    java -m jdk.compiler/com.sun.tools.javac.Main -nowarn -cp "$cache/libs/kafka-clients-$version.jar" -d "$classes.tmp" \
      "$deploy/ApplyAcls.java" \
      >"$classes.tmp/javac.log" 2>&1 || { cat "$classes.tmp/javac.log" >&2
        die "compiling $deploy/ApplyAcls.java failed (it needs the JVM's jdk.compiler module: Debian's openjdk-17-jre-headless has it, other JREs may not; install a JDK)"; }
    rm -rf "$classes"
    mv "$classes.tmp" "$classes"
    find "$cache" -maxdepth 1 -name 'acl-tool-*' ! -name "$(basename "$classes")*" -exec rm -rf {} + 2>/dev/null || true
  fi
  { for user in $users; do printf 'user\t%s\t%s\n' "$user" "$(password "$user")"; done
    awk -F'\t' 'NF == 5 { printf "acl\tUser:%s\t%s\t%s\t%s\t%s\n", $1, $2, $3, $4, $5 }' <<<"$lines"
  } | java -Xms64m -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$deploy/tools-log4j.properties" \
        -cp "$classes:$cache/libs/*" ApplyAcls "$dir/clients/admin.java.properties" ||
    die "granting the ACLs of $acls_file failed (see above; node logs: $dir/node-N/server.log)"
  acls_applied || acls_key >>"$dir/acls.applied"
}
acls_key() { echo "$(sha256sum "$acls_file" | cut -d' ' -f1) prefix=$topic_prefix"; }
acls_applied() { grep -qxF "$(acls_key)" "$dir/acls.applied" 2>/dev/null; }
# The option and admin client properties for a Kafka tool this script runs (none on a plaintext cluster).
admin_config() { if is_secure; then echo "$1"; echo "$dir/clients/admin.java.properties"; fi; }

# ---- commands -----------------------------------------------------------------

case "$cmd" in
  start)
    ensure_jars
    if [[ -f "$dir/nodes" && -n "$nodes" && "$nodes" != "$(saved nodes)" ]]; then
      die "$dir holds a $(saved nodes)-node cluster; stop it and use another --dir for $nodes nodes"
    fi
    if ((secure)) && [[ -f "$dir/nodes" ]] && ! is_secure; then
      die "$dir holds a plaintext cluster; stop it and use another --dir for --secure"
    fi
    ((secure)) && [[ ! -f "$dir/nodes" ]] && echo SASL_SSL >"$dir/security"
    [[ -f "$dir/nodes" ]] || echo "${nodes:-1}" >"$dir/nodes"
    [[ -f "$dir/port" ]] || echo "${port:-9092}" >"$dir/port"
    if is_secure; then prepare_secure; fi
    [[ -f "$dir/cluster-id" ]] || java_run 256m kafka.tools.StorageTool random-uuid >"$dir/cluster-id"
    started=()
    for ((n = 1; n <= $(node_count); n++)); do
      if ! node_alive "$n"; then launch_node "$n"; started+=("$n"); fi
    done
    ((${#started[@]} == 0)) || wait_serving "${started[@]}"
    if is_secure && ! acls_applied; then apply_acls; fi
    bootstrap_list | tee "$dir/bootstrap"
    if is_secure; then
      echo "kafka.sh: Apache Kafka $version, $(node_count) node(s) serving SASL_SSL (SCRAM-SHA-512) in $dir;" \
        "client properties in $dir/clients/" >&2
    else
      echo "kafka.sh: Apache Kafka $version, $(node_count) node(s) serving in $dir" >&2
    fi
    ;;
  acls)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir: run kafka.sh start --secure first"
    is_secure || die "the cluster in $dir is plaintext and has no authorizer: start one with kafka.sh start --secure"
    ensure_jars
    prepare_secure
    apply_acls
    ;;
  start-node)
    [[ -f "$dir/nodes" ]] || die "no cluster in $dir: run kafka.sh start first"
    ((node_arg <= $(node_count))) || die "the cluster in $dir has $(node_count) node(s)"
    ensure_jars
    launch_node "$node_arg"
    wait_serving "$node_arg"
    ;;
  run-node)
    if ((secure)) || is_secure; then
      die "run-node has no --secure (each container would need the cluster's CA, certificates and passwords): use kafka.sh start --secure"
    fi
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
    readarray -t config < <(admin_config --admin.config)
    out=$(java_run 256m org.apache.kafka.tools.LeaderElectionCommand --bootstrap-server "$(bootstrap_list)" \
      "${config[@]}" --election-type PREFERRED --all-topic-partitions 2>&1) ||
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
    # Plaintext clusters print as they always did; a secure one says so.
    tag="" json_tag=""
    if is_secure; then tag=" SASL_SSL"; json_tag=",\"security\":\"SASL_SSL\",\"clients\":\"$dir/clients\""; fi
    for ((n = 1; n <= $(node_count); n++)); do
      if node_alive "$n" && port_open "$(client_port "$n")"; then state=up; up=$((up + 1)); else state=down; fi
      if ((json)); then
        entries+=("{\"node\":$n,\"address\":\"127.0.0.1:$(client_port "$n")\",\"state\":\"$state\",\"pid\":\"$(node_pid "$n")\"}")
      else
        echo "node $n 127.0.0.1:$(client_port "$n") $state$tag"
      fi
    done
    if ((json)); then
      (IFS=,; echo "{\"version\":\"$version\",\"dir\":\"$dir\",\"bootstrap\":\"$(bootstrap_list)\"$json_tag,\"nodes\":[${entries[*]}]}")
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
    readarray -t config < <(admin_config --command-config)
    java_run 256m org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$(bootstrap_list)" "${config[@]}" \
      describe --status 2>/dev/null | sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p' | grep -m1 '[0-9]' ||
      die "no active controller answered (is a majority of the nodes up?)"
    ;;
  tool)
    ensure_jars
    java_run 512m "${tool_args[@]}"
    ;;
  *)
    echo "kafka.sh: unknown command '$cmd' (start, stop, status, kill N, stop-node N, start-node N, elect-leaders, bootstrap, controller, acls, tool)" >&2
    exit 2
    ;;
esac
