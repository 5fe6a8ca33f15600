#!/usr/bin/env bash
# The newcomer's command on Debian/Ubuntu (as root): install what the demo needs, then `pacs-lite demo`.
#   bash scripts/demo.sh [--port 8080]
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in Orthanc:orthanc node:nodejs npm:npm; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== Installing ${missing[*]} from Debian"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
if [ ! -x .venv/bin/python ]; then
    echo "== Creating .venv"
    python3 -m venv .venv
fi
echo "== Installing pacs_lite into .venv"
.venv/bin/pip install -q -e .
echo "== Building the browser bundles"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
echo "== Starting the demo"
exec .venv/bin/pacs-lite demo "$@"
