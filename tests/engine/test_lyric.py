"""The lyric layer: styled text, lit word by word when sung, faded in and out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lyriscope.engine.gl.lyric import LyricLayout
from lyriscope.lrc import parse_lrc
from lyriscope.setmodel import TextStyle

FPS = 60
SIZE = 256
LRC = "[00:06.10]A tide of <00:06.90>quiet glass <00:07.80>breaks <00:08.50>\n"
STYLE = TextStyle(color="#ffffff", sung_color="#ff0000", shadow=0.0, outline=0.0, fade_s=0.0)


@pytest.fixture
def sung():
    return parse_lrc(LRC).lines[0]


def lit_fraction(layer: np.ndarray, layout: LyricLayout, first: int, last: int) -> float:
    """Share of the opaque pixels of characters [first, last) that are in the sung colour."""
    row = next(r for r in layout.rows if r.first_char <= first < r.first_char + len(r.char_x))
    x0 = round(row.char_x[first - row.first_char])
    x1 = round(row.char_x[last - row.first_char])
    box = layer[row.top : row.bottom, x0:x1]
    opaque = box[..., 3] > 200
    red = (box[..., 0] > 200) & (box[..., 1] < 60)
    return float(red[opaque].mean())


@pytest.mark.parametrize("mode", ["words", "fill"])
def test_a_words_highlight_starts_within_one_frame_of_its_stamp(sung, mode):
    layout = LyricLayout.make(
        sung.text, size=SIZE, style=replace(STYLE, karaoke=mode), words=sung.words
    )
    quiet = layout.word_spans[1]  # "quiet glass", sung from 6.90 s
    frame = round(6.90 * FPS)  # the frame at the stamp: t = frame / fps
    before = layout.layer((frame - 1) / FPS, start=sung.start, end=8.5)
    at = layout.layer((frame + 1) / FPS, start=sung.start, end=8.5)
    assert lit_fraction(before, layout, *quiet) == 0.0
    assert lit_fraction(at, layout, *quiet) > 0.0
    assert lit_fraction(at, layout, *layout.word_spans[0]) == 1.0  # the word before: all lit
    assert lit_fraction(at, layout, *layout.word_spans[2]) == 0.0  # the word after: not yet


def test_fill_sweeps_through_the_word_as_it_is_sung(sung):
    layout = LyricLayout.make(
        sung.text, size=SIZE, style=replace(STYLE, karaoke="fill"), words=sung.words
    )
    quiet = layout.word_spans[1]  # 6.90 s .. 7.80 s
    shares = [
        lit_fraction(layout.layer(t, start=sung.start, end=8.5), layout, *quiet)
        for t in (6.95, 7.35, 7.75)
    ]
    assert shares[0] < 0.25 < shares[1] < 0.75 < shares[2]


def test_without_matching_word_times_the_line_is_shown_whole(sung):
    other = LyricLayout.make("a different text", size=SIZE, style=STYLE, words=sung.words)
    assert other.word_spans == ()
    layer = other.layer(7.0, start=6.1, end=8.5)
    assert lit_fraction(layer, other, 0, 16) == 1.0  # sung colour, all of it at once
    off = LyricLayout.make(
        sung.text, size=SIZE, style=replace(STYLE, karaoke="off"), words=sung.words
    )
    assert lit_fraction(off.layer(8.0, start=6.1, end=8.5), off, 0, 6) == 0.0


def test_the_line_fades_in_at_its_stamp_and_out_at_its_end(sung):
    layout = LyricLayout.make(
        sung.text, size=SIZE, style=replace(STYLE, fade_s=0.5), words=sung.words
    )
    peak = [layout.layer(t, start=6.1, end=8.5)[..., 3].max() for t in (6.0, 6.35, 7.0, 8.25, 8.5)]
    assert peak[0] == 0 and peak[-1] == 0  # not before the stamp, not at the end
    assert 100 < peak[1] < 155 and peak[2] == 255 and 100 < peak[3] < 155


@pytest.mark.parametrize("position", ["top", "center", "bottom"])
def test_position_margin_and_wrapping_keep_the_words_inside_their_box(position):
    style = replace(STYLE, position=position, margin=0.1, max_width=0.5, size=0.08)
    layout = LyricLayout.make("one two three four five six seven", size=SIZE, style=style)
    alpha = layout.layer(1.0, start=0.0, end=2.0)[..., 3]
    ys, xs = np.nonzero(alpha)
    assert len(layout.rows) >= 3  # wrapped to half the frame's width
    assert xs.min() >= SIZE * 0.25 - 2 and xs.max() <= SIZE * 0.75 + 2
    centre = (ys.min() + ys.max()) / 2
    expected = {
        "top": (0.1 * SIZE, SIZE / 2),
        "center": (SIZE * 0.4, SIZE * 0.6),
        "bottom": (SIZE / 2, SIZE * 0.9),
    }
    low, high = expected[position]
    assert low <= centre <= high
    if position == "top":
        assert ys.min() >= 0.1 * SIZE - 2
    if position == "bottom":
        assert ys.max() <= 0.9 * SIZE + 2
