"""Live parameter state shared by MIDI, OSC and the keyboard, read by the render loop once a frame.

Writers set a CONTROLLABLE parameter (lyriscope.setmodel.CONTROLLABLE) in its own units or
as 0..1 from a knob, and push cue/transport `Action`s. The render loop calls `tick(dt)` to
advance a one-pole smoothing (so a knob does not step the walk), then reads
`walk_params(line.walk)` / `post(songset.post)` and `drain()`. Everything is thread-safe.

Example:
    >>> controls = LiveControls(songset)
    >>> controls.set_normalised("pulse", 1.0)      # a knob at 127: pulse -> 2.0, smoothed
    >>> controls.tick(1 / 60)
    >>> params = controls.walk_params(songset.lines[0].walk)
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, fields, replace

from lyriscope.engine.show.tempo import TapTempo, fit_loop_seconds
from lyriscope.errors import LyriscopeError
from lyriscope.params import CONTROLLABLE, LIVE_PARAMS, Param
from lyriscope.setmodel import NOTE_ACTION, Post, SongSet, WalkParams

ACTION_KINDS: tuple[str, ...] = (
    "cue",
    "next",
    "prev",
    "freeze",
    "blackout",
    "flash",
    "play_pause",
    "seek",
)


@dataclass(frozen=True)
class Action:
    """A cue or transport command for the live loop.

    kind: "cue" (value = 0-based line), "next", "prev", "freeze", "blackout", "flash",
    "play_pause", "seek" (value = song seconds). For freeze/blackout/flash a value of None
    toggles (or fires), a value given sets on (>= 0.5) or off.
    """

    kind: str
    value: float | None = None


_WALK_FIELDS = frozenset(f.name for f in fields(WalkParams))
_POST_FIELDS = frozenset(f.name for f in fields(Post))


def check_parameter(name: str) -> Param:
    """The range of a controllable parameter; LyriscopeError naming the valid ones otherwise."""
    if name not in LIVE_PARAMS:
        raise LyriscopeError(
            f"unknown live parameter {name!r}; expected one of " + ", ".join(CONTROLLABLE)
        )
    return LIVE_PARAMS[name]


def note_action(action: str) -> Action:
    """The Action of a [midi] notes entry: "line:next", "line:prev", "line:N" (1-based), "freeze", ..."""
    if not NOTE_ACTION.match(action):
        raise LyriscopeError(
            f"unknown note action {action!r}; expected line:next, line:prev, "
            f"line:N, freeze, blackout or flash"
        )
    if action == "line:next":
        return Action("next")
    if action == "line:prev":
        return Action("prev")
    if action.startswith("line:"):
        return Action("cue", float(int(action[5:]) - 1))
    return Action(action)


class LiveControls:
    """Thread-safe overrides of the walk and post parameters, smoothed, plus a queue of Actions."""

    def __init__(
        self,
        songset: SongSet,
        *,
        smoothing_s: float = 0.05,  # one-pole time constant; 0 applies values at once
    ) -> None:
        self.smoothing_s = smoothing_s
        self._lock = threading.Lock()
        self._defaults = _defaults(songset)
        self._target: dict[str, float] = {}
        self._current: dict[str, float] = {}
        self._actions: deque[Action] = deque()
        self._tap = TapTempo()
        self._bpm: float | None = None

    # --- parameters ---------------------------------------------------------------------

    def set(self, name: str, value: float) -> None:
        """Drive parameter `name` towards `value` (its own units, clamped to what set.toml allows)."""
        target = check_parameter(name).clamp(value)
        with self._lock:
            # A first touch glides from the set's value, so it does not jump either.
            self._current.setdefault(name, self._defaults.get(name, target))
            self._target[name] = target

    def set_normalised(self, name: str, x: float) -> None:
        """Drive parameter `name` from a 0..1 knob position mapped onto its knob range."""
        self.set(name, check_parameter(name).from_normalised(x))

    def clear(self, name: str | None = None) -> None:
        """Drop the override of `name` (or of all parameters): the set's values apply again."""
        with self._lock:
            for key in list(self._target) if name is None else [name]:
                self._target.pop(key, None)
                self._current.pop(key, None)

    def tick(self, dt: float) -> None:
        """Advance the smoothing by `dt` seconds (called once per frame by the render loop)."""
        alpha = 1.0 if self.smoothing_s <= 0 else 1.0 - math.exp(-max(dt, 0.0) / self.smoothing_s)
        with self._lock:
            for name, target in self._target.items():
                cur = self._current[name]
                nxt = cur + alpha * (target - cur)
                r = LIVE_PARAMS[name]
                # Snap the last invisible bit so values() settles on the exact target.
                if abs(target - nxt) <= 1e-6 * (r.knob_max - r.knob_min):
                    nxt = target
                self._current[name] = nxt

    def values(self) -> dict[str, float]:
        """The current smoothed overrides (only parameters that were set)."""
        with self._lock:
            return dict(self._current)

    def targets(self) -> dict[str, float]:
        """Where each override is heading (what a HUD shows for a knob)."""
        with self._lock:
            return dict(self._target)

    def walk_params(
        self, base: WalkParams, *, fit_to_bars: bool = False, beats_per_bar: int = 4
    ) -> WalkParams:
        """`base` with the overrides applied; fit_to_bars rounds loop_seconds to whole bars at `bpm`."""
        changes = {k: v for k, v in self.values().items() if k in _WALK_FIELDS}
        params = replace(base, **changes) if changes else base
        bpm = self.bpm
        if fit_to_bars and bpm is not None:
            params = replace(
                params,
                loop_seconds=fit_loop_seconds(
                    params.loop_seconds, bpm, beats_per_bar=beats_per_bar
                ),
            )
        return params

    def post(self, base: Post) -> Post:
        """`base` with the post-chain overrides applied."""
        changes = {k: v for k, v in self.values().items() if k in _POST_FIELDS}
        return replace(base, **changes) if changes else base

    def reload(self, songset: SongSet) -> None:
        """Take a new set (hot reload of set.toml); current overrides stay."""
        defaults = _defaults(songset)
        with self._lock:
            self._defaults = defaults

    # --- actions ------------------------------------------------------------------------

    def push(self, action: Action) -> None:
        """Queue an action for the render loop."""
        if action.kind not in ACTION_KINDS:
            raise LyriscopeError(
                f"unknown action {action.kind!r}; expected one of " + ", ".join(ACTION_KINDS)
            )
        with self._lock:
            self._actions.append(action)

    def drain(self) -> list[Action]:
        """The actions pushed since the last call, oldest first."""
        with self._lock:
            out = list(self._actions)
            self._actions.clear()
        return out

    # --- tempo --------------------------------------------------------------------------

    @property
    def bpm(self) -> float | None:
        """The show's tempo (MIDI clock or tap tempo), None until one is known."""
        with self._lock:
            return self._bpm

    def set_bpm(self, bpm: float | None) -> None:
        """Set the tempo (from a MIDI clock); None forgets it."""
        if bpm is not None and not bpm > 0:
            raise LyriscopeError(f"tempo: expected a positive BPM, got {bpm!r}")
        with self._lock:
            self._bpm = bpm

    def tap(self, t: float) -> float | None:
        """A tap-tempo tap at `t` seconds (monotonic clock); returns and keeps the new BPM, if any."""
        with self._lock:
            bpm = self._tap.tap(t)
            if bpm is not None:
                self._bpm = bpm
            return bpm


def _defaults(songset: SongSet) -> dict[str, float]:
    values: dict[str, float] = {}
    for name in CONTROLLABLE:
        source = songset.walk if name in _WALK_FIELDS else songset.post
        values[name] = float(getattr(source, name))
    return values
