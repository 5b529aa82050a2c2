#!/usr/bin/env bash
# Runs a throwaway PostgreSQL (Debian 12's PostgreSQL 15) for tests and
# development, from a directory of its own, on a loopback port. No Docker, no
# system service: nothing outside DIR is touched (but for the user, see below).
#
#   postgres.sh start [--dir DIR] [--port PORT] [--tls]
#                           initialize DIR (once) and start the server; first
#                           stdout line: the connection URL. --tls (kept for DIR):
#                           TCP clients must use TLS 1.2+ with a certificate from
#                           a CA made for DIR (DIR/tls/ca.pem); the URL says
#                           sslmode=verify-full&sslrootcert=DIR/tls/ca.pem
#   postgres.sh stop [--dir DIR]    stop it (fast shutdown: sessions are ended)
#   postgres.sh status [--dir DIR]  "running URL" or "stopped"; exit 1 unless running
#   postgres.sh url [--dir DIR]     print the connection URL
#
# DIR defaults to $ORDERFLOW_PG_DIR or /tmp/orderflow-postgres and holds the
# data directory (DIR/data), the server's unix socket (DIR/socket), its log
# (DIR/postgres.log) and the port. PORT defaults to the port DIR last ran on,
# else 25432; the server listens on 127.0.0.1 only. The database and its owner
# role are both `orderflow` (LOGIN CREATEDB, not a superuser; the superuser is
# `postgres`), with trust authentication: a test instance, never for real data.
# It runs with fsync=off and small buffers, for speed, not durability.
# `start` fails, naming the URL, when a server already runs in DIR.
#
# Run as root, the server runs as the unprivileged system user orderflow-pg
# (created with useradd if missing), which owns DIR; DIR must be reachable by
# that user (a directory under /tmp is). The binaries come from
# $ORDERFLOW_PG_BIN, else /usr/lib/postgresql/15/bin (apt-get install
# postgresql, or bash scripts/setup.sh).
set -euo pipefail

dir="${ORDERFLOW_PG_DIR:-/tmp/orderflow-postgres}"
port=""
bin="${ORDERFLOW_PG_BIN:-/usr/lib/postgresql/15/bin}"
pg_user=orderflow-pg
db=orderflow

die() { echo "postgres.sh: $*" >&2; exit 1; }
usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; }
tls=0

cmd="${1:-}"
[[ -n "$cmd" ]] || { usage >&2; exit 2; }
[[ "$cmd" == -h || "$cmd" == --help || "$cmd" == help ]] && { usage; exit 0; }
shift
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) [[ -n "${2:-}" ]] || { echo "postgres.sh: --dir needs a directory" >&2; exit 2; }; dir="$2"; shift 2 ;;
    --port) port="${2:-}"; shift 2 ;;
    --tls) tls=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "postgres.sh: unknown argument '$1' (see postgres.sh --help)" >&2; exit 2 ;;
  esac
done
[[ -z "$port" || ("$port" =~ ^[0-9]+$ && "$port" -ge 1024 && "$port" -le 65535) ]] ||
  { echo "postgres.sh: --port must be a number from 1024 to 65535" >&2; exit 2; }
case "$cmd" in start|stop|status|url) ;; *)
  echo "postgres.sh: unknown command '$cmd' (start, stop, status, url)" >&2; exit 2 ;;
esac

[[ -x "$bin/postgres" && -x "$bin/pg_ctl" ]] ||
  die "PostgreSQL binaries not found in $bin: install them (sudo apt-get install postgresql, or bash scripts/setup.sh) or set ORDERFLOW_PG_BIN"

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
data="$dir/data"
socket="$dir/socket"
log="$dir/postgres.log"

# ---- the user the server runs as ---------------------------------------------

as_pg=()  # prefix that runs a command as the server's user
if [[ $(id -u) -eq 0 ]]; then
  as_pg=(runuser -u "$pg_user" --)
fi

ensure_user() {
  ((${#as_pg[@]})) || return 0
  if ! getent passwd "$pg_user" >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --comment "orderflow test PostgreSQL (scripts/postgres.sh)" "$pg_user" ||
      die "cannot create the system user $pg_user (useradd failed)"
  fi
  chown -R "$pg_user:" "$dir"
  "${as_pg[@]}" test -w "$dir" -a -x "$dir" ||
    die "$dir is not reachable by the user $pg_user (a parent directory is closed to it); use a --dir under /tmp"
}

pg() { "${as_pg[@]}" "$@"; }

# ---- state -------------------------------------------------------------------

saved_port() { [[ -f "$dir/port" ]] && cat "$dir/port" || true; }
the_port() { local p; p=$(saved_port); echo "${port:-${p:-25432}}"; }
url() {
  if [[ -f "$dir/tls/enabled" ]]; then
    echo "postgresql://$db@127.0.0.1:$1/$db?sslmode=verify-full&sslrootcert=$dir/tls/ca.pem"
  else
    echo "postgresql://$db@127.0.0.1:$1/$db"
  fi
}
running() { [[ -f "$data/PG_VERSION" ]] && pg "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
psql_admin() {  # psql_admin PORT SQL: run SQL as the superuser, unaligned output
  PGSSLMODE=$([[ -f "$dir/tls/enabled" ]] && echo require || echo prefer) \
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -tA -c "$2"
}

# TLS for TCP clients (--tls): a CA of DIR's own and a server certificate for
# 127.0.0.1 and localhost; clients without TLS are refused (pg_hba.conf).
enable_tls() {
  [[ -f "$dir/tls/enabled" ]] && return
  command -v openssl >/dev/null || die "openssl not found: install it (sudo apt-get install openssl) for --tls"
  local t="$dir/tls"
  mkdir -p "$t"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=orderflow test PostgreSQL CA" \
    -keyout "$t/ca.key" -out "$t/ca.pem" >/dev/null 2>&1 || die "openssl could not make the CA in $t"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$t/server.key" -out "$t/server.csr" >/dev/null 2>&1 || die "openssl could not make the server key in $t"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$t/server.ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
    -extfile "$t/server.ext" -out "$t/server.pem" >/dev/null 2>&1 || die "openssl could not sign the server certificate"
  chmod 600 "$t/server.key" "$t/ca.key"
  ((${#as_pg[@]} == 0)) || chown "$pg_user:" "$t" "$t/server.key" "$t/server.pem"
  {
    echo ""
    echo "# ---- scripts/postgres.sh --tls ----"
    echo "ssl = on"
    echo "ssl_cert_file = '$t/server.pem'"
    echo "ssl_key_file = '$t/server.key'"
    echo "ssl_min_protocol_version = 'TLSv1.2'"
  } >>"$data/postgresql.conf"
  # TCP only over TLS: the hostssl line first, then every plain TCP connection refused.
  { echo "hostssl all all 127.0.0.1/32 trust"; echo "hostnossl all all all reject"; grep -v '^host' "$data/pg_hba.conf"; } \
    >"$data/pg_hba.conf.new"
  mv "$data/pg_hba.conf.new" "$data/pg_hba.conf"
  ((${#as_pg[@]} == 0)) || chown "$pg_user:" "$data/pg_hba.conf"
  touch "$t/enabled"
}

init_cluster() {
  [[ -f "$data/PG_VERSION" ]] && return
  rm -rf "$data"
  mkdir -p "$data" "$socket"
  chmod 700 "$data"
  ensure_user
  pg "$bin/initdb" -D "$data" -U postgres --auth=trust --no-sync --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { tail -20 "$dir/initdb.log" >&2; die "initdb failed (log: $dir/initdb.log)"; }
  cat >>"$data/postgresql.conf" <<EOF

# ---- scripts/postgres.sh: a throwaway test instance ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$socket'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 100
max_wal_size = 256MB
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

# ---- commands ----------------------------------------------------------------

case "$cmd" in
  start)
    p=$(the_port)
    if running; then
      die "a server already runs in $dir ($(url "$(saved_port)")): stop it first (postgres.sh stop --dir $dir) or use another --dir"
    fi
    port_open "$p" && die "port $p is in use by another program: pick another with --port PORT"
    sock="$socket/.s.PGSQL.$p"
    ((${#sock} < 107)) || die "the socket path $sock is too long for a unix socket; use a shorter --dir"
    init_cluster
    ((tls == 0)) || enable_tls
    mkdir -p "$socket"
    ensure_user
    echo "$p" >"$dir/port"
    : >"$log"
    ((${#as_pg[@]} == 0)) || chown "$pg_user:" "$log" "$dir/port"
    if ! pg "$bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 -o "-p $p -k $socket" >/dev/null 2>&1; then
      tail -20 "$log" >&2
      die "the server did not start (log: $log)"
    fi
    deadline=$((SECONDS + 30))
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$p" -t 2; do
      ((SECONDS < deadline)) || { tail -20 "$log" >&2; die "the server does not accept connections on 127.0.0.1:$p (log: $log)"; }
      sleep 0.2
    done
    if [[ -z "$(psql_admin "$p" "SELECT 1 FROM pg_roles WHERE rolname = '$db'")" ]]; then
      psql_admin "$p" "CREATE ROLE $db LOGIN CREATEDB" >/dev/null || die "cannot create the role $db (log: $log)"
    fi
    if [[ -z "$(psql_admin "$p" "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]]; then
      psql_admin "$p" "CREATE DATABASE $db OWNER $db" >/dev/null || die "cannot create the database $db (log: $log)"
    fi
    url "$p"
    echo "postgres.sh: PostgreSQL $(cat "$data/PG_VERSION") serving on 127.0.0.1:$p from $dir$([[ -f "$dir/tls/enabled" ]] && echo ", TCP over TLS only (CA: $dir/tls/ca.pem)")" >&2
    ;;
  stop)
    if ! running; then
      echo "postgres.sh: nothing running in $dir" >&2
      exit 0
    fi
    pg "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null ||
      die "the server in $dir did not stop within 60 s (log: $log)"
    echo "postgres.sh: stopped the server in $dir" >&2
    ;;
  status)
    if running; then
      echo "running $(url "$(saved_port)")"
    else
      echo "stopped"
      exit 1
    fi
    ;;
  url)
    [[ -f "$data/PG_VERSION" ]] || die "no server in $dir: run postgres.sh start first"
    url "$(the_port)"
    ;;
esac
