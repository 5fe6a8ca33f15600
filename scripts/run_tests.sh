#!/usr/bin/env bash
# The test command (as root, on Debian 12 or Ubuntu): install what the tests need, then run them all.
#   bash scripts/run_tests.sh [pytest arguments]
# The tests start their own MariaDB, Orthanc and Chromium in temp folders; this only installs them
# (scripts/install.sh --tests, shared with the demo: Debian packages only when missing, .venv, bundles).
# Safe to run again, and without a terminal (CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/install.sh --tests
echo "== Running the tests: pytest $*"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
elapsed=$((SECONDS - started))
case "$status" in
    0) echo "== PASSED: no test failed (${elapsed} s with the installation)" ;;
    1) echo "== FAILED: some tests failed; see pytest's summary above (${elapsed} s)" >&2 ;;
    5) echo "== FAILED: pytest collected no tests, which counts as a failure; check the arguments" >&2 ;;
    *) echo "== FAILED: pytest stopped with exit code $status (interrupted, internal or usage error)" >&2 ;;
esac
exit "$status"
