#!/usr/bin/env bash
# A CA and a server certificate for `orderflow up --tls-cert --tls-key`, for
# trying HTTPS and for the tests; in production use your own CA's certificate.
#
#   bash scripts/https-cert.sh DIR [NAME ...]
#
# NAME: an IP address or a DNS name the certificate is for (default:
# 127.0.0.1 localhost). Writes DIR/ca.pem (give it to clients, e.g. curl
# --cacert), DIR/ca.key, DIR/server.pem and DIR/server.key (keys mode 600),
# P-256 keys, valid 825 days; an existing CA in DIR is reused.
# Prints the flags for `orderflow up`.
set -euo pipefail

die() { echo "https-cert.sh: $*" >&2; exit 1; }
[[ $# -ge 1 && $1 != -h && $1 != --help ]] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit $(( $# >= 1 ? 0 : 2 )); }
command -v openssl >/dev/null || die "openssl not found: install it (sudo apt-get install openssl)"
dir=$1
shift
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(127.0.0.1 localhost)
mkdir -p "$dir"
umask 077
san=""
for n in "${names[@]}"; do
  if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="${san:+,}IP:$n"; else san+="${san:+,}DNS:$n"; fi
done

log="$dir/openssl.log"
if [[ ! -s "$dir/ca.pem" || ! -s "$dir/ca.key" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -sha256 \
    -subj "/O=orderflow/CN=orderflow HTTPS CA $(openssl rand -hex 4)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" >"$log" 2>&1 || { cat "$log" >&2; die "openssl could not make the CA in $dir"; }
fi
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
  "$san" >"$dir/server.ext"
{ openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -subj "/O=orderflow/CN=${names[0]}" \
    -keyout "$dir/server.key" -out "$dir/server.csr" &&
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 825 -sha256 \
    -extfile "$dir/server.ext" -out "$dir/server.pem"; } >"$log" 2>&1 ||
  { cat "$log" >&2; die "openssl could not make the server certificate in $dir"; }
rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl" "$log"
chmod 644 "$dir/ca.pem" "$dir/server.pem"
echo "--tls-cert $dir/server.pem --tls-key $dir/server.key"
echo "https-cert.sh: certificate for ${names[*]} in $dir; clients trust $dir/ca.pem" >&2
