#!/usr/bin/env bash
# Install what pacs_lite needs on Debian 12 or Ubuntu (as root), into this checkout:
# Debian's Orthanc, Python venv and Node.js (only those missing), .venv with pacs_lite, the browser bundles.
#   bash scripts/install.sh           for the demo and a single-box install
#   bash scripts/install.sh --tests   also MariaDB, Chromium, the DICOMweb plugin and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

programs="Orthanc:orthanc node:nodejs npm:npm"
extras=""
if [ "${1:-}" = "--tests" ]; then
    programs="$programs mariadbd:mariadb-server chromium:chromium"
    extras="[test]"
fi
missing=()
for pair in $programs; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ -n "$extras" ] && [ ! -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then
    missing+=(orthanc-dicomweb)
fi
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== Installing ${missing[*]} from Debian"
    apt-get update -q
    # The packages try to start their services; that fails without systemd and does no harm.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" || {
        for package in "${missing[@]}"; do
            dpkg -s "$package" >/dev/null 2>&1 || { echo "could not install $package" >&2; exit 1; }
        done
    }
fi
if [ ! -x .venv/bin/python ]; then
    echo "== Creating .venv"
    python3 -m venv .venv
fi
echo "== Installing pacs_lite$extras into .venv"
.venv/bin/pip install -q -e ".$extras"
echo "== Building the browser bundles"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
