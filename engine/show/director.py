"""Which line is on screen in a live show: the song's timeline, or a line cued by hand.

The timeline decides (engine.shots.shot_at, the same cuts and crossfades as the offline
render) unless the performer cued a line by hand (keyboard, MIDI note, OSC). A hand cue
holds until the next cue or until the song reaches its next line boundary after the cue,
where the timeline takes over again (crossfading from the cued line), so a cue never
fights the song for long and the show finds its way back by itself. With a live input
(--audio-in) there is no song clock for lines: lines change only by cue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lyriscope.engine.shots import Shot, shot_at, smoothstep
from lyriscope.errors import LyriscopeError
from lyriscope.timeline import Timeline


@dataclass(frozen=True)
class HandCue:
    """A line the performer cued: it holds from `at` until `until` (clock seconds)."""

    line: int
    at: float  # when it was cued; its loop starts here
    until: float  # the song's next line boundary after `at`; inf: only another cue ends it
    prev: int | None  # the line on screen before, fading out
    prev_at: float  # the anchor of the previous line's loop (t_prev = t - prev_at)


class Director:
    """Which line is on screen at clock time t: the timeline's, or the one cued by hand.

    timeline None: no song clock for lines (a live input); lines change only by cue.
    """

    def __init__(
        self,
        timeline: Timeline | None,
        *,
        crossfade_s: Sequence[float],
        gap_line: int | None = None,
        n_lines: int | None = None,
    ) -> None:
        self.timeline = timeline
        self.crossfade_s = tuple(crossfade_s)
        self.gap_line = gap_line
        self.n_lines = n_lines if n_lines is not None else len(self.crossfade_s)
        self.cue: HandCue | None = (
            None if timeline is not None else HandCue(0, 0.0, math.inf, None, 0.0)
        )
        self._released: HandCue | None = None  # the last hand cue, to fade out of at its end

    @property
    def source(self) -> str:
        """Who picked the line: "song" (timeline), "cue" (by hand) or "hand" (no timeline)."""
        if self.timeline is None:
            return "hand"
        return "cue" if self.cue is not None else "song"

    def shot(self, t: float) -> Shot:
        """What is on screen at t; a hand cue past its end (or before its start) gives way."""
        cue = self.cue
        if cue is not None and self.timeline is not None and not cue.at <= t < cue.until:
            self._released = cue if t >= cue.until else None
            self.cue = cue = None
        if cue is not None:
            return self._cued_shot(cue, t)
        shot = shot_at(self.timeline, t, crossfade_s=self.crossfade_s, gap_line=self.gap_line)
        released = self._released
        if released is not None:
            fade = self.crossfade_s[shot.line]
            since = t - released.until
            if not 0 <= since < fade:
                self._released = None
            elif released.line != shot.line:  # fade out of the cued line, not the song's
                mix = smoothstep(since / fade)
                return replace(shot, prev=released.line, t_prev=t - released.at, mix=mix)
        return shot

    def cue_line(self, line: int, t: float) -> None:
        """Show `line` (0-based) from t, fading from what is on screen now."""
        if not 0 <= line < self.n_lines:
            raise LyriscopeError(
                f"there is no line {line + 1}; the set has lines 1..{self.n_lines}"
            )
        now = self.shot(t)
        prev_at = t - now.t_line
        until = math.inf
        if self.timeline is not None:
            until = self.timeline.at(t).end
            if until <= t:  # at the song's end: hold until the next cue
                until = math.inf
        self.cue = HandCue(line, t, until, now.line if now.line != line else None, prev_at)
        self._released = None

    def step(self, delta: int, t: float) -> None:
        """Cue the line `delta` after (or before) the one on screen, clamped to the set."""
        line = self.shot(t).line
        self.cue_line(min(max(line + delta, 0), self.n_lines - 1), t)

    def forget(self) -> None:
        """Back to the timeline (after a seek); a live input keeps its line."""
        if self.timeline is not None:
            self.cue = None
            self._released = None

    def _cued_shot(self, cue: HandCue, t: float) -> Shot:
        t_line = t - cue.at
        fade = self.crossfade_s[cue.line]
        if cue.prev is not None and fade > 0 and t_line < fade:
            return Shot(
                line=cue.line,
                t_line=t_line,
                prev=cue.prev,
                t_prev=t - cue.prev_at,
                mix=smoothstep(t_line / fade),
            )
        return Shot(line=cue.line, t_line=t_line, prev=None, t_prev=0.0, mix=1.0)


__all__ = ["Director", "HandCue"]
