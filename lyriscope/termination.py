"""SIGTERM handled like Ctrl-C: an exception in the main thread, so cleanup code runs.

`timeout`, systemd and Slurm stop a process with SIGTERM, whose default action ends it on
the spot: no `finally`, no context manager, so a render's temporary file stays behind.
While a command runs, the CLI turns SIGTERM into `Terminated`, a KeyboardInterrupt (every
place that cleans up after Ctrl-C cleans up after it too), and exits 143 (128 + 15).
Commands with their own handling (training saves a checkpoint first) install their own
handler inside and restore this one after.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as after Ctrl-C, cleaning up on the way out."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises Terminated in the main thread (elsewhere: no change).

    Every SIGTERM raises, as every Ctrl-C does: Python runs handlers wherever the main thread
    is, and one that lands in a finaliser or weakref callback is printed and dropped, so a
    later SIGTERM must still stop the command. (What a second one cuts short in cleanup, the
    next render of that output removes: lyriscope.atomic.remove_stale_parts.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
