"""One timebase for a render or a show: video frames per second, exact, and the audio hop.

Frames are counted, not timed: frame k is at t = k / fps, and a song of `duration` seconds
has round(duration * fps) frames. The audio analysis runs at a rate `sr` where one video
frame is exactly `hop` samples (sr = hop * fps), so offline and live features line up.
A Timebase is built once, where the user typed the rate (set.toml's [output] fps or a
--fps flag), and its error names that place.

Example:
    >>> tb = Timebase.from_set(songset, fps=None)  # the set's [output] fps
    >>> tb.frame_count(duration), tb.time(120), tb.sr, tb.hop
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from lyriscope.errors import SetError
from lyriscope.params import OUTPUT_PARAMS

if TYPE_CHECKING:
    from lyriscope.setmodel import SongSet

ANALYSIS_SR = 22050  # the audio analysis runs near this rate (Hz), as librosa's default


def fps_fraction(fps: float | Fraction | int) -> Fraction:
    """fps as an exact fraction; 29.97002997... (NTSC) becomes 30000/1001.

    Raises ValueError for a rate that is not a positive finite number.
    """
    if isinstance(fps, Fraction):
        rate = fps
    elif isinstance(fps, int | float) and math.isfinite(fps):
        rate = Fraction(fps).limit_denominator(1001)
    else:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


def analysis_rate(fps: float | Fraction, *, target_sr: int = ANALYSIS_SR) -> tuple[int, int]:
    """(sr, hop): the analysis rate nearest target_sr at which one video frame is hop samples.

    sr = hop * fps exactly; for 30000/1001 fps hop is a multiple of 1001.
    """
    rate = fps_fraction(fps)
    step = rate.denominator  # hop must be a multiple of it for sr = hop * rate to be whole
    units = max(1, round(target_sr / (rate * step)))
    hop = units * step
    return int(hop * rate), hop


def positive_seconds(seconds: float, *, where: str) -> float:
    """`seconds` once it is a positive finite number; `where` names its origin (a flag)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise SetError(f"{where}: expected a number of seconds, got {seconds!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise SetError(f"{where}: expected a positive number of seconds, got {seconds}")
    return float(seconds)


@dataclass(frozen=True)
class Timebase:
    """Video frames per second (exact) and the audio analysis rate that matches it."""

    fps: Fraction  # video frames per second; frame k is at t = k / fps
    sr: int  # audio analysis sample rate (Hz)
    hop: int  # analysis samples per video frame: sr = hop * fps

    @classmethod
    def at(cls, fps: float | Fraction | int, *, where: str = "fps") -> Timebase:
        """The timebase of `fps`; `where` names the place it came from in the error."""
        if isinstance(fps, bool) or not isinstance(fps, int | float | Fraction):
            raise SetError(f"{where}: expected a number of frames per second, got {fps!r}")
        problem = OUTPUT_PARAMS["fps"].problem(float(fps)) if math.isfinite(fps) else "a number"
        if problem:
            raise SetError(f"{where}: expected {problem} frames per second, got {fps}")
        rate = fps_fraction(fps)
        sr, hop = analysis_rate(rate)
        return cls(fps=rate, sr=sr, hop=hop)

    @classmethod
    def from_set(
        cls, songset: SongSet, *, fps: float | None = None, flag: str = "--fps"
    ) -> Timebase:
        """The set's [output] fps, or `fps` when the user gave one (named `flag` in errors)."""
        if fps is None:
            return cls.at(songset.output.fps, where=f"{songset.path}: [output] fps")
        return cls.at(fps, where=flag)

    @property
    def rate(self) -> float:
        """fps as a float, for arithmetic on seconds."""
        return float(self.fps)

    def time(self, frame: int | float) -> float:
        """Seconds of frame `frame` (t = frame / fps)."""
        return float(frame / self.fps)

    def frame(self, t: float) -> int:
        """The frame shown at t seconds: round(t * fps), never before frame 0."""
        return max(0, round(t * self.rate))

    def frame_count(self, duration_s: float) -> int:
        """Frames of a video of duration_s seconds: round(duration * fps)."""
        return round(duration_s * self.rate)


def clock_text(seconds: float) -> str:
    """Wall time as people read it: "0:07", "3:12", "1:02:05"."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
