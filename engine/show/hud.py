"""The live show's HUD: what the performer needs to see, as text over the picture's top left.

`hud_lines(info)` says it in words (pure); `hud_panel(lines, size)` draws those words on a
dark backing with Pillow in the bundled face (engine.gl.typeface), wrapping rows wider than
the window so nothing runs off a small one; `HudOverlay` keeps the panel in a texture and
is the post chain's last pass (shaders/hud.frag.glsl), so screenshots include it. The panel
is redrawn only when its text changes, and the show refreshes the numbers a few times a
second, not every frame.

Example:
    >>> overlay = HudOverlay(size=1024)
    >>> renderer = Renderer.window(1024, effects=DEFAULT_CHAIN + (overlay.effect,))
    >>> overlay.show(renderer.ctx, hud_lines(info))  # before each renderer.render(...)
"""

from __future__ import annotations

import math
import re
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from lyriscope.engine.gl.renderer import Effect, FrameParams
from lyriscope.engine.gl.typeface import font

HUD_SHADER = "hud"
# The renderer binds its own samplers from unit 0 up, and moderngl writes textures through
# the last unit; unit 8 is free of both (GL 3.3 guarantees 16).
HUD_TEXTURE_UNIT = 8
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:/[^\s/:]+)+/([^\s/:]+)")
PANEL_ALPHA = 0.65  # the backing's opacity, so the text reads over any picture


@dataclass(frozen=True)
class HudInfo:
    """One snapshot of the show for the HUD."""

    t: float  # song (or show) seconds on the clock
    playing: bool
    line: int | None  # 0-based line on screen; None before the first image
    n_lines: int
    line_text: str = ""
    line_source: str = "song"  # "song" (the timeline), "cue" (cued by hand), "hand" (--audio-in)
    fps: float = 0.0  # frames presented per second
    frame_ms: float = 0.0  # display loop time per frame, milliseconds
    synth_ms: float = 0.0  # synthesis time of the shown image, milliseconds
    dropped: int = 0  # requested or finished frames replaced before use (latest frame wins)
    latency_frames: float = 0.0  # inputs taken -> presented, newest image, in the set's frames
    clock_status: str = ""
    inputs: tuple[str, ...] = ()  # one status line per input: MIDI, OSC, live audio
    frozen: bool = False
    blackout: bool = False
    error: str = ""  # the last error (a broken shader, a set.toml that does not load)
    message: str = ""  # the last news of the clock or an input ("audio device lost: ...")
    notice: str = ""  # a prompt, e.g. "press Esc again to quit"


def hud_lines(info: HudInfo, *, max_chars: int = 72) -> list[str]:
    """The HUD's text, one string per row."""
    state = "playing" if info.playing else "paused"
    flags = "".join(
        f"  [{name}]" for name, on in (("freeze", info.frozen), ("blackout", info.blackout)) if on
    )
    if info.line is None:
        line = "line -"
    else:
        line = f"line {info.line + 1}/{info.n_lines} ({info.line_source})"
        if info.line_text:
            line += f" {info.line_text!r}"
    rows = [
        f"{_clock_time(info.t)}  {state}{flags}",
        line,
        f"{info.fps:5.1f} fps  frame {info.frame_ms:5.1f} ms  synth {info.synth_ms:5.1f} ms",
        f"dropped {info.dropped}  latency {info.latency_frames:.1f} frames",
        info.clock_status or "clock: -",
        *info.inputs,
    ]
    rows = [_clip(row, max_chars) for row in rows if row]
    if info.message:
        rows += _wrap(_short_paths(info.message), max_chars)
    if info.error:
        rows += _wrap(f"error: {_short_paths(info.error)}", max_chars)
    if info.notice:
        rows.append(_clip(info.notice, max_chars))
    return rows


def hud_margin(size: int) -> int:
    """Pixels between the HUD panel and the window's edges, for an output side of `size`."""
    return max(2, size // 64)


def hud_panel(lines: Sequence[str], size: int) -> np.ndarray:
    """The HUD rows as white text on a translucent dark panel sized to fit them.

    size: the output side in pixels (the text scales with it, 9 px at least so it stays
    legible). A row wider than the window is wrapped (a long word broken), and rows that
    do not fit below each other are left out, so no glyph is cut by the window's edge.
    Returns uint8 [h, w, 4] RGBA, straight alpha, top row first; w and h are at most
    size - 2 * hud_margin(size).
    """
    pixels = max(9, size // 42)
    face = font(pixels)
    pad = max(3, pixels // 2)
    step = int(pixels * 1.3)
    room = max(1, size - 2 * hud_margin(size) - 2 * pad)  # text width and height that fit
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))

    def width_of(text: str) -> float:
        return probe.textlength(text, font=face)

    rows = [
        (piece, row.startswith("error:")) for row in lines for piece in _fit(row, width_of, room)
    ]
    rows = rows[: max(1, room // step)]
    width = max((width_of(row) for row, _ in rows), default=0.0)
    w = min(room, int(width)) + 2 * pad
    h = step * len(rows) + 2 * pad
    panel = Image.new("RGBA", (w, h), (0, 0, 0, round(255 * PANEL_ALPHA)))
    draw = ImageDraw.Draw(panel)
    for k, (row, error) in enumerate(rows):
        colour = (255, 120, 100, 255) if error else (255, 255, 255, 255)
        draw.text((pad, pad + k * step), row, font=face, fill=colour)
    return np.asarray(panel)


class HudRefresh:
    """When the HUD's words are redrawn: every `every_s` seconds, and at once when `state` changes.

    The numbers (fps, timings) change every frame; drawing them a few times a second keeps
    them readable and the panel's upload cheap, while a new line or an error shows at once.
    """

    def __init__(
        self,
        *,
        every_s: float,  # seconds between redraws of unchanged state
        clock: Callable[[], float] = time.monotonic,  # seconds; tests pass a fake
    ) -> None:
        self.every_s = every_s
        self._clock = clock
        self._next = -math.inf
        self._state: tuple = ()
        self.lines: list[str] = []

    def lines_for(self, state: tuple, info: Callable[[], HudInfo]) -> list[str]:
        """The HUD's rows: hud_lines(info()) when due or when state changed, else the last ones."""
        now = self._clock()
        if now >= self._next or state != self._state:
            self._next = now + self.every_s
            self._state = state
            self.lines = hud_lines(info())
        return self.lines


class HudOverlay:
    """The HUD as the post chain's last pass; `show()` before each frame, `visible` toggles it."""

    def __init__(self, *, size: int, visible: bool = True) -> None:
        self.size = size  # the renderer's output side in pixels
        self.visible = visible
        self.lines: tuple[str, ...] = ()
        self._texture: Any = None  # moderngl.Texture, made in the renderer's context
        self._rect = (0.0, 0.0, 0.0, 0.0)  # the panel in uv units: x0, y0, x1, y1
        self.effect = Effect(HUD_SHADER, self._uniforms, self._active)

    def show(self, ctx: Any, lines: Sequence[str]) -> None:
        """Set the HUD's text (redrawn only when it changed) and bind it for the next render."""
        lines = tuple(lines)
        if lines != self.lines or self._texture is None:
            self._upload(ctx, hud_panel(lines, self.size))
            self.lines = lines
        self._texture.use(location=HUD_TEXTURE_UNIT)

    def release(self) -> None:
        if self._texture is not None:
            self._texture.release()
            self._texture = None

    def _upload(self, ctx: Any, panel: np.ndarray) -> None:
        h, w = panel.shape[:2]
        if self._texture is None or self._texture.size != (w, h):
            self.release()
            self._texture = ctx.texture((w, h), 4, dtype="f1")
            self._texture.repeat_x = self._texture.repeat_y = False
        self._texture.write(np.ascontiguousarray(panel), alignment=1)
        margin = hud_margin(self.size) / self.size
        self._rect = (margin, margin, margin + w / self.size, margin + h / self.size)

    def _active(self, frame: FrameParams) -> bool:
        return self.visible and self._texture is not None

    def _uniforms(self, frame: FrameParams) -> Mapping[str, Any]:
        return {"u_hud": HUD_TEXTURE_UNIT, "u_hud_rect": self._rect}


def _clock_time(t: float) -> str:
    sign = "-" if t < 0 else ""
    t = abs(t)
    return f"{sign}{int(t // 60)}:{t % 60:05.2f}"


def _short_paths(text: str) -> str:
    """Absolute paths as their file names: the HUD is small, the log keeps the whole path."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def _wrap(text: str, max_chars: int, *, max_rows: int = 4) -> list[str]:
    # Errors carry a path and the compiler's words: wrap them, and only clip what is left.
    rows = textwrap.wrap(text, max_chars, break_long_words=True) or [""]
    if len(rows) > max_rows:
        rows = rows[: max_rows - 1] + [_clip(" ".join(rows[max_rows - 1 :]), max_chars)]
    return rows


def _fit(row: str, width_of: Callable[[str], float], room: float) -> list[str]:
    """A row as rows no wider than room pixels: broken at spaces, a longer word by letters."""
    out: list[str] = []
    current = ""
    for word in row.split(" "):  # "" for each extra space, so "a  b" keeps its two spaces
        joined = f"{current} {word}" if current else word
        if width_of(joined) <= room:
            current = joined
            continue
        if current:
            out.append(current)
        while len(word) > 1 and width_of(word) > room:
            cut = _letters_that_fit(word, width_of, room)
            out.append(word[:cut])
            word = word[cut:]
        current = word
    if current or not out:
        out.append(current)
    return out


def _letters_that_fit(word: str, width_of: Callable[[str], float], room: float) -> int:
    """How many of word's first letters fit in room (at least one, so breaking moves on)."""
    cut = 1
    while cut < len(word) and width_of(word[: cut + 1]) <= room:
        cut += 1
    return cut


def _clip(row: str, max_chars: int) -> str:
    return row if len(row) <= max_chars else row[: max_chars - 1] + "…"


__all__ = [
    "HUD_SHADER",
    "HUD_TEXTURE_UNIT",
    "HudInfo",
    "HudOverlay",
    "HudRefresh",
    "hud_lines",
    "hud_margin",
    "hud_panel",
]
