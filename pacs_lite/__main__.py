"""`python -m pacs_lite` runs the command line."""

import sys

from pacs_lite.cli import main

sys.exit(main())
