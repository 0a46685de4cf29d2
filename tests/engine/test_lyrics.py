"""The words on screen follow what is sung: the render, loops and the CLI (live: test_live.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.engine.gl.lyric import LyricLayout
from lyriscope.engine.lyrics import line_words, loop_lyric, song_lyric, word_times
from lyriscope.engine.offline.loops import LoopOptions, render_loop
from lyriscope.engine.offline.render import RenderOptions, render
from lyriscope.engine.synth.runtime import Generator
from lyriscope.lrc import Word
from lyriscope.setmodel import SongSet, load_set
from lyriscope.timeline import Timeline

FPS = 10.0
SIZE = 128  # big enough for letters whose colours can be told apart
DURATION_S = 3.2
# An intro to 0.5 s; line 1 sung 0.5-1.6 s ("line" from 1.04 s, between frames 10 and 11);
# a gap to 2.2 s; line 2 until its closing stamp at 2.9 s; then the outro.
LRC = (
    "[00:00.50]first <00:01.04>line <00:01.44>\n"
    "[00:01.60]\n"
    "[00:02.20]second <00:02.64>line <00:02.90>\n"
)
INTRO, GAP, OUTRO = range(0, 5), range(16, 22), range(29, 32)  # frames nobody sings in
SUNG = (*range(5, 16), *range(22, 29))
# Plain colours, so a lit letter is told from an unlit one by its pixels.
STYLE = {
    "text": True,
    "text_size": 0.14,
    "text_color": "#ffffff",
    "text_sung_color": "#ff0000",
    "text_outline": 0.0,
    "text_shadow": 0.0,
    "text_fade_s": 0.0,
}


@pytest.fixture(scope="module")
def lyric_set(tmp_path_factory) -> Path:
    """Two lines with word times, a gap, an intro and an outro; random 32² models."""
    return write_set(
        tmp_path_factory.mktemp("lyrics") / "sung",
        lrc=LRC,
        audio="tone",
        seconds=DURATION_S,
        output={"size": SIZE, "fps": FPS},
        walk={"loop_seconds": 4.0, "seeds": 3, "crossfade_s": 0.5},
        post={"vignette": 0.0, **STYLE},
        models=True,
    )


@pytest.fixture(scope="module")
def generator(lyric_set) -> Generator:
    return Generator.from_set(load_set(lyric_set))


def rendered_frames(
    songset: SongSet, out: Path, generator: Generator, **options
) -> list[np.ndarray]:
    """The render of songset as PNG frames (lossless): uint8 [SIZE, SIZE, 3] each."""
    render(songset, out, options=RenderOptions(progress=False, **options), generator=generator)
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(out.glob("frame*.png"))]


def with_style(songset: SongSet, **style) -> SongSet:
    lines = tuple(replace(line, style=replace(line.style, **style)) for line in songset.lines)
    return replace(songset, lines=lines)


@pytest.fixture(scope="module")
def frames_text_on_off(lyric_set, generator, tmp_path_factory) -> dict[bool, list[np.ndarray]]:
    songset = load_set(lyric_set)
    return {
        on: rendered_frames(
            replace(songset, post=replace(songset.post, text=on)),
            tmp_path_factory.mktemp(f"text-{on}"),
            generator,
        )
        for on in (True, False)
    }


def red_pixels(frame: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Pixels in the sung colour (pure red) inside box = (top, bottom, left, right)."""
    top, bottom, left, right = box
    patch = frame[top:bottom, left:right].astype(int)
    return int(((patch[..., 0] > 220) & (patch[..., 1] < 40) & (patch[..., 2] < 40)).sum())


def word_box(layout: LyricLayout, word: int) -> tuple[int, int, int, int]:
    first, last = layout.word_spans[word]
    row = next(r for r in layout.rows if r.first_char <= first < r.first_char + len(r.char_x))
    left, right = row.char_x[first - row.first_char], row.char_x[last - row.first_char]
    return row.top, row.bottom, round(left), round(right)


def test_the_timeline_of_the_test_song_is_what_the_frames_assume(lyric_set):
    songset = load_set(lyric_set)
    timeline = Timeline.from_set(songset, duration=DURATION_S)
    sung = [k for k in range(32) if song_lyric(songset, timeline, k / FPS) is not None]
    assert sung == list(SUNG)
    lyric = song_lyric(songset, timeline, 1.2)
    assert (lyric.text, lyric.start, lyric.end, lyric.t) == ("first line", 0.5, 1.6, 1.2)
    assert [w.text for w in lyric.words] == ["first", "line", ""]
    assert word_times(timeline) == (0.5, 1.04, 2.2, 2.64)  # closing stamps are no words


@pytest.mark.parametrize(("part", "frames"), [("intro", INTRO), ("gap", GAP), ("outro", OUTRO)])
def test_where_nobody_sings_text_on_is_pixel_identical_to_text_off(
    frames_text_on_off, part, frames
):
    on, off = frames_text_on_off[True], frames_text_on_off[False]
    assert len(on) == len(off) == round(DURATION_S * FPS)
    for k in frames:
        np.testing.assert_array_equal(on[k], off[k], err_msg=f"{part}: frame {k}")


def test_while_a_line_is_sung_its_words_are_on_screen(frames_text_on_off):
    on, off = frames_text_on_off[True], frames_text_on_off[False]
    for k in SUNG:
        assert np.abs(on[k].astype(int) - off[k]).max() > 100, f"frame {k} has no words"


@pytest.mark.parametrize("karaoke", ["words", "fill"])
def test_a_words_highlight_starts_within_one_frame_of_its_stamp(
    lyric_set, generator, tmp_path, karaoke
):
    songset = with_style(load_set(lyric_set), karaoke=karaoke)
    frames = rendered_frames(songset, tmp_path / "frames", generator, start_s=0.5, end_s=1.6)
    timeline = Timeline.from_set(songset, duration=DURATION_S)
    sung = timeline.sung[0]
    layout = LyricLayout.make(
        songset.lines[0].text, size=SIZE, style=songset.lines[0].style, words=sung.words
    )
    first_frame = round(0.5 * FPS)
    lit = [red_pixels(frame, word_box(layout, 1)) > 5 for frame in frames]  # "line"
    stamp = sung.words[1].start  # 1.04 s
    first_lit = first_frame + lit.index(True)
    assert 0 <= first_lit / FPS - stamp < 1 / FPS  # the first frame at or after the stamp
    assert all(lit[first_lit - first_frame :])  # and it stays lit while the line is sung
    # "first" is sung from the line's stamp (filling from nothing at the stamp itself).
    assert red_pixels(frames[1], word_box(layout, 0)) > 5


def test_a_loop_shows_its_line_throughout_sung_by_its_own_word_times(
    lyric_set, generator, tmp_path
):
    songset = load_set(lyric_set)
    assert line_words(songset, 0) == (Word(0.0, "first"), Word(0.54, "line"), Word(0.94, ""))
    n = render_loop(
        songset,
        0,
        tmp_path / "loop",
        generator=generator,
        options=LoopOptions(seconds=1.0, progress=False),
    )
    frames = [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted((tmp_path / "loop").iterdir())
    ]
    assert len(frames) == n == 10
    lyric = loop_lyric(songset, 0, 0.0, seconds=1.0, words=line_words(songset, 0))
    layout = LyricLayout.make(lyric.text, size=SIZE, style=lyric.style, words=lyric.words)
    first, line = word_box(layout, 0), word_box(layout, 1)
    assert all(red_pixels(f, first) > 5 for f in frames[1:])  # sung from the clip's start
    # "line" is sung 0.54 s after the stamp: from frame 6 of the clip (at 0.6 s).
    assert [red_pixels(f, line) > 5 for f in frames] == [False] * 6 + [True] * 4


def test_a_bad_text_colour_stops_the_render_with_one_line_naming_the_key(tmp_path, capsys):
    root = write_set(tmp_path / "s", post={"text": True, "text_color": "reddish"})
    out = tmp_path / "video.mp4"
    assert main(["render", str(root), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[post] text_color" in err and "reddish" in err
    assert not out.exists()
