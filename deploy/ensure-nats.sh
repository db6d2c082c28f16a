#!/usr/bin/env bash
# Makes sure a nats-server binary is on PATH: installs Debian's package when it is missing and we
# are root; otherwise says exactly what to install. Never downloads a binary by itself.
set -euo pipefail
if command -v nats-server >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "medvault: nats-server is missing; installing Debian's package" >&2
  (apt-get install -y nats-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nats-server >/dev/null; })
  command -v nats-server >/dev/null && exit 0
fi
echo "medvault: nats-server is not installed. Install it with: sudo apt-get install -y nats-server" >&2
exit 1
