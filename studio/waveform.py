"""A song's waveform for the page: the decoded audio's min and max per column, a few KB of JSON."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from lyriscope.audiofile import decode

DEFAULT_COLUMNS = 1200  # about one per pixel of a wide canvas


def waveform_peaks(path: Path, *, columns: int = DEFAULT_COLUMNS) -> dict:
    """{"duration": s, "sr": Hz, "min": [...], "max": [...]}: `columns` buckets of the mono signal."""
    y, sr = decode(path, mono=True)  # [n] float32 in -1..1
    columns = max(1, min(columns, len(y)))
    edges = np.linspace(0, len(y), columns + 1).astype(np.int64)
    lows = np.minimum.reduceat(y, edges[:-1])
    highs = np.maximum.reduceat(y, edges[:-1])
    return {
        "duration": len(y) / sr,
        "sr": sr,
        "min": np.round(lows, 3).tolist(),
        "max": np.round(highs, 3).tolist(),
    }


class WaveformCache:
    """Peaks by file, computed again only when the file changes (decoding a song takes seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._peaks: dict[tuple[str, int, int, int], dict] = {}

    def peaks(self, path: Path, *, columns: int = DEFAULT_COLUMNS) -> dict:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, columns)
        with self._lock:
            found = self._peaks.get(key)
        if found is None:
            found = waveform_peaks(path, columns=columns)
            with self._lock:
                self._peaks = {k: v for k, v in self._peaks.items() if k[0] != key[0]}
                self._peaks[key] = found
        return found
