#!/usr/bin/env bash
# First install of the central site's secure NATS, in one go:
#
#   deploy/first-install.sh CONTROLLER_TOML NATS_CONF HOST...
#
# 1. the private CA and the nats-server certificate for HOST... (deploy/make-ca.sh), in the folder
#    of nats.ca_file from CONTROLLER_TOML, unless the CA exists;
# 2. the controller's signing key and NATS nkey (medvault-controller init; never overwritten);
# 3. the nats-server configuration NATS_CONF: TLS required, the controller and every enrolled site
#    as nkey users with their permissions (medvault-controller nats-config).
# Enrol sites with `medvault-controller site add SITE --out DIR`, then run step 3 again
# (`medvault-controller nats-config --out NATS_CONF`) and `nats-server --signal reload`.
# MEDVAULT_CONTROLLER names the controller program (default: medvault-controller on PATH).
set -euo pipefail
conf="${1:?usage: first-install.sh CONTROLLER_TOML NATS_CONF HOST...}"
out="${2:?usage: first-install.sh CONTROLLER_TOML NATS_CONF HOST...}"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
read -r -a mc <<< "${MEDVAULT_CONTROLLER:-medvault-controller}"
ca="$(sed -n 's/^[[:space:]]*ca_file[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$conf" | head -1)"
[ -n "$ca" ] || { echo "first-install.sh: $conf has no nats.ca_file" >&2; exit 2; }
case "$ca" in /*) ;; *) ca="$(cd "$(dirname "$conf")" && pwd)/$ca" ;; esac
if [ ! -e "$ca" ]; then "$here/make-ca.sh" "$(dirname "$ca")" "$@"; fi
"${mc[@]}" --config "$conf" init
"${mc[@]}" --config "$conf" nats-config --out "$out"
echo "first-install.sh: start nats-server -c $out, then medvault-controller --config $conf serve"
