#!/usr/bin/env bash
# Installs a built medvault release on Debian: the service user, folders with their modes, the
# release under /opt/medvault, the systemd units, the command wrappers and a configuration
# skeleton. Idempotent: running it again changes nothing but the release it installs; it never
# overwrites a configuration file or a key. Upgrades install the new release beside the old one,
# switch /opt/medvault/current and keep the previous release for a rollback.
#
#   deploy/install.sh [--root DIR] [--release DIR] [--component agent|controller|all] [--version V]
#
#   --root DIR      install into DIR instead of / (a scratch root, a chroot, an image); users are then
#                   not created but written to DIR/var/lib/medvault-install/plan (what to run on the
#                   target), and ownership is recorded there too. DESTDIR works the same.
#   --release DIR   the built release (default: the checkout this script is in, after
#                   `npm ci && npm run build`)
#   --component     agent (default), controller, or all
#   --version V     the release's name (default: package.json version + build id)
set -euo pipefail

ROOT="${DESTDIR:-/}"
RELEASE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPONENT=agent
VERSION=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --release) RELEASE="$2"; shift 2 ;;
    --component) COMPONENT="$2"; shift 2 ;;
    --version) VERSION="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$COMPONENT" in agent|controller|all) ;; *) echo "install.sh: --component must be agent, controller or all" >&2; exit 2 ;; esac
ROOT="${ROOT%/}"
[ -n "$ROOT" ] || ROOT=""
SCRATCH=0
[ -n "$ROOT" ] && SCRATCH=1
[ "$(id -u)" -eq 0 ] || SCRATCH=1

for f in package.json protocol/dist agent/dist agent/dist/bundle/main.js controller/dist node_modules systemd/medvault-agent.service; do
  [ -e "$RELEASE/$f" ] || { echo "install.sh: $RELEASE is not a built release ($f missing): run npm ci && npm run build" >&2; exit 2; }
done
if [ -z "$VERSION" ]; then
  VERSION="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$RELEASE/package.json" | head -1)"
  # the bundle's main.js names its chunks by their content hashes, so it changes with any of them
  BUILD="$(cat "$RELEASE/agent/dist/bundle/main.js" "$RELEASE/agent/dist/bundle/pool-worker.js" "$RELEASE/controller/dist/main.js" | sha256sum | cut -c1-12)"
  VERSION="$VERSION-$BUILD"
fi
[[ "$VERSION" =~ ^[A-Za-z0-9._+-]+$ ]] || { echo "install.sh: bad version $VERSION" >&2; exit 2; }

PLAN_DIR="$ROOT/var/lib/medvault-install"
PLAN="$PLAN_DIR/plan"
mkdir -p "$PLAN_DIR"
chmod 0755 "$PLAN_DIR"
: > "$PLAN.new"
plan() { printf '%s\n' "$*" >> "$PLAN.new"; }
say() { printf 'install.sh: %s\n' "$*"; }

# owner USER:GROUP PATH — chown on a real install; recorded in the plan in a scratch root.
owner() {
  if [ "$SCRATCH" -eq 0 ]; then chown "$1" "$2"; else plan "chown $1 ${2#"$ROOT"}"; fi
}
# dir MODE OWNER PATH — creates PATH (under ROOT) with exactly MODE and OWNER.
dir() {
  mkdir -p "$ROOT$3"
  chmod "$1" "$ROOT$3"
  owner "$2" "$ROOT$3"
}
# file MODE OWNER PATH SOURCE — installs SOURCE at PATH (replacing it).
file() {
  install -m "$1" "$4" "$ROOT$3.tmp.$$"
  mv -f "$ROOT$3.tmp.$$" "$ROOT$3"
  owner "$2" "$ROOT$3"
}
# skeleton MODE OWNER PATH — writes stdin to PATH only if PATH does not exist (never overwrites).
skeleton() {
  if [ -e "$ROOT$3" ]; then cat > /dev/null; owner "$2" "$ROOT$3"; say "kept $3"; return; fi
  cat > "$ROOT$3.tmp.$$"
  chmod "$1" "$ROOT$3.tmp.$$"
  mv "$ROOT$3.tmp.$$" "$ROOT$3"
  owner "$2" "$ROOT$3"
  say "wrote $3"
}

# 1. The service user (no login, no home outside its state folder).
if [ "$SCRATCH" -eq 0 ]; then
  getent group medvault > /dev/null || groupadd --system medvault
  getent passwd medvault > /dev/null || useradd --system --gid medvault --home-dir /var/lib/medvault --no-create-home --shell /usr/sbin/nologin --comment "medvault backups" medvault
else
  plan "groupadd --system medvault"
  plan "useradd --system --gid medvault --home-dir /var/lib/medvault --no-create-home --shell /usr/sbin/nologin --comment 'medvault backups' medvault"
fi

# 2. Folders: configuration readable by the service group, secrets by root only (systemd hands them
# to the service through LoadCredential=), state private to the service.
dir 0755 root:root /opt/medvault
dir 0755 root:root /opt/medvault/releases
dir 0750 root:medvault /etc/medvault
dir 0700 root:root /etc/medvault/credentials
dir 0755 root:root /etc/systemd/system
dir 0755 root:root /usr/local/bin
if [ "$COMPONENT" != controller ]; then
  dir 0700 medvault:medvault /var/lib/medvault
  dir 0750 medvault:medvault /srv/restore
fi
[ "$COMPONENT" = agent ] || dir 0700 medvault:medvault /var/lib/medvault-controller

# 3. The release: copied beside the others, then /opt/medvault/current switched atomically.
DEST="/opt/medvault/releases/$VERSION"
STAGE="$ROOT/opt/medvault/releases/.$VERSION.tmp.$$"
rm -rf "$STAGE"
mkdir -p "$STAGE/agent/native/build/Release"
cp -a "$RELEASE/package.json" "$RELEASE/node_modules" "$STAGE/"
[ -e "$RELEASE/README.md" ] && cp -a "$RELEASE/README.md" "$STAGE/"
for pkg in protocol agent controller; do
  mkdir -p "$STAGE/$pkg"
  cp -a "$RELEASE/$pkg/package.json" "$RELEASE/$pkg/dist" "$STAGE/$pkg/"
done
cp -a "$RELEASE/agent/bin" "$STAGE/agent/" # the launcher: units and commands start the agent through it
cp -a "$RELEASE/agent/native/package.json" "$RELEASE/agent/native/index.cjs" "$RELEASE/agent/native/index.d.ts" "$STAGE/agent/native/"
[ -e "$RELEASE/agent/native/build/Release/fsx.node" ] && cp -a "$RELEASE/agent/native/build/Release/fsx.node" "$STAGE/agent/native/build/Release/"
cp -a "$RELEASE/systemd" "$RELEASE/deploy" "$STAGE/"
printf '%s\n' "$VERSION" > "$STAGE/VERSION"
chmod -R u=rwX,go=rX "$STAGE"
if [ -d "$ROOT$DEST" ]; then rm -rf "$ROOT$DEST.old.$$"; mv "$ROOT$DEST" "$ROOT$DEST.old.$$"; fi
mv "$STAGE" "$ROOT$DEST"
rm -rf "$ROOT$DEST.old.$$"
PREVIOUS="$(readlink "$ROOT/opt/medvault/current" 2>/dev/null || true)"
ln -sfn "releases/$VERSION" "$ROOT/opt/medvault/current.tmp.$$"
mv -Tf "$ROOT/opt/medvault/current.tmp.$$" "$ROOT/opt/medvault/current"
[ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "releases/$VERSION" ] && { ln -sfn "$PREVIOUS" "$ROOT/opt/medvault/previous"; say "previous release kept: /opt/medvault/$PREVIOUS"; }
# Keep the current and the previous release only.
for r in "$ROOT"/opt/medvault/releases/*; do
  n="releases/$(basename "$r")"
  [ "$n" = "releases/$VERSION" ] || [ "$n" = "$PREVIOUS" ] || [ "$n" = "$(readlink "$ROOT/opt/medvault/previous" 2>/dev/null || true)" ] || rm -rf "$r"
done
say "release $VERSION in $DEST"

# 4. Commands and units.
# wrapper NAME COMMAND: /usr/local/bin/NAME runs COMMAND (a path under the current release) with its arguments.
wrapper() {
  local tmp; tmp="$(mktemp)"
  printf '#!/bin/sh\n# medvault: installed by deploy/install.sh\nexec %s "$@"\n' "$2" > "$tmp"
  file 0755 root:root "/usr/local/bin/$1" "$tmp"
  rm -f "$tmp"
}
if [ "$COMPONENT" != controller ]; then
  wrapper medvault-agent /opt/medvault/current/agent/bin/medvault-agent # the agent's launcher (its process settings)
  file 0644 root:root /etc/systemd/system/medvault-agent.service "$RELEASE/systemd/medvault-agent.service"
fi
if [ "$COMPONENT" != agent ]; then
  wrapper medvault-controller "/usr/bin/node /opt/medvault/current/controller/dist/main.js"
  wrapper medvault "/usr/bin/node /opt/medvault/current/controller/dist/cli/medvault.js"
  file 0644 root:root /etc/systemd/system/medvault-controller.service "$RELEASE/systemd/medvault-controller.service"
fi

# 5. Configuration skeletons and the local key (never overwritten).
if [ "$COMPONENT" != controller ]; then
  if [ ! -e "$ROOT/etc/medvault/credentials/local.key" ]; then
    head -c 32 /dev/urandom > "$ROOT/etc/medvault/credentials/local.key.tmp.$$"
    chmod 0600 "$ROOT/etc/medvault/credentials/local.key.tmp.$$"
    mv "$ROOT/etc/medvault/credentials/local.key.tmp.$$" "$ROOT/etc/medvault/credentials/local.key"
    say "created the local key /etc/medvault/credentials/local.key (back it up; the recovery key is the other way in)"
  fi
  owner root:root "$ROOT/etc/medvault/credentials/local.key"
  skeleton 0640 root:medvault /etc/medvault/agent.toml <<'EOF'
# medvault agent configuration: fill in the values marked CHANGE, then `medvault-agent config check`.
# The enrolment bundle from `medvault-controller site add` has site, controller_public_key, the NATS
# URLs, ca.pem and site.nk: copy site.nk to /etc/medvault/credentials/site.nk (mode 0600).
site = "change-me"                          # CHANGE: the site id from enrolment
state_dir = "/var/lib/medvault"
key_file = "credential:local.key"           # systemd LoadCredential=local.key
recovery_public_key = "CHANGE"              # printed by medvault-agent recovery-key generate
controller_public_key = "CHANGE"            # printed by medvault-controller key
restore_roots = ["/srv/restore"]

[nats]
servers = ["tls://controller.example:4222"] # CHANGE
nkey_file = "credential:site.nk"
ca_file = "/etc/medvault/ca.pem"

[[disks]]
path = "/mnt/backup1/medvault"              # CHANGE: one repository per backup disk (owned by medvault)

[[stores]]
name = "records"
type = "files"
path = "/srv/records"                       # CHANGE
continuous = true
EOF
fi
if [ "$COMPONENT" != agent ]; then
  skeleton 0640 root:medvault /etc/medvault/controller.toml <<'EOF'
# medvault controller configuration: `medvault-controller config check` after each change.
state_dir = "/var/lib/medvault-controller"

[nats]
servers = ["tls://127.0.0.1:4222"]          # every node of a cluster, e.g. three
nkey_file = "/var/lib/medvault-controller/controller.nk"
ca_file = "/etc/medvault/ca.pem"
replicas = 1                                # 3 on a three-node NATS cluster (deploy/nats-cluster/)

[http]
host = "127.0.0.1"
port = 8443
EOF
fi

# 6. systemd: reload and enable on a real system; the services start once configured.
if [ "$SCRATCH" -eq 0 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  [ "$COMPONENT" != controller ] && systemctl enable medvault-agent.service
  [ "$COMPONENT" != agent ] && systemctl enable medvault-controller.service
  for u in medvault-agent medvault-controller; do
    systemctl is-active --quiet "$u" && systemctl try-restart "$u" && say "restarted $u on the new release"
  done
else
  plan "systemctl daemon-reload"
  [ "$COMPONENT" != controller ] && plan "systemctl enable medvault-agent.service"
  [ "$COMPONENT" != agent ] && plan "systemctl enable medvault-controller.service"
fi
mv -f "$PLAN.new" "$PLAN"
chmod 0644 "$PLAN"
say "done: ${ROOT:-/} ($COMPONENT, release $VERSION)"
[ "$SCRATCH" -eq 1 ] && say "scratch root: users, ownership and systemctl steps are in ${PLAN#"$ROOT"}"
exit 0
