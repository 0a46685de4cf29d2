"""What is on screen at time t: the line shown, the line fading out, and the mix between them.

Pure functions of the timeline, so the offline render and the live show cut and crossfade
at the same moments. A line's loop is anchored at its own start time, so the loop's first
keyframe lands on the line's first word; before that (an intro, or a chosen gap line) the
loop simply runs at a negative phase, which a periodic loop allows, and nothing cuts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class _Cue(Protocol):
    line: int | None
    start: float
    previous_line: int | None


class _Timeline(Protocol):
    n_lines: int

    def at(self, t: float) -> _Cue: ...

    def line_span(self, i: int) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Shot:
    line: int  # the line shown (0-based)
    t_line: float  # seconds into its loop (may be negative before the line starts)
    prev: int | None  # the line fading out, None when no crossfade is running
    t_prev: float  # seconds into the previous line's loop
    mix: float  # 0: only prev, 1: only line


def shown_line(timeline: _Timeline, t: float, *, gap_line: int | None = None) -> int:
    """The line on screen at t: the active one; in a gap the chosen gap line or the previous."""
    cue = timeline.at(t)
    if cue.line is not None:
        return cue.line
    if gap_line is not None:
        return gap_line
    return 0 if cue.previous_line is None else cue.previous_line


def shot_at(
    timeline: _Timeline,
    t: float,
    *,
    crossfade_s: list[float] | tuple[float, ...],
    gap_line: int | None = None,
) -> Shot:
    """The shot at t; crossfade_s[i] is the blend time into line i (0 = hard cut)."""
    line = shown_line(timeline, t, gap_line=gap_line)
    t_line = t - anchor(timeline, line)
    cue = timeline.at(t)
    boundary = cue.start
    fade = crossfade_s[line]
    since = t - boundary
    if boundary > 0 and fade > 0 and 0 <= since < fade:
        before = shown_line(timeline, _just_before(boundary), gap_line=gap_line)
        if before != line:
            mix = smoothstep(since / fade)
            return Shot(
                line=line, t_line=t_line, prev=before, t_prev=t - anchor(timeline, before), mix=mix
            )
    return Shot(line=line, t_line=t_line, prev=None, t_prev=0.0, mix=1.0)


def anchor(timeline: _Timeline, line: int) -> float:
    """Where line's loop starts: the line's start time."""
    return timeline.line_span(line)[0]


def _just_before(t: float) -> float:
    return max(0.0, t - 1e-6)


def smoothstep(x: float) -> float:
    """0 -> 1 eased, with zero slope at both ends; x clamped to 0..1 (a crossfade's mix)."""
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)
