"""What the live show measures: frames shown and dropped, loop and synthesis times, latency."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class ShowStats:
    """What the show measured (the HUD shows it; `LiveShow.run` returns it)."""

    presented: int = 0  # frames presented
    images: int = 0  # images the worker finished and the display showed
    dropped: int = 0  # requests and images replaced before use
    fps: float = 0.0  # presented frames per second, recent
    frame_ms: float = 0.0  # display loop time, recent mean
    synth_ms: float = 0.0  # synthesis time of the shown image
    # the newest image's inputs (clock read) to its first present(), in frames of the
    # set's fps; wall time, so a paused clock or a seek does not change it
    latency_frames: float = 0.0
    lines_shown: list[int] = field(default_factory=list)  # the line of each new image, in order
    errors: list[str] = field(default_factory=list)  # every error reported, in order


class FrameTimes:
    """The display loop's recent frames: how long each took and how far apart they came."""

    def __init__(self, *, window: int = 60) -> None:  # frames averaged
        self._work: deque[float] = deque(maxlen=window)  # seconds of work per frame
        self._intervals: deque[float] = deque(maxlen=window)  # seconds between frames

    def add(self, *, work_s: float, interval_s: float) -> None:
        self._work.append(work_s)
        self._intervals.append(interval_s)

    def update(self, stats: ShowStats) -> None:
        """Write the recent means into stats.frame_ms and stats.fps (kept while nothing is known)."""
        if self._work:
            stats.frame_ms = 1000 * sum(self._work) / len(self._work)
        if self._intervals:
            mean = sum(self._intervals) / len(self._intervals)
            stats.fps = 1.0 / mean if mean > 0 else 0.0


__all__ = ["FrameTimes", "ShowStats"]
