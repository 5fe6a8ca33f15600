"""Check the installation (PASS/WARN/FAIL lines, exit 1 on any FAIL); for Task Scheduler or by hand.

    python scripts\\test_system.py
"""

import sys

from pacs_lite.cli import main

if __name__ == "__main__":
    sys.exit(main(["check", *sys.argv[1:]]))
