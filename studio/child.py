"""Where the studio's jobs start: `python -m lyriscope.studio.child ARGS` is `lyriscope ARGS` with Ctrl-C.

Cancelling a job sends SIGINT, which the commands handle as a Ctrl-C (collect keeps what it
stored, train writes a checkpoint). A process started with SIGINT ignored (a studio run from
a background shell, `cmd &`) would pass it on ignored to its children, and Python keeps it
so; here it becomes Python's KeyboardInterrupt again before the command runs.
"""

from __future__ import annotations

import signal
import sys

from lyriscope.cli import main

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
