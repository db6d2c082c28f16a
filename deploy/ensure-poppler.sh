#!/usr/bin/env bash
# Makes sure Debian's poppler-utils (pdftotext, pdftoppm, pdfdetach) is installed: the report tests
# read the PDFs they render with it. Installs the package when it is missing and we are root;
# otherwise says exactly what to install. Never downloads a binary by itself.
set -euo pipefail
if command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "medvault: poppler-utils is missing; installing Debian's package" >&2
  (apt-get install -y poppler-utils >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y poppler-utils >/dev/null; })
  command -v pdftotext >/dev/null && exit 0
fi
echo "medvault: poppler-utils is not installed. Install it with: sudo apt-get install -y poppler-utils" >&2
exit 1
