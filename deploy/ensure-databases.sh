#!/usr/bin/env bash
# Starts the local PostgreSQL and MariaDB servers the database-store tests use, when they are
# installed but not running (as root, with Debian's own commands); installs them when missing.
set -uo pipefail
say() { echo "medvault: $*" >&2; }
if [ "$(id -u)" != 0 ]; then say "not root: leaving database servers as they are"; exit 0; fi
if ! command -v pg_ctlcluster >/dev/null || ! command -v mariadbd >/dev/null; then
  say "installing postgresql and mariadb-server"
  apt-get install -y postgresql mariadb-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y postgresql mariadb-server >/dev/null; }
fi
if ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || say "PostgreSQL did not start"
fi
if ! mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  say "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
fi
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
exit 0
