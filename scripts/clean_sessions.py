"""Delete expired sessions and old audit rows; for Windows Task Scheduler or cron.

    python scripts\\clean_sessions.py
"""

import sys

from pacs_lite.cli import main

if __name__ == "__main__":
    sys.exit(main(["clean-sessions", *sys.argv[1:]]))
