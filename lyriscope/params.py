"""The numbers of set.toml in one place: each parameter's range, its knob span and what it means.

setmodel validates set.toml against these ranges, the live controls clamp MIDI/OSC values to
them and map a 0..1 knob onto `knob`, and `lyriscope new` writes `help` beside each default.

Example:
    >>> WALK_PARAMS["pulse"].problem(-1.0)
    'a value of at least 0'
    >>> CONTROLLABLE[:3]
    ('pulse', 'motion', 'truncation')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Param:
    """One set.toml parameter: where it lives, what it means and what values it takes."""

    name: str
    table: str  # "output", "walk" or "post": the set.toml table it lives in
    help: str  # what it means, in the words `lyriscope new` writes beside it
    lo: float = -math.inf  # smallest value set.toml allows
    hi: float = math.inf  # largest value set.toml allows
    lo_open: bool = False  # True: the value must be above lo, not equal to it
    knob: tuple[float, float] | None = None  # a 0..1 knob sweeps this span; None: not live
    live_lo: float | None = None  # where live control clamps, when lo itself is open

    def problem(self, value: float) -> str | None:
        """What a valid value looks like, when `value` is not one; None when it is."""
        if self.lo_open and not value > self.lo:
            return f"a value above {_num(self.lo)}"
        if self.hi == math.inf and not value >= self.lo:
            return f"a value of at least {_num(self.lo)}"
        if not self.lo <= value <= self.hi:
            return f"a value in {_num(self.lo)}..{_num(self.hi)}"
        return None

    def clamp(self, value: float) -> float:
        """value limited to what set.toml allows (live control never leaves the valid range)."""
        lo = self.live_lo if self.live_lo is not None else self.lo
        return min(max(float(value), lo), self.hi)

    def from_normalised(self, x: float) -> float:
        """A knob position 0..1 (clamped) as a value on the knob's span."""
        lo, hi = self._knob()
        return lo + min(max(float(x), 0.0), 1.0) * (hi - lo)

    def to_normalised(self, value: float) -> float:
        """Where `value` sits on the knob's span, 0..1 (clamped)."""
        lo, hi = self._knob()
        return min(max((value - lo) / (hi - lo), 0.0), 1.0)

    @property
    def knob_min(self) -> float:
        return self._knob()[0]

    @property
    def knob_max(self) -> float:
        return self._knob()[1]

    def _knob(self) -> tuple[float, float]:
        if self.knob is None:
            raise ValueError(f"{self.name} is not a live parameter (it has no knob span)")
        return self.knob


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _table(*params: Param) -> MappingProxyType[str, Param]:
    return MappingProxyType({p.name: p for p in params})


OUTPUT_PARAMS = _table(
    Param(
        "size",
        "output",
        "frame side in pixels (square, even for H.264); smaller models are upscaled",
        lo=16,
        hi=8192,
    ),
    Param("fps", "output", "video frames per second; frame k is at t = k / fps", lo=1, hi=1000),
    Param("crf", "output", "H.264 quality: 0 lossless .. 51 worst", lo=0, hi=51),
)

WALK_PARAMS = _table(
    Param("pulse", "walk", "onset -> push along the pulse direction", lo=0, knob=(0.0, 2.0)),
    Param("motion", "walk", "loudness -> walk speed", lo=0, knob=(0.0, 2.0)),
    Param(
        "truncation", "walk", "psi: 0 average image .. 1 full variety", lo=-2, hi=2, knob=(0.0, 1.2)
    ),
    Param("truncation_follow", "walk", "psi added at full loudness", lo=0, knob=(0.0, 1.0)),
    Param("band_depth", "walk", "how far a band's energy pushes its layers", lo=0, knob=(0.0, 1.0)),
    Param(
        "loop_seconds",
        "walk",
        "one closed loop through the line's seeds, in seconds",
        lo=0,
        lo_open=True,
        knob=(2.0, 60.0),
        live_lo=0.1,
    ),
    Param(
        "crossfade_s",
        "walk",
        "blend time into a line at its start, in seconds",
        lo=0,
        knob=(0.0, 5.0),
    ),
    Param("seeds", "walk", "keyframes per loop when a line lists no seeds", lo=2, hi=1000),
    Param("bands", "walk", "frequency band -> layers of w it pushes (coarse, middle, fine, none)"),
    Param(
        "word_pulse",
        "walk",
        "a sung word (enhanced LRC) pushes the walk this much",
        lo=0,
        knob=(0.0, 1.0),
    ),
    Param("space", "walk", '"z": slerp between the seeds\' z; "w": lerp between their w'),
    Param(
        "noise",
        "walk",
        '"const" fixed grain, "random" flickers, "none" smooth (young models look cleaner)',
    ),
)

POST_PARAMS = _table(
    Param("brightness", "post", "added, -1 .. 1", lo=-1, hi=1, knob=(-1.0, 1.0)),
    Param("contrast", "post", "multiplier around mid grey", lo=0, hi=4, knob=(0.0, 2.0)),
    Param("saturation", "post", "0 grey .. 1 as is .. >1 vivid", lo=0, hi=4, knob=(0.0, 2.0)),
    Param("vignette", "post", "0 none .. 1 strong", lo=0, hi=1, knob=(0.0, 1.0)),
    Param("trail", "post", "feedback trail, 0 none .. 0.99", lo=0, hi=0.99, knob=(0.0, 0.95)),
    Param("text", "post", "draw the active lyric line"),
    Param("upscale", "post", "lanczos, bicubic, bilinear or nearest"),
)

# The lyric's look: [post] text_* keys, each overridable per [[line]] (as text_<name>).
TEXT_PARAMS = _table(
    Param("font", "text", 'a .ttf/.otf file (path in the set); "" the bundled DejaVu Sans Bold'),
    Param("size", "text", "letter height, a fraction of the frame side", lo=0.005, hi=0.5),
    Param("position", "text", '"bottom", "center" or "top"'),
    Param("margin", "text", "space to the frame's edge, a fraction of the side", lo=0, hi=0.45),
    Param("max_width", "text", "wrap lines wider than this fraction of the side", lo=0.1, hi=1),
    Param("color", "text", 'the words, "#rrggbb"'),
    Param("sung_color", "text", 'words already sung (enhanced LRC), "#rrggbb"'),
    Param(
        "karaoke",
        "text",
        '"fill" sweeps sung_color through each word as it is sung, "words" lights whole '
        'words, "off" shows the line in one colour',
    ),
    Param("outline", "text", "outline width, a fraction of the letter height", lo=0, hi=0.5),
    Param("outline_color", "text", 'the outline, "#rrggbb"'),
    Param("shadow", "text", "drop shadow opacity, 0 none .. 1", lo=0, hi=1),
    Param(
        "fade_s", "text", "fade in at the line's stamp and out at its end, in seconds", lo=0, hi=10
    ),
)

# Parameters a MIDI CC or OSC message may drive: every walk and post number with a knob.
LIVE_PARAMS = _table(*(p for t in (WALK_PARAMS, POST_PARAMS) for p in t.values() if p.knob))
CONTROLLABLE: tuple[str, ...] = tuple(LIVE_PARAMS)
