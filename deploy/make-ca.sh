#!/usr/bin/env bash
# Makes a private certificate authority and a NATS server certificate for a first install.
#
#   deploy/make-ca.sh DIR [HOST...]
#
# DIR/ca.pem, DIR/ca.key          the CA (10 years; keep ca.key offline once the server cert exists)
# DIR/server.pem, DIR/server.key  the nats-server certificate, signed by the CA, for the HOSTs
#                                 (default: localhost 127.0.0.1), 2 years
# Agents and the controller pin DIR/ca.pem (nats.ca_file); nats-server uses all three files.
# Existing files are never overwritten: run it again with new HOSTs in a fresh DIR.
set -euo pipefail
dir="${1:?usage: make-ca.sh DIR [HOST...]}"
shift || true
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(localhost 127.0.0.1)
command -v openssl >/dev/null || { echo "make-ca.sh: openssl is missing (apt-get install openssl)" >&2; exit 2; }
mkdir -p "$dir"
chmod 700 "$dir"
umask 077
for f in ca.pem ca.key server.pem server.key; do
  [ ! -e "$dir/$f" ] || { echo "make-ca.sh: $dir/$f exists; refusing to overwrite" >&2; exit 1; }
done
san=""
for h in "${hosts[@]}"; do
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
done
san="${san%,}"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/O=medvault/CN=medvault private CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/server.key" 2>/dev/null
openssl req -new -key "$dir/server.key" -subj "/O=medvault/CN=${hosts[0]}" -out "$dir/server.csr" 2>/dev/null
ext="$(mktemp)"
trap 'rm -f "$ext" "$dir/server.csr"' EXIT
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" > "$ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 730 -sha256 \
  -extfile "$ext" -out "$dir/server.pem" 2>/dev/null
rm -f "$dir/ca.srl"
chmod 644 "$dir/ca.pem" "$dir/server.pem"
chmod 600 "$dir/ca.key" "$dir/server.key"
echo "make-ca.sh: CA $dir/ca.pem, server certificate $dir/server.pem for ${hosts[*]}"
