"""The timeline: active line, time into it and to the next boundary, gaps, overrides, frames."""

from __future__ import annotations

import numpy as np
import pytest

from lyriscope.errors import LyricsError, SetError
from lyriscope.lrc import parse_lrc
from lyriscope.setmodel import parse_set
from lyriscope.timeline import Timeline, line_starts_override

# Intro gap 0..4, "A" 4..10, gap 10..12, "B" 12..20, "C" 20..end (30 s).
LRC = "[00:04.00]A\n[00:10.00]\n[00:12.00]B\n[00:20.00]C\n"


@pytest.fixture
def timeline() -> Timeline:
    return Timeline.from_lyrics(parse_lrc(LRC), duration=30.0)


@pytest.mark.parametrize(
    ("t", "line", "start", "end", "previous"),
    [
        (0.0, None, 0.0, 4.0, None),  # before the first line
        (3.999, None, 0.0, 4.0, None),
        (4.0, 0, 4.0, 10.0, None),  # a boundary belongs to the segment it starts
        (9.0, 0, 4.0, 10.0, None),
        (10.5, None, 10.0, 12.0, 0),  # instrumental gap: no line, the engine may keep line 0
        (12.0, 1, 12.0, 20.0, 0),
        (25.0, 2, 20.0, 30.0, 1),  # the last line ends at the song's end
        (30.0, 2, 20.0, 30.0, 1),
    ],
)
def test_at_gives_line_and_times(timeline, t, line, start, end, previous):
    cue = timeline.at(t)
    assert (cue.line, cue.start, cue.end, cue.previous_line) == (line, start, end, previous)
    assert cue.t_into == pytest.approx(t - start)
    assert cue.t_left == pytest.approx(end - t)


def test_t_outside_the_song_is_clamped(timeline):
    assert timeline.at(-5.0).t_into == 0.0
    assert timeline.at(99.0).line == 2
    assert timeline.at(99.0).t_left == 0.0
    with pytest.raises(ValueError, match="NaN"):
        timeline.at(float("nan"))


def test_boundaries_spans_and_counts(timeline):
    assert timeline.boundaries == (0.0, 4.0, 10.0, 12.0, 20.0, 30.0)
    assert timeline.n_lines == 3
    assert timeline.duration == 30.0
    assert [timeline.line_span(i) for i in range(3)] == [(4.0, 10.0), (12.0, 20.0), (20.0, 30.0)]
    with pytest.raises(IndexError):
        timeline.line_span(3)


def test_at_frames_matches_at_for_every_frame(timeline):
    fps = 24.0
    frames = timeline.at_frames(fps)
    assert frames.shape == (round(30.0 * fps),)
    expected = [
        -1 if (c := timeline.at(k / fps)).line is None else c.line for k in range(len(frames))
    ]
    assert frames.tolist() == expected
    assert frames[int(4.0 * fps)] == 0 and frames[int(4.0 * fps) - 1] == -1


def test_a_line_at_zero_has_no_leading_gap():
    tl = Timeline.from_lyrics(parse_lrc("[00:00.00]First\n[00:02.00]Second"), duration=5.0)
    assert tl.boundaries == (0.0, 2.0, 5.0)
    assert tl.at(0.0).line == 0


def test_closing_stamp_at_or_after_the_end_is_dropped():
    tl = Timeline.from_lyrics(parse_lrc("[00:01.00]A\n[00:05.00]\n[00:09.00]"), duration=5.0)
    assert tl.boundaries == (0.0, 1.0, 5.0)


def test_overrides_replace_lrc_starts_and_may_add_lines():
    lyrics = parse_lrc("[00:01.00]A\n[00:03.00]B")
    tl = Timeline.from_lyrics(
        lyrics, duration=10.0, line_starts_override={1: 4.5, 2: 7.0}, n_lines=3
    )
    assert tl.line_starts() == (1.0, 4.5, 7.0)
    assert tl.at(4.0).line == 0


@pytest.mark.parametrize(
    ("lrc", "kwargs", "message"),
    [
        (
            "[00:01.00]A\n[00:40.00]B",
            {},
            r"line 2 \(LRC line 2\) starts at 40\.000 s, outside the song",
        ),
        (
            "[00:01.00]A\n[00:03.00]B",
            {"line_starts_override": {1: 1.0}},
            r"line 1 \(LRC line 1\) and line 2 \(start given as 1\.0\) both start at 00:01\.00",
        ),
        (
            "[00:01.00]A\n[00:02.00]\n",
            {"line_starts_override": {0: 2.0}},
            r"instrumental gap of LRC line 2",
        ),
        ("[00:01.00]A\n[00:03.00]B", {"n_lines": 1}, r"has 2 lyric lines but only 1 are expected"),
        ("[00:01.00]A", {"n_lines": 2}, r"line 2 has no time"),
        ("[00:01.00]A", {"duration": 0.0}, r"duration must be a positive number"),
        ("[00:01.00]A", {"duration": float("inf")}, r"duration must be a positive number"),
    ],
)
def test_inconsistent_timings_are_errors(lrc, kwargs, message):
    kwargs = {"duration": 30.0, **kwargs}
    with pytest.raises(LyricsError, match=rf"^song\.lrc: .*{message}"):
        Timeline.from_lyrics(parse_lrc(lrc, source="song.lrc"), **kwargs)


def _songset(tmp_path, lines: list[dict]):
    (tmp_path / "song.wav").write_bytes(b"")
    (tmp_path / "song.lrc").write_text("[00:01.00]A\n[00:05.00]\n[00:06.00]B\n", encoding="utf-8")
    data = {"song": {"title": "T", "audio": "song.wav", "lyrics": "song.lrc"}, "line": lines}
    return parse_set(data, root=tmp_path, source=tmp_path / "set.toml")


def test_from_set_maps_line_i_to_lyric_line_i_unless_at_is_given(tmp_path):
    songset = _songset(
        tmp_path, [{"text": "A"}, {"text": "B", "at": 8.0}, {"text": "C", "at": 9.5}]
    )
    tl = Timeline.from_set(songset, duration=12.0)
    assert tl.line_starts() == (1.0, 8.0, 9.5)
    assert tl.at(5.5).line is None  # the LRC's gap still holds
    assert tl.at(6.5).line is None  # the gap lasts until line 2's own start now


def test_from_set_refuses_more_lrc_lines_than_set_lines(tmp_path):
    songset = _songset(tmp_path, [{"text": "A"}])
    with pytest.raises(
        SetError,
        match=r"set\.toml: song\.lrc has 2 lyric lines but set\.toml has 1 "
        r"\[\[line\]\] entries; LRC line 3 \('B'\) has no \[\[line\]\]",
    ):
        Timeline.from_set(songset, duration=12.0)


def test_from_set_refuses_an_extra_line_without_at(tmp_path):
    songset = _songset(tmp_path, [{"text": "A"}, {"text": "B"}, {"text": "C"}])
    with pytest.raises(SetError, match=r"\[\[line\]\] 3 \('C'\) has no time.*give it `at"):
        Timeline.from_set(songset, duration=12.0)


def test_line_starts_override_lists_the_at_values(tmp_path):
    songset = _songset(
        tmp_path, [{"text": "A", "at": 0.5}, {"text": "B"}, {"text": "C", "at": 9.0}]
    )
    assert line_starts_override(songset, parse_lrc((tmp_path / "song.lrc").read_text())) == {
        0: 0.5,
        2: 9.0,
    }


def test_from_set_names_set_toml_when_a_line_falls_after_the_end(tmp_path):
    songset = _songset(tmp_path, [{"text": "A"}, {"text": "B", "at": 50.0}])
    with pytest.raises(
        SetError,
        match=r"set\.toml: .*line 2 \(start given as 50\.0\) starts at "
        r"50\.000 s, outside the song",
    ):
        Timeline.from_set(songset, duration=12.0)


def test_lines_at_is_vectorised(timeline):
    t = np.array([-1.0, 4.0, 10.0, 11.9, 12.0, 31.0])
    assert timeline.lines_at(t).tolist() == [-1, 0, -1, -1, 1, 2]


@pytest.mark.parametrize(
    ("t", "line"),
    [
        (0.0, None),  # intro: pictures, no words
        (4.0, 0),
        (9.99, 0),
        (10.5, None),  # the gap's stamp ends line 0's text
        (12.0, 1),
        (20.0, 2),
        (26.99, 2),  # the last line lasts a typical line: the median of 6 s and 8 s
        (27.0, None),  # outro: nobody sings
        (29.9, None),
    ],
)
def test_text_is_on_screen_only_while_sung(timeline, t, line):
    sung = timeline.sung_at(t)
    assert (None if sung is None else sung.line) == line


def test_the_last_line_ends_with_its_closing_word_stamp_or_after_its_last_word():
    closing = "[00:01.00]A\n[00:05.00]<00:05.00>B <00:06.00>C <00:06.50>\n"
    tl = Timeline.from_lyrics(parse_lrc(closing), duration=60.0)
    assert tl.sung[-1].end == pytest.approx(6.5)
    late_words = "[00:01.00]A\n[00:03.00]<00:03.00>slow <00:09.00>words\n"
    tl = Timeline.from_lyrics(parse_lrc(late_words), duration=60.0)
    assert tl.sung[-1].end == pytest.approx(10.0)  # one second past its last word, not 2 s
    one = Timeline.from_lyrics(parse_lrc("[00:01.00]alone\n"), duration=3.0)
    assert (one.sung[0].start, one.sung[0].end) == (1.0, 3.0)  # no later than the song's end


def test_word_times_move_with_a_line_whose_start_set_toml_gives():
    lyrics = parse_lrc("[00:01.00]<00:01.00>a <00:01.50>b\n[00:04.00]c\n")
    tl = Timeline.from_lyrics(lyrics, duration=10.0, line_starts_override={0: 2.0})
    assert [w.start for w in tl.sung[0].words] == pytest.approx([2.0, 2.5])
    assert tl.sung[0].word_index(2.4) == 1 and tl.sung[0].word_index(1.9) == 0
    assert tl.sung[1].word_index(5.0) == -1  # no word times: the line is shown whole
