"""Which words are on screen at a frame's time, and when words are sung, for every way of playing.

The words follow what is sung, not the pictures: a song's frame shows the line the timeline
says is sung at t (Timeline.sung_at), with its enhanced LRC word times, and nothing in the
intro, gaps or outro, whatever pictures are shown there. The render and the live show both
ask `song_lyric` with the song's time, so they show the same words at the same moment.

Without a song clock:
- a loop or preview of one line shows the line for the whole clip, sung by the line's own
  word times counted from its stamp (so a preview shows the style's karaoke as the render
  will), fading in at the clip's start and out at its end, so the clip still repeats
  without a seam;
- a live input (--audio-in) shows the line cued by hand, lit whole, from its cue on.

Example:
    >>> lyric = song_lyric(songset, timeline, t)  # None: nobody sings at t
    >>> renderer.render(image, lyric=lyric)
"""

from __future__ import annotations

import math

from lyriscope.engine.gl.lyric import Lyric
from lyriscope.lrc import Word, read_lrc
from lyriscope.setmodel import SongSet
from lyriscope.timeline import Timeline


def song_lyric(songset: SongSet, timeline: Timeline, t: float) -> Lyric | None:
    """The line sung at song time t (seconds) in its text and style; None when nobody sings."""
    sung = timeline.sung_at(t)
    if sung is None:
        return None
    line = songset.lines[sung.line]
    return Lyric(
        text=line.text, style=line.style, t=t, start=sung.start, end=sung.end, words=sung.words
    )


def word_times(timeline: Timeline) -> tuple[float, ...]:
    """When each sung word starts (seconds, sorted): the enhanced LRC's words, closing stamps left out."""
    return tuple(sorted(w.start for sung in timeline.sung for w in sung.words if w.text))


def line_words(songset: SongSet, line: int) -> tuple[Word, ...]:
    """A line's enhanced LRC word times counted from its own stamp; () when it has none."""
    lyric = read_lrc(songset.song.lyrics).lyric_lines
    if line >= len(lyric):  # a [[line]] placed by `at` alone
        return ()
    own = lyric[line]
    return tuple(Word(start=w.start - own.start, text=w.text) for w in own.words)


def loop_lyric(
    songset: SongSet,
    line: int,
    t: float,  # seconds into the clip
    *,
    seconds: float,  # the clip's length: it fades out towards here
    words: tuple[Word, ...] = (),  # line_words(songset, line)
) -> Lyric:
    """A line's words in its loop or preview clip: shown from 0 to `seconds`, sung from 0."""
    spec = songset.lines[line]
    return Lyric(text=spec.text, style=spec.style, t=t, start=0.0, end=seconds, words=words)


def cued_lyric(songset: SongSet, line: int, t: float, *, since: float) -> Lyric:
    """A line cued by hand at `since` (seconds on the show's clock), held until the next cue."""
    spec = songset.lines[line]
    return Lyric(text=spec.text, style=spec.style, t=t, start=since, end=math.inf)


__all__ = ["cued_lyric", "line_words", "loop_lyric", "song_lyric", "word_times"]
