#!/usr/bin/env bash
# The newcomer's command on Debian/Ubuntu (as root): install what the demo needs, then `pacs-lite demo`.
#   bash scripts/demo.sh [--port 8080]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "== Starting the demo"
exec .venv/bin/pacs-lite demo "$@"
