#!/usr/bin/env bash
# A secure cluster from `scripts/kafka.sh start --secure`, checked from the
# outside with Kafka's own command-line tools (and librdkafka's kcat where it
# is installed): TLS + SCRAM on the client port and nothing in clear text,
# mutual TLS on the controller port, and deploy/kafka/acls enforced; on the
# 3-node cluster, orderflow's whole lifecycle with a user per component (up
# beside a second instance of every service, each its own process), replayed
# by the read-only operator to the same digest, and its refusals. One line
# per check; exits 1 if any failed. Each cluster is stopped on exit; its
# directory is removed when every check passed and kept (node logs) otherwise.
#
#   tests/cluster/secure_cluster_test.sh [--nodes 1|3|both] [--port BASE] [--dir DIR]
#
# --nodes both (default): a 1-node cluster on BASE (default 18092: ports
# 18092-18093) and a 3-node one on BASE+100 (18192-18197), below the ephemeral
# port range as cluster_test's. DIR (default: a new /tmp/orderflow-secure-test.*)
# holds them. $ORDERFLOW_SECURE_TEST_PORT and $ORDERFLOW_SECURE_TEST_DIR give
# the defaults.
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
kafka_sh="$root/scripts/kafka.sh"
sizes=both
base="${ORDERFLOW_SECURE_TEST_PORT:-18092}"
work="${ORDERFLOW_SECURE_TEST_DIR:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) sizes="${2:-}"; shift 2 ;;
    --port) base="${2:-}"; shift 2 ;;
    --dir) work="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "secure_cluster_test: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$sizes" in 1) sizes=(1) ;; 3) sizes=(3) ;; both) sizes=(1 3) ;;
  *) echo "secure_cluster_test: --nodes must be 1, 3 or both" >&2; exit 2 ;; esac
[[ "$base" =~ ^[0-9]+$ ]] || { echo "secure_cluster_test: --port must be a number" >&2; exit 2; }
if [[ -z "$work" ]]; then work="$(mktemp -d /tmp/orderflow-secure-test.XXXXXX)"; else mkdir -p "$work"; fi
work="$(cd "$work" && pwd)"

passed=0
failed=0
clusters=()
pass() { echo "ok    $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
# check "what" COMMAND...: passes when COMMAND exits 0.
check() { local what="$1"; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

cleanup() {
  local d
  for d in "${clusters[@]}"; do bash "$kafka_sh" stop --dir "$d" >/dev/null 2>&1; done
  if ((failed == 0)); then rm -rf "$work"; else echo "secure_cluster_test: logs kept in $work (node-N/server.log)"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Kafka's tools, each a short JVM: the C1 compiler only starts them a third faster.
tool() { JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 ${JAVA_TOOL_OPTIONS:-}" timeout 90 bash "$kafka_sh" tool "$@" 2>&1; }
# has OUTPUT PATTERN: OUTPUT holds PATTERN (extended regular expression)
has() { grep -Eq "$2" <<<"$1"; }

certificates_ok() {  # DIR NODES
  local n
  for ((n = 1; n <= $2; n++)); do
    openssl verify -CAfile "$1/tls/ca.pem" -verify_ip 127.0.0.1 "$1/tls/node-$n.pem" >/dev/null 2>&1 || return 1
  done
}

# orderflow's whole lifecycle on the secure cluster: `up` (its own user) beside
# a second instance of every service and projector, each a process of its own
# with its own user's properties file; every order terminal, the digest of a
# replay by the read-only operator equal to the live one, lag 0, and no
# password in any process's argv or log.
lifecycle() {  # DIR SCRATCH LABEL
  local dir="$1" t="$2" label="$3" C="$1/clients" bin="${ORDERFLOW_BINARY:-$root/build/cli/orderflow}"
  local pids=() svc out live replayed
  if [[ ! -x "$bin" ]]; then fail "$label: orderflow binary $bin not built"; return; fi
  # Under a topic prefix of its own (granted the same ACLs): the checks above
  # left records and the broker's retention on the unprefixed orders.events.
  local P=(--topic-prefix lc.)
  bash "$kafka_sh" acls --dir "$dir" --topic-prefix lc. >/dev/null 2>"$t/acls.err" ||
    fail "$label: kafka.sh acls --topic-prefix lc.: $(tail -1 "$t/acls.err")"
  for svc in payment inventory shipping delivery notification projector; do
    "$bin" service "$svc" --instance 2 --kafka-config "$C/$svc.properties" "${P[@]}" --data-dir "$t/$svc-2" \
      $([[ $svc == shipping || $svc == delivery ]] && echo --transit-ms 0) >"$t/$svc-2.log" 2>&1 &
    pids+=($!)
  done
  # --separate-services: up runs each of the four as its own service too, in the groups the second instances join.
  out=$(timeout 300 "$bin" up --kafka-config "$C/up.properties" "${P[@]}" --http off --data-dir "$t/up" --simulate 2000 \
          --exit-when-done --transit-ms 0 --log-level warn --json --separate-services 2>"$t/up.log")
  local rc=$?
  check "$label: orderflow up (user up) beside a second instance of every service (each its own user): 2000 orders terminal" \
    eval '[[ $rc == 0 ]] && python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(d[\"delivered\"] + d[\"cancelled\"] != 2000)" "$out"'
  local secrets_shown=0 p passwords
  passwords=$(sed -n 's/^sasl.password=//p' "$C"/*.properties)
  grep -qF "$passwords" "$t"/*.log && secrets_shown=1
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then fail "$label: a service process exited early: $(tail -n 2 "$t"/*-2.log | tail -n 4)"; fi
    tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$passwords" && secrets_shown=1
  done
  check "$label: no password in any service's argv (/proc/PID/cmdline) or log" test "$secrets_shown" == 0
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  live=$("$bin" digest --data-dir "$t/up" 2>&1 | tail -1)
  "$bin" replay --kafka-config "$C/operator.properties" "${P[@]}" --data-dir "$t/replayed" --log-level warn >/dev/null 2>"$t/replay.log"
  replayed=$("$bin" digest --data-dir "$t/replayed" 2>&1 | tail -1)
  check "$label: replay as the read-only operator: digest equals the live projection's ($live)" \
    eval '[[ -n "$live" && "$live" == "$replayed" ]]'
  out=$("$bin" lag --kafka-config "$C/operator.properties" "${P[@]}" --group orderflow-projector 2>&1)
  check "$label: orderflow lag (operator): the projectors' lag is 0" has "$out" "total lag: 0"
}

# Refusals on the lifecycle's topics (prefix lc.), each one line that says
# what to change, and none moves a log end: orderflow with a wrong password,
# trusting another CA, with TLS but no SASL, in clear text; the projector's
# and payment's users appending where they may not; an outside client (kcat)
# with the read-only operator's properties producing. Then a service denied
# its write: it parks nothing and writes nothing while denied, and once the
# ACL is back it appends what it owed.
denials() {  # DIR SCRATCH LABEL
  local dir="$1" t="$2" label="$3" C="$1/clients" bin="${ORDERFLOW_BINARY:-$root/build/cli/orderflow}"
  local P=(--topic-prefix lc.) before after out f pids=() B
  B=$(sed -n 's/^bootstrap.servers=//p' "$C/admin.properties")
  ends() {  # "topic=end ..." of every lc. topic, as the operator sees them
    "$bin" topics --kafka-config "$C/operator.properties" "${P[@]}" --json 2>/dev/null | python3 -c '
import json, sys
print(" ".join("%s=%d" % (t["topic"], sum(p["log_end"] for p in t["partitions"])) for t in json.load(sys.stdin)))'
  }
  before=$(ends)
  sed 's/^sasl.password=.*/sasl.password=wrong/' "$C/order.properties" >"$t/d-password.properties"
  sed "s#^ssl.ca.location=.*#ssl.ca.location=$t/other-ca.pem#" "$C/order.properties" >"$t/d-other-ca.properties"
  grep -v '^sasl\.' "$C/order.properties" | sed 's/^security.protocol=.*/security.protocol=SSL/' >"$t/d-no-sasl.properties"
  grep -Ev '^(sasl|ssl)\.|^security\.protocol' "$C/order.properties" >"$t/d-plaintext.properties"
  for f in password other-ca no-sasl plaintext; do  # at once: each may take the 30 s of a flush
    timeout 90 "$bin" order place --kafka-config "$t/d-$f.properties" "${P[@]}" --customer c-deny --item SKU-MUG:1 \
      --log-level off >"$t/d-$f.out" 2>&1 &
    pids+=($!)
  done
  timeout 60 "$bin" order place --kafka-config "$C/projector.properties" "${P[@]}" --customer c-deny --item SKU-MUG:1 \
    --log-level off >"$t/d-projector.out" 2>&1 &
  pids+=($!)
  if command -v kcat >/dev/null; then
    echo x | timeout 30 kcat -F "$C/projector.properties" -P -t lc.notifications.low >"$t/d-kcat-projector.out" 2>&1 &
    echo x | timeout 30 kcat -F "$C/payment.properties" -P -t lc.notifications.high >"$t/d-kcat-payment-n.out" 2>&1 &
    echo x | timeout 30 kcat -F "$C/payment.properties" -P -t lc.inventory.events >"$t/d-kcat-payment-i.out" 2>&1 &
    echo x | timeout 30 kcat -F "$C/operator.properties" -P -t lc.orders.events >"$t/d-kcat-operator.out" 2>&1 &
  fi
  wait
  one_line() { [[ $(grep -c . "$1") == 1 ]] && grep -Eq "$2" "$1"; }
  check "$label: a wrong password: one line, check sasl.username and sasl.password" \
    one_line "$t/d-password.out" "refused the credentials: check sasl.username and sasl.password"
  check "$label: trusting another CA: one line, check ssl.ca.location" \
    one_line "$t/d-other-ca.out" "TLS handshake failed.*ssl.ca.location"
  check "$label: TLS without SASL on the SASL_SSL port: one line naming security.protocol=SASL_SSL and sasl.*" \
    one_line "$t/d-no-sasl.out" "as a TLS or SASL listener would: .*security.protocol=SASL_SSL, sasl.mechanism"
  check "$label: clear text on the SASL_SSL port: one line naming security.protocol=SASL_SSL and sasl.*" \
    one_line "$t/d-plaintext.out" "as a TLS or SASL listener would: .*security.protocol=SASL_SSL, sasl.mechanism"
  check "$label: the projector's user placing an order: one line naming the denial and deploy/kafka/acls" \
    one_line "$t/d-projector.out" "not authorized \(TOPIC_AUTHORIZATION_FAILED\).*deploy/kafka/acls"
  if command -v kcat >/dev/null; then
    check "$label: kcat as the projector appending to notifications.low is refused" \
      grep -q "Topic authorization failed" "$t/d-kcat-projector.out"
    check "$label: kcat as payment appending to notifications.high and inventory.events is refused" \
      eval 'grep -q "Topic authorization failed" "$t/d-kcat-payment-n.out" &&
            grep -q "Topic authorization failed" "$t/d-kcat-payment-i.out"'
    check "$label: kcat with the read-only operator's properties producing is refused" \
      grep -q "Topic authorization failed" "$t/d-kcat-operator.out"
  fi
  after=$(ends)
  check "$label: no refused client moved a log end ($after)" eval '[[ -n "$before" && "$before" == "$after" ]]'

  # payment loses WRITE on orders.events while an order waits for it.
  local acl=(kafka.admin.AclCommand --bootstrap-server "$B" --command-config "$C/admin.java.properties" --force
             --allow-principal User:payment --operation Write --topic lc.orders.events)
  tool "${acl[@]}" --remove >"$t/acl-remove.out"
  timeout 60 "$bin" order place --kafka-config "$C/order.properties" "${P[@]}" --customer c-owed --item SKU-MUG:1 \
    --log-level error >/dev/null 2>&1
  before=$(ends)
  "$bin" service payment --instance 3 --kafka-config "$C/payment.properties" "${P[@]}" --data-dir "$t/payment-3" \
    >"$t/payment-3.log" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 60; i++)); do grep -q "TOPIC_AUTHORIZATION_FAILED" "$t/payment-3.log" && break; sleep 1; done
  sleep 3  # one more round of its retry
  after=$(ends)
  check "$label: payment denied its write says so (TOPIC_AUTHORIZATION_FAILED, deploy/kafka/acls) and keeps running" \
    eval 'grep -q "not authorized (TOPIC_AUTHORIZATION_FAILED).*deploy/kafka/acls" "$t/payment-3.log" && kill -0 $pid'
  check "$label: while denied it parks nothing and writes nothing ($after)" test "$before" == "$after"
  tool "${acl[@]}" --add >"$t/acl-add.out"
  local owed=${before/*orders.events=/}
  owed=$(( ${owed%% *} + 1 ))
  for ((i = 0; i < 60; i++)); do [[ $(ends) == *"orders.events=$owed "* ]] && break; sleep 1; done
  after=$(ends)
  kill -TERM $pid 2>/dev/null
  wait $pid 2>/dev/null
  check "$label: once granted again it appends the one event it owed, and parks nothing ($after)" \
    eval '[[ "$after" == *"orders.events=$owed "* && "$after" == *"orders.dlq=${before/*orders.dlq=/}"* ]]'
}

run_cluster() {
  local nodes="$1" port="$2" dir="$work/nodes-$nodes" out started elapsed B C n
  clusters+=("$dir")
  local t="$dir-scratch" label="$nodes-node"
  mkdir -p "$t"
  started=$SECONDS
  out=$(bash "$kafka_sh" start --secure --nodes "$nodes" --dir "$dir" --port "$port" 2>"$t/start.err")
  local rc=$?
  elapsed=$((SECONDS - started))
  B=$(head -1 <<<"$out")
  local want="127.0.0.1:$port" i
  for ((i = 2; i <= nodes; i++)); do want+=",127.0.0.1:$((port + 2 * (i - 1)))"; done
  if [[ $rc -ne 0 || "$B" != "$want" ]]; then
    fail "$label: kafka.sh start --secure (exit $rc, first line '$B', want '$want'): $(tail -3 "$t/start.err")"
    return
  fi
  pass "$label: kafka.sh start --secure serves $B in ${elapsed} s"
  C="$dir/clients"

  # ---- what kafka.sh wrote --------------------------------------------------
  check "$label: DIR/security records SASL_SSL; status says so" \
    eval '[[ "$(cat "$dir/security")" == SASL_SSL ]] && has "$(bash "$kafka_sh" status --dir "$dir")" "up SASL_SSL$"'
  check "$label: client properties per user, mode 600, with SASL_SSL, SCRAM-SHA-512 and the CA" \
    eval '[[ "$(stat -c %a "$C/operator.properties")" == 600 && "$(stat -c %a "$dir/passwords")" == 600 ]] &&
          grep -qx "security.protocol=SASL_SSL" "$C/payment.properties" &&
          grep -qx "sasl.mechanism=SCRAM-SHA-512" "$C/payment.properties" &&
          grep -qx "sasl.username=payment" "$C/payment.properties" &&
          grep -qx "ssl.ca.location=$dir/tls/ca.pem" "$C/payment.properties" &&
          grep -qx "bootstrap.servers=$B" "$C/payment.properties"'
  check "$label: node certificates chain to DIR/tls/ca.pem and name 127.0.0.1" certificates_ok "$dir" "$nodes"

  # ---- nothing in clear text --------------------------------------------------
  for ((n = 1; n <= nodes; n++)); do
    if ! grep -Eq "^listeners=SASL_SSL://[^,]+:$((port + 2 * (n - 1))),CONTROLLER://[^,]+:$((port + 2 * (n - 1) + 1))$" \
         "$dir/node-$n/server.properties"; then
      fail "$label: node $n's listeners are not exactly SASL_SSL + CONTROLLER: $(grep '^listeners=' "$dir/node-$n/server.properties" | tail -1)"
    fi
  done
  if command -v ss >/dev/null; then
    local listening expected=""
    listening=$(for ((n = 1; n <= nodes; n++)); do
                  ss -ltnpH | grep "pid=$(cat "$dir/node-$n/pid")," | awk '{ sub(/.*:/, "", $4); print $4 }'
                done | sort -n | tr '\n' ' ')
    for ((n = 0; n < 2 * nodes; n++)); do expected+="$((port + n)) "; done
    check "$label: the nodes listen on their client and controller ports only ($listening)" \
      test "$listening" == "$expected"
  fi
  printf 'security.protocol=PLAINTEXT\ndefault.api.timeout.ms=3000\nrequest.timeout.ms=1500\n' >"$t/plaintext.properties"
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" --command-config "$t/plaintext.properties" --list)
  check "$label: a PLAINTEXT client gets no answer on the client port" \
    eval 'has "$out" "TimeoutException|Timed out" && ! has "$out" "^orders"'
  { grep -v '^ssl.truststore' "$C/admin.java.properties" | sed 's/^security.protocol=.*/security.protocol=SASL_PLAINTEXT/'
    printf 'default.api.timeout.ms=3000\nrequest.timeout.ms=1500\n'; } >"$t/sasl-plaintext.properties"
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" --command-config "$t/sasl-plaintext.properties" --list)
  check "$label: SCRAM without TLS (SASL_PLAINTEXT, admin's password) is cut off" \
    eval 'has "$out" "terminated during authentication|TimeoutException|Timed out" && ! has "$out" "^orders"'
  out=$( (sleep 15) | timeout 20 openssl s_client -connect "127.0.0.1:$((port + 1))" -CAfile "$dir/tls/ca.pem" 2>&1)
  check "$label: the controller port refuses a TLS client without a certificate" \
    has "$out" "alert (bad certificate|certificate required|handshake failure)"

  # ---- authentication -----------------------------------------------------------
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" --command-config "$C/admin.java.properties" \
          --create --topic orders.events --partitions 1 --replication-factor "$nodes")
  check "$label: admin creates topic orders.events (replication factor $nodes)" has "$out" "Created topic orders.events"
  sed 's/password="[^"]*"/password="not-the-password"/' "$C/operator.java.properties" >"$t/wrong-password.properties"
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" --command-config "$t/wrong-password.properties" --list)
  check "$label: a wrong password is refused (SaslAuthenticationException)" \
    eval 'has "$out" "SaslAuthenticationException|invalid credentials" && ! has "$out" "^orders"'
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=another CA" \
    -keyout "$t/other-ca.key" -out "$t/other-ca.pem" >/dev/null 2>&1
  sed "s#^ssl.truststore.location=.*#ssl.truststore.location=$t/other-ca.pem#" "$C/admin.java.properties" >"$t/other-ca.properties"
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" --command-config "$t/other-ca.properties" --list)
  check "$label: a client trusting another CA fails the TLS handshake" \
    eval 'has "$out" "SSLHandshakeException|SSL handshake failed" && ! has "$out" "^orders"'

  # ---- authorization --------------------------------------------------------------
  out=$(echo "placed-$nodes" | tool kafka.tools.ConsoleProducer --bootstrap-server "$B" \
          --producer.config "$C/order.java.properties" --topic orders.events --request-required-acks all)
  check "$label: order writes orders.events (idempotent producer, acks=all)" \
    eval '! has "$out" "Exception|ERROR"'
  out=$(echo "forged" | tool kafka.tools.ConsoleProducer --bootstrap-server "$B" \
          --producer.config "$C/operator.java.properties" --topic orders.events --producer-property enable.idempotence=false)
  check "$label: operator's write to orders.events is refused (TopicAuthorizationException)" \
    has "$out" "TopicAuthorizationException"
  out=$(tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$B" \
          --consumer.config "$C/operator.java.properties" --topic orders.events --partition 0 --offset earliest \
          --max-messages 2 --timeout-ms 12000)
  check "$label: operator reads orders.events: exactly the order's record" \
    eval 'has "$out" "^placed-$nodes$" && ! has "$out" "^forged$"'
  out=$(tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$B" \
          --consumer.config "$C/operator.java.properties" --topic orders.events --group orderflow-payment \
          --from-beginning --max-messages 1 --timeout-ms 8000)
  check "$label: operator cannot join consumer group orderflow-payment (GroupAuthorizationException)" \
    has "$out" "GroupAuthorizationException"
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" --command-config "$C/operator.java.properties" \
          --create --topic operator.made --partitions 1 --replication-factor 1)
  check "$label: operator cannot create a topic" \
    eval 'has "$out" "TopicAuthorizationException|Authorization failed" && ! has "$out" "Created topic"'

  if command -v kcat >/dev/null; then  # librdkafka, orderflow's client, with DIR/clients/USER.properties as written
    out=$(echo "shipped-$nodes" | timeout 30 kcat -F "$C/shipping.properties" -P -t orders.events \
            -X enable.idempotence=true -X transactional.id=orderflow-shipping-1 2>&1)
    check "$label: librdkafka: shipping writes orders.events in a transaction as orderflow-shipping-1" \
      eval '! has "$out" "ERROR|error|failed"'
    out=$(echo "x" | timeout 30 kcat -F "$C/shipping.properties" -P -t orders.events -X transactional.id=orderflow-payment-1 2>&1)
    check "$label: librdkafka: shipping may not use payment's transactional id" \
      has "$out" "Transactional Id authorization failed"
    out=$(timeout 30 kcat -F "$C/payment.properties" -G orderflow-payment orders.events -o beginning -e 2>&1)
    check "$label: librdkafka: payment reads orders.events in consumer group orderflow-payment" \
      eval 'has "$out" "^shipped-$nodes$" && ! has "$out" "authorization failed"'
    out=$(echo "x" | timeout 30 kcat -F "$C/payment.properties" -P -t inventory.events 2>&1)
    check "$label: librdkafka: payment's write to inventory.events is refused" \
      has "$out" "Topic authorization failed"
  else
    echo "skip  $label: librdkafka checks (kcat is not installed: apt-get install kcat)"
  fi

  if ((nodes == 3)); then
    lifecycle "$dir" "$t" "$label"
    denials "$dir" "$t" "$label"
  fi

  # ---- the script's own admin commands on a secure cluster ---------------------
  out=$(timeout 60 bash "$kafka_sh" controller --dir "$dir" 2>&1)
  check "$label: kafka.sh controller names the active controller ($out)" has "$out" "^[1-3]$"
  if ((nodes == 3)); then
    out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" --command-config "$C/operator.java.properties" \
            --describe --topic orders.events)
    check "$label: orders.events is replicated to all three nodes over SASL_SSL (ISR 3)" \
      has "$out" "Isr: [1-3],[1-3],[1-3]"
    check "$label: kafka.sh stop-node 3, start-node 3 and elect-leaders" \
      eval 'bash "$kafka_sh" stop-node 3 --dir "$dir" && bash "$kafka_sh" start-node 3 --dir "$dir" &&
            bash "$kafka_sh" elect-leaders --dir "$dir" 2>/dev/null'
  fi
  bash "$kafka_sh" stop --dir "$dir" >/dev/null 2>&1
  check "$label: kafka.sh stop" eval '! bash "$kafka_sh" status --dir "$dir" >/dev/null 2>&1'
}

command -v openssl >/dev/null || { echo "secure_cluster_test: openssl not found (apt-get install openssl)" >&2; exit 1; }
offset=0
for nodes in "${sizes[@]}"; do
  ((${#sizes[@]} == 1)) || offset=$(( nodes == 3 ? 100 : 0 ))
  run_cluster "$nodes" $((base + offset))
done
echo "secure_cluster_test: $passed passed, $failed failed"
((failed == 0))
