#!/usr/bin/env bash
# Install pacs_lite on this Linux server (Debian/Ubuntu, as root): system packages, .venv, browser bundles,
# then `pacs-lite setup`: the settings file, the schema, the first admin and (with --schedule) the cron tasks.
#   bash setup.sh [--database-url mysql://...] [--orthanc-url ...] [--schedule] [--non-interactive]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install.sh
exec .venv/bin/pacs-lite setup "$@"
