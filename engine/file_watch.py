"""Which files changed: polling modification times (and sizes), for hot reload and `preview --watch`.

Polling a few times a second works the same on every system and with every editor (those
that replace a file instead of writing it in place included) and needs no watcher thread.

Example:
    >>> watcher = FileWatcher([set_toml, lyrics])
    >>> watcher.changed()  # once per poll: the files whose stamp moved since the last call
    []
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

Stamp = tuple[int, int] | None  # (mtime_ns, size); None while the file is missing


def stamp(path: Path) -> Stamp:
    """The file's (mtime_ns, size), or None when it does not exist (an editor mid-save)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class FileWatcher:
    """Which of some files changed since the last look (modification time or size)."""

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self._stamps: dict[Path, Stamp] = {}
        self.watch(paths)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self._stamps)

    def watch(self, paths: Iterable[Path]) -> None:
        """Start watching paths (already watched ones keep their last stamp)."""
        for path in paths:
            path = Path(path)
            if path not in self._stamps:
                self._stamps[path] = stamp(path)

    def changed(self) -> list[Path]:
        """The watched files whose stamp differs from the last call's (a vanished file too)."""
        changed = []
        for path, before in self._stamps.items():
            now = stamp(path)
            if now != before:
                self._stamps[path] = now
                changed.append(path)
        return changed


def watch(
    path: Path,
    on_change: Callable[[], None],
    *,
    poll_s: float = 0.5,  # seconds between looks
    stop_after_s: float | None = None,  # None: until interrupted
) -> None:
    """Call on_change() whenever path changes; while it is missing (being replaced), wait for it."""
    watcher = FileWatcher([path])
    began = time.monotonic()
    while stop_after_s is None or time.monotonic() - began < stop_after_s:
        time.sleep(poll_s)
        if watcher.changed() and stamp(path) is not None:
            on_change()


__all__ = ["FileWatcher", "Stamp", "stamp", "watch"]
