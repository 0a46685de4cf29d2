"""The lyric on screen: a line's words, styled, lit word by word as they are sung.

`LyricLayout` sets a line's text once (font, wrapping, position, outline and shadow) into
two RGBA layers, the words as not yet sung and as sung; `layer(t)` then picks, row by row,
how much of the sung layer shows (karaoke) and fades the whole in at the line's stamp and
out at its end. Setting the text is the slow part (Pillow) and happens once per line; a
frame only mixes two arrays.

Word times come from the enhanced LRC (lyriscope.lrc.Word). They are matched to the text
on screen by their letters, so the set.toml text may differ from the LRC's in spaces; when
the letters differ the line is shown whole, in its sung colour once the line has begun.

A frame's lyric travels as a `Lyric` (text, style, word times, its span and the frame's
time t); `LyricLayers` is the renderer's cache of layouts, so a line is set once however
many frames show it.

Example:
    >>> layout = LyricLayout.make(sung.line_text, size=1024, style=line.style, words=sung.words)
    >>> rgba = layout.layer(t, start=sung.start, end=sung.end)  # uint8 [1024, 1024, 4]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lyriscope.engine.gl.typeface import font as typeface
from lyriscope.lrc import Word
from lyriscope.setmodel import TextStyle

LINE_SPACING = 0.25  # between rows, as a fraction of the letter height
SHADOW_OFFSET = 0.06  # of the letter height, down and right
SHADOW_BLUR = 0.05  # of the letter height


@dataclass(frozen=True)
class Lyric:
    """The words on screen in one frame: a line's text in its style, at the frame's time t.

    t, start, end and the word times are seconds on one clock: the song's in a render and
    the live show, the clip's in a loop. Outside [start, end) the line is not shown.
    """

    text: str
    style: TextStyle
    t: float  # seconds: the frame's time
    start: float  # seconds: the line fades in here (its stamp)
    end: float  # seconds: and is gone here (the next stamp); inf: held until replaced
    words: tuple[Word, ...] = ()  # enhanced LRC word times; (): the line is lit whole


@dataclass(frozen=True)
class _Row:
    top: int  # pixel rows of this row of text in the layer
    bottom: int
    char_x: tuple[float, ...]  # x of each character boundary of the row's text (len + 1)
    first_char: int  # index of the row's first character in the whole text (spaces folded)


@dataclass(frozen=True)
class LyricLayout:
    """A line's text set in its style: the unsung and sung layers and where each letter is."""

    base: np.ndarray  # uint8 [size, size, 4] RGBA: the words before they are sung
    sung: np.ndarray  # uint8 [size, size, 4] RGBA: the words once sung
    rows: tuple[_Row, ...]
    word_spans: tuple[tuple[int, int], ...]  # each word's [first, last) character; () if none
    words: tuple[Word, ...]
    style: TextStyle

    @classmethod
    def make(
        cls, text: str, *, size: int, style: TextStyle, words: Sequence[Word] = ()
    ) -> LyricLayout:
        """Set `text` for a size x size frame; words: its enhanced LRC word times, if any."""
        text = " ".join(text.split())
        font = typeface(round(style.size * size), style.font)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        rows_text = _wrap(text, lambda s: probe.textlength(s, font=font), style.max_width * size)
        letter = font.size
        stroke = round(style.outline * letter)
        ascent, descent = font.getmetrics()
        row_h = ascent + descent + 2 * stroke
        gap = round(LINE_SPACING * letter)
        block_h = len(rows_text) * row_h + (len(rows_text) - 1) * gap
        margin = style.margin * size
        top = {
            "top": margin,
            "center": (size - block_h) / 2,
            "bottom": size - margin - block_h,
        }[style.position]
        colours = (_rgb(style.color), _rgb(style.sung_color))
        layers = [Image.new("RGBA", (size, size), (0, 0, 0, 0)) for _ in colours]
        draws = [ImageDraw.Draw(layer) for layer in layers]
        rows, first = [], 0
        for k, row in enumerate(rows_text):
            y = round(top + k * (row_h + gap))
            width = probe.textlength(row, font=font)
            x0 = (size - width) / 2
            for draw, colour in zip(draws, colours, strict=True):
                draw.text(
                    (x0, y + stroke),
                    row,
                    font=font,
                    fill=(*colour, 255),
                    stroke_width=stroke,
                    stroke_fill=(*_rgb(style.outline_color), 255),
                )
            char_x = tuple(x0 + probe.textlength(row[:i], font=font) for i in range(len(row) + 1))
            rows.append(_Row(max(0, y), min(size, y + row_h), char_x, first))
            first += len(row) + 1  # the space the wrap took
        base, sung = (_with_shadow(layer, style, letter) for layer in layers)
        spans = _word_spans(text, words)
        return cls(base, sung, tuple(rows), spans, tuple(words) if spans else (), style)

    def sung_chars(self, t: float, *, start: float, end: float) -> float:
        """How many characters are sung at t (fractional while a word fills); inf: all."""
        mode = self.style.karaoke
        if mode == "off":
            return -np.inf  # never lit: shown in its colour
        if not self.word_spans:
            return np.inf if t >= start else -np.inf  # no word times: lit whole while sung
        lit = -np.inf
        for i, (word, (a, b)) in enumerate(zip(self.words, self.word_spans, strict=True)):
            if t < word.start:
                break
            if mode == "words":
                lit = b
                continue
            after = self.words[i + 1].start if i + 1 < len(self.words) else end
            fill = 1.0 if after <= word.start else min(1.0, (t - word.start) / (after - word.start))
            lit = a + fill * (b - a)
        return lit

    def alpha(self, t: float, *, start: float, end: float) -> float:
        """The fade: 0 before the stamp, up over fade_s, down over fade_s to the end."""
        fade = self.style.fade_s
        if not start <= t < end:
            return 0.0
        if fade <= 0:
            return 1.0
        return float(min(1.0, (t - start) / fade, (end - t) / fade))

    def layer(self, t: float, *, start: float, end: float) -> np.ndarray:
        """uint8 [size, size, 4] RGBA (straight alpha) of the lyric at t."""
        out = self.base.copy()
        lit = self.sung_chars(t, start=start, end=end)
        for row in self.rows:
            n = len(row.char_x) - 1
            chars = lit - row.first_char  # characters of this row already sung
            if chars <= 0:
                continue
            if chars >= n:
                x = out.shape[1]  # the whole row, its outline and shadow too
            else:
                whole = int(chars)
                x = row.char_x[whole] + (chars - whole) * (
                    row.char_x[whole + 1] - row.char_x[whole]
                )
            xi = max(0, round(x))
            out[row.top : row.bottom, :xi] = self.sung[row.top : row.bottom, :xi]
        a = self.alpha(t, start=start, end=end)
        if a < 1.0:
            out[..., 3] = (out[..., 3] * a).astype(np.uint8)
        return out


class LyricLayers:
    """A renderer's lyrics: each line's LyricLayout set once and kept while it is shown.

    Keyed by (text, style, words), so two lines with the same words share a layout and a
    hot-reloaded style sets the line again. Holds the last `keep` layouts (a 1024² layout
    is 8 MB); a lyric video shows one line at a time.
    """

    def __init__(self, size: int, *, keep: int = 4) -> None:
        self.size = size  # the frame side in pixels
        self.keep = keep
        self._layouts: OrderedDict[tuple, LyricLayout] = OrderedDict()

    def layout(self, lyric: Lyric) -> LyricLayout:
        """The lyric's line, set in its style at this size (the first time only)."""
        key = (lyric.text, lyric.style, lyric.words)
        layout = self._layouts.get(key)
        if layout is None:
            layout = LyricLayout.make(
                lyric.text, size=self.size, style=lyric.style, words=lyric.words
            )
            self._layouts[key] = layout
            while len(self._layouts) > self.keep:
                self._layouts.popitem(last=False)
        else:
            self._layouts.move_to_end(key)
        return layout

    def layer(self, lyric: Lyric) -> np.ndarray:
        """uint8 [size, size, 4] RGBA (straight alpha) of the lyric at its time t."""
        return self.layout(lyric).layer(lyric.t, start=lyric.start, end=lyric.end)


def _word_spans(text: str, words: Sequence[Word]) -> tuple[tuple[int, int], ...]:
    """Each word's [first, last) character in text, matched by letters; () when they differ.

    A closing stamp (a word without text) gets an empty span at the end: it lights nothing,
    it only says when the word before it ends.
    """
    letters = "".join(w.text for w in words).replace(" ", "")
    if not words or letters != text.replace(" ", ""):
        return ()
    spans, pos = [], 0
    for word in words:
        left = len(word.text.replace(" ", ""))
        while left and text[pos] == " ":
            pos += 1
        first = pos
        while left:
            left -= text[pos] != " "
            pos += 1
        spans.append((first, pos))
    return tuple(spans)


def _wrap(text: str, width_of, max_width: float) -> list[str]:
    """Rows of whole words no wider than max_width (a longer word gets a row of its own)."""
    rows: list[str] = []
    for word in text.split(" "):
        if rows and width_of(rows[-1] + " " + word) <= max_width:
            rows[-1] += " " + word
        else:
            rows.append(word)
    return rows or [""]


def _with_shadow(layer: Image.Image, style: TextStyle, letter: int) -> np.ndarray:
    if style.shadow <= 0:
        return np.asarray(layer).copy()
    alpha = layer.getchannel("A").filter(ImageFilter.GaussianBlur(SHADOW_BLUR * letter))
    shift = round(SHADOW_OFFSET * letter)
    shadow = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    shadow.putalpha(alpha.point(lambda v: round(v * style.shadow)))
    moved = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    moved.paste(shadow, (shift, shift))
    return np.asarray(Image.alpha_composite(moved, layer)).copy()


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
