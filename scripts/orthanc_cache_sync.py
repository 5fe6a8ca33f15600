"""Bring the cache up to date with Orthanc; for Windows Task Scheduler or cron.

    python scripts\\orthanc_cache_sync.py            one incremental pass
    python scripts\\orthanc_cache_sync.py --full     a full reconcile
"""

import sys

from pacs_lite.cli import main

if __name__ == "__main__":
    sys.exit(main(["sync", *sys.argv[1:]]))
