#!/usr/bin/env bash
# deploy/ensure-package.sh PACKAGE COMMAND...: makes sure Debian's PACKAGE is installed, judged by
# its COMMANDs being on PATH. `npm test` runs it for poppler-utils (the report tests read the PDFs
# they render with pdftotext/pdftoppm) and chromium (the dashboard tests drive a real browser),
# once and before the test files run in parallel, whose installs would race for dpkg's lock.
# Installs the package when it is missing and we are root; otherwise says exactly what to
# install. Never downloads a binary by itself.
set -euo pipefail
pkg=$1; shift
have() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || return 1; done; }
if have "$@"; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "medvault: $pkg is missing; installing Debian's package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt() { apt-get -o DPkg::Lock::Timeout=600 "$@" >/dev/null; }
  apt install -y "$pkg" || { apt update && apt install -y "$pkg"; } || true
  if have "$@"; then exit 0; fi
fi
echo "medvault: $pkg is not installed. Install it with: sudo apt-get install -y $pkg" >&2
exit 1
