#!/usr/bin/env bash
# Turns the single-server configuration that `medvault-controller nats-config` generates (TLS,
# nkey users, per-site permissions, JetStream) into the configuration of one node of a NATS
# cluster: a server name, the cluster block with routes to its peers, and a monitoring port.
# Run it once per node with the same base file; set `replicas = 3` under [nats] in
# controller.toml so every medvault stream and bucket keeps three copies (R3: any one node may
# fail or be rebooted without losing an acknowledged object).
#
#   deploy/nats-cluster/node-config.sh BASE.conf --name n1 --cluster HOST:PORT \
#       --route HOST:PORT [--route HOST:PORT…] [--store-dir DIR] [--monitor HOST:PORT] [--cluster-name NAME]
#
# Synchronous writes: nats-server 2.10 and later accept `sync_interval: always` (fsync before each
# ack); it is added when the installed server offers it. Debian's 2.9.10 refuses it, so there the
# durability of an acknowledged write comes from the three replicas (a write is acked once a
# majority has it) and from the controller's read-back receipts.
# Routes carry cluster traffic only; keep them on a private network (or firewall the port to the
# peers).
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,19p' "$0"; exit 2; }
BASE="$1"; shift
NAME=""; CLUSTER=""; ROUTES=(); STORE=""; MONITOR=""; CLUSTER_NAME="medvault"
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --cluster) CLUSTER="$2"; shift 2 ;;
    --route) ROUTES+=("$2"); shift 2 ;;
    --store-dir) STORE="$2"; shift 2 ;;
    --monitor) MONITOR="$2"; shift 2 ;;
    --cluster-name) CLUSTER_NAME="$2"; shift 2 ;;
    *) echo "node-config.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$NAME" ] && [ -n "$CLUSTER" ] && [ "${#ROUTES[@]}" -gt 0 ] || { echo "node-config.sh: --name, --cluster and at least one --route are required" >&2; exit 2; }
[[ "$NAME" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "node-config.sh: bad --name $NAME" >&2; exit 2; }
grep -q '^jetstream {' "$BASE" || { echo "node-config.sh: $BASE has no jetstream block (not from medvault-controller nats-config?)" >&2; exit 2; }

SYNC=""
VERSION="$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')"
if [ -n "$VERSION" ]; then
  read -r MAJOR MINOR <<< "$VERSION"
  if [ "$MAJOR" -gt 2 ] || { [ "$MAJOR" -eq 2 ] && [ "$MINOR" -ge 10 ]; }; then SYNC=', sync_interval: "always"'; fi
fi

routes=""
for r in "${ROUTES[@]}"; do routes+="${routes:+, }\"nats-route://$r\""; done
echo "# Node $NAME of NATS cluster $CLUSTER_NAME, from $(basename "$BASE") by deploy/nats-cluster/node-config.sh."
while IFS= read -r line; do
  if [[ "$line" =~ ^jetstream\ \{\ store_dir:\ (\"[^\"]*\")\ \}$ ]]; then
    dir="${BASH_REMATCH[1]}"
    [ -n "$STORE" ] && dir="\"$STORE\""
    echo "jetstream { store_dir: $dir$SYNC }"
    [ -z "$SYNC" ] && echo "# sync_interval: always needs nats-server 2.10+; R3 replicas and receipts carry durability here"
  else
    printf '%s\n' "$line"
  fi
done < "$BASE"
echo "server_name: \"$NAME\""
[ -n "$MONITOR" ] && echo "http: \"$MONITOR\""
echo "cluster {"
echo "  name: \"$CLUSTER_NAME\""
echo "  listen: \"$CLUSTER\""
echo "  routes: [$routes]"
echo "}"
