"""Native audio and MIDI libraries (ALSA, JACK, PortAudio) print to the process's stderr.

Probing devices on a machine without a sound server makes them print a dozen lines of
"cannot connect to server" that say nothing a person can act on; `muted_native_stderr()`
sends file descriptor 2 to /dev/null while they are probed (the command says what matters
in its own words), and `-v` keeps their output.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def muted_native_stderr(*, mute: bool = True) -> Iterator[None]:
    """While inside, writes to file descriptor 2 (C libraries' stderr) go nowhere."""
    if not mute:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
