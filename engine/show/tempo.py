"""Tempo for a live show: MIDI clock (24 pulses per quarter note), tap tempo, loops fitted to bars.

Both trackers are fed times in seconds on any monotonic clock and answer a tempo in BPM
(quarter notes per minute), or None while they do not know one yet.

Example:
    >>> fit_loop_seconds(15.0, 120.0)  # 2 s bars at 120 BPM in 4/4 -> 8 bars
    16.0
"""

from __future__ import annotations

import math
from collections import deque

from lyriscope.errors import LyriscopeError

PPQN = 24  # MIDI clock pulses per quarter note
CLOCK_TICK = 0xF8
CLOCK_START = 0xFA
CLOCK_CONTINUE = 0xFB
CLOCK_STOP = 0xFC
BPM_RANGE = (20.0, 999.0)  # what a clock master or a tapping hand plausibly sends


def fit_loop_seconds(loop_seconds: float, bpm: float, *, beats_per_bar: int = 4) -> float:
    """`loop_seconds` rounded to a whole number of bars (at least one) at `bpm`, in seconds."""
    if not bpm > 0:
        raise LyriscopeError(f"tempo: expected a positive BPM, got {bpm!r}")
    if beats_per_bar < 1:
        raise LyriscopeError(f"tempo: expected at least 1 beat per bar, got {beats_per_bar!r}")
    bar_s = beats_per_bar * 60.0 / bpm
    bars = max(1, round(loop_seconds / bar_s))
    return bars * bar_s


class TapTempo:
    """Tempo from taps on a key, pad or OSC message: the mean interval of the recent taps."""

    def __init__(
        self,
        *,
        max_gap_s: float = 2.0,  # a longer pause starts a new tempo (30 BPM is the slowest)
        taps: int = 8,  # how many recent taps are averaged
    ) -> None:
        self.max_gap_s = max_gap_s
        self._times: deque[float] = deque(maxlen=max(2, taps))

    def tap(self, t: float) -> float | None:
        """Record a tap at `t` seconds; the tempo in BPM once there are two taps, else None."""
        if self._times and not 0 < t - self._times[-1] <= self.max_gap_s:
            self._times.clear()
        self._times.append(t)
        return self.bpm

    @property
    def bpm(self) -> float | None:
        if len(self._times) < 2:
            return None
        beat_s = (self._times[-1] - self._times[0]) / (len(self._times) - 1)
        return 60.0 / beat_s

    def reset(self) -> None:
        self._times.clear()


class MidiClock:
    """Tempo of a MIDI clock master from the times of its 0xF8 ticks (24 per quarter note).

    0xFA (start) and 0xFB (continue) set `running`, 0xFC (stop) clears it. The tempo is the
    tick interval over the last `window_beats` beats, robust to a few late ticks; a pause longer than `max_gap_s`
    between ticks starts a new measurement, so a changed tempo after a stop is not averaged
    with the old one.
    """

    def __init__(
        self,
        *,
        window_beats: int = 4,  # beats averaged: longer is steadier, shorter follows changes faster
        min_ticks: int = 12,  # ticks needed before a tempo is given (half a beat)
        max_gap_s: float = 0.5,  # ticks further apart than this (30 BPM is 83 ms) are not one clock
    ) -> None:
        self.min_ticks = max(2, min_ticks)
        self.max_gap_s = max_gap_s
        self.running = False
        self._ticks: deque[float] = deque(maxlen=window_beats * PPQN + 1)

    def feed(self, status: int, t: float) -> None:
        """Take one real-time message (its status byte) received at `t` seconds."""
        if status == CLOCK_TICK:
            if self._ticks and not 0 <= t - self._ticks[-1] <= self.max_gap_s:
                self._ticks.clear()
            self._ticks.append(t)
        elif status in (CLOCK_START, CLOCK_CONTINUE):
            self.running = True
            if status == CLOCK_START:
                self._ticks.clear()
        elif status == CLOCK_STOP:
            self.running = False

    @property
    def bpm(self) -> float | None:
        """Quarter notes per minute, or None before `min_ticks` ticks."""
        ticks = list(self._ticks)
        n = len(ticks)
        if n < self.min_ticks:
            return None
        # Median of the intervals over half the window: a few late or bunched ticks (USB,
        # a busy machine) move it little, where (last - first) / count would take their error.
        lag = n // 2
        spans = sorted(ticks[k + lag] - ticks[k] for k in range(n - lag))
        tick_s = spans[len(spans) // 2] / lag
        bpm = 60.0 / (PPQN * tick_s) if tick_s > 0 else math.inf
        # A stall longer than half the window bunches most ticks; say "unknown", not 5000 BPM.
        return bpm if BPM_RANGE[0] <= bpm <= BPM_RANGE[1] else None

    def reset(self) -> None:
        self._ticks.clear()
        self.running = False
