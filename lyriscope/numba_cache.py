"""numba's compile cache (librosa's compiled code): a per-user folder, one compiling process.

numba caches what librosa compiles. Its default place, beside librosa in site-packages, was
found corrupt after several lyriscope processes first used it at once (a segfault in beat
tracking): numba's cache files are not safe against two processes writing them together
(numba issues 4807 and 10128). So the CLI points NUMBA_CACHE_DIR at the user's cache folder
when it is unset, and the code that makes numba compile holds `compile_lock()`, so that a
second process waits and then loads what the first one wrote.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path


def user_cache_dir(environ: MutableMapping[str, str] = os.environ) -> Path:
    """lyriscope's folder in the user's cache ($XDG_CACHE_HOME or ~/.cache)."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lyriscope"


def use_private_numba_cache(environ: MutableMapping[str, str] = os.environ) -> None:
    """Point NUMBA_CACHE_DIR at the user's cache folder, unless the user set one."""
    if not environ.get("NUMBA_CACHE_DIR"):
        environ["NUMBA_CACHE_DIR"] = str(user_cache_dir(environ) / "numba")


@contextmanager
def compile_lock(environ: MutableMapping[str, str] = os.environ) -> Iterator[None]:
    """Hold the machine-wide lock of numba's cache while code in it may compile or load."""
    folder = Path(environ.get("NUMBA_CACHE_DIR") or user_cache_dir(environ) / "numba")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lyriscope.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield
