"""`python -m lyriscope` runs the CLI."""

import sys

from lyriscope.cli import main

sys.exit(main())
