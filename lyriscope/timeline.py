"""The timeline: which lyric line is active at time t, and for how long, for the whole song.

The song [0, duration) is cut into segments at every line start and every instrumental gap
(an LRC stamp with no text). A segment shows one lyric line, or none (before the first line
and in gaps; the engine then keeps the previous line or shows [output] gap). The last
segment ends at the song's end.

Mapping a set's [[line]] entries to the LRC: [[line]] i starts at its `at` (seconds) when
given, else at the i-th lyric line (non-empty LRC line, in time order). So:
- the LRC may not have more lyric lines than set.toml has [[line]] entries (a lyric line
  without its model would be skipped silently);
- a [[line]] beyond the LRC's lyric lines needs `at`.
Both are SetErrors, and so are two lines starting at the same time, a line starting at the
same time as a gap, and a line starting at or after the song's end. Gaps at or after the end
(a closing stamp) are dropped: nothing would be shown after them.

The words on screen follow what is sung, not the pictures: a line's text is shown from its
stamp to the next stamp (a line's or a gap's), never in the intro, the gaps or the outro.
The last line, which no stamp ends, ends with its closing word stamp when the LRC has one,
else after as long as a typical line of the song (the median of the others) and at least
one second past its last word; `sung_at(t)` says which text is on screen.

Pure: a Timeline is an immutable table; `at(t)` and `at_frames(fps)` only look it up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lyriscope.errors import LyricsError, SetError, quoted
from lyriscope.lrc import Lyrics, Word, format_time, read_lrc

if TYPE_CHECKING:
    from lyriscope.setmodel import SongSet


@dataclass(frozen=True)
class Cue:
    """What the timeline says at time t."""

    line: int | None  # 0-based lyric line; None in a gap or before the first line
    start: float  # seconds; start of the current segment
    end: float  # seconds; the next boundary (the song's end for the last segment)
    t_into: float  # seconds since start
    t_left: float  # seconds until end
    previous_line: int | None  # the last line active before this segment; None if none yet


@dataclass(frozen=True)
class SungLine:
    """A lyric line while it is sung: its text belongs on screen from start to end."""

    line: int  # 0-based lyric line
    start: float  # seconds: its stamp
    end: float  # seconds: the next stamp, or where the last line's singing ends
    words: tuple[Word, ...] = ()  # enhanced LRC word times (absolute seconds); () without

    def word_index(self, t: float) -> int:
        """How many words have started by t (0 before the first one); -1 without word times."""
        if not self.words:
            return -1
        return sum(1 for w in self.words if w.start <= t)


DEFAULT_LINE_S = 5.0  # how long the last line is sung when the song has no other line to go by
MIN_TAIL_S = 1.0  # the last line stays at least this long after its last word starts


@dataclass(frozen=True)
class Timeline:
    """Segments of the song: boundaries[k]..boundaries[k+1] shows segment_lines[k] (-1: none)."""

    boundaries: tuple[float, ...]  # seconds, strictly increasing; first 0.0, last the duration
    segment_lines: tuple[int, ...]  # one per segment (len(boundaries) - 1); -1 for no line
    n_lines: int  # lyric lines (= the set's [[line]] entries)
    sung: tuple[SungLine, ...] = ()  # when each line's text is on screen, by start

    def __post_init__(self) -> None:
        if len(self.segment_lines) != len(self.boundaries) - 1:
            raise ValueError("a timeline needs one segment line per pair of boundaries")

    @property
    def duration(self) -> float:
        return self.boundaries[-1]

    @classmethod
    def from_lyrics(
        cls,
        lyrics: Lyrics,
        *,
        duration: float,
        line_starts_override: Mapping[int, float] | None = None,
        n_lines: int | None = None,
    ) -> Timeline:
        """Timeline of an LRC's lyric lines, the song being `duration` seconds long.

        line_starts_override: start (seconds) of some lines, by 0-based line, replacing the LRC's.
        n_lines: how many lines the song has (default: the LRC's lyric lines); lines beyond the
            LRC's need an override.
        """
        if not (math.isfinite(duration) and duration > 0):
            raise LyricsError(
                f"{lyrics.source}: the song's duration must be a positive number "
                f"of seconds, got {duration}"
            )
        lyric = lyrics.lyric_lines
        n = len(lyric) if n_lines is None else n_lines
        overrides = dict(line_starts_override or {})
        if len(lyric) > n:
            raise LyricsError(
                f"{lyrics.source}: has {len(lyric)} lyric lines but only {n} are "
                f"expected; line {n + 1} is {quoted(lyric[n].text)} (LRC line "
                f"{lyric[n].source_line})"
            )
        for i in overrides:
            if not 0 <= i < n:
                raise ValueError(f"line_starts_override: line {i} is not in 0..{n - 1}")
        events: list[tuple[float, int, str]] = []  # (start s, line or -1, where for messages)
        for i in range(n):
            if i in overrides:
                events.append(
                    (float(overrides[i]), i, f"line {i + 1} (start given as {overrides[i]})")
                )
            elif i < len(lyric):
                events.append(
                    (lyric[i].start, i, f"line {i + 1} (LRC line {lyric[i].source_line})")
                )
            else:
                raise LyricsError(
                    f"{lyrics.source}: line {i + 1} has no time: the LRC has only "
                    f"{len(lyric)} lyric lines and no start was given for it"
                )
        for gap in lyrics.gaps:
            if gap.start < duration:  # a closing stamp at the end shows nothing
                events.append(
                    (gap.start, -1, f"the instrumental gap of LRC line {gap.source_line}")
                )
        for start, _, where in events:
            if not (math.isfinite(start) and 0 <= start < duration):
                raise LyricsError(
                    f"{lyrics.source}: {where} starts at {start:.3f} s, outside the "
                    f"song (0 to {duration:.3f} s)"
                )
        events.sort(key=lambda e: e[0])
        for (t0, _, w0), (t1, _, w1) in zip(events, events[1:], strict=False):
            if t0 == t1:
                raise LyricsError(
                    f"{lyrics.source}: {w0} and {w1} both start at "
                    f"{format_time(t0)}; give each its own time"
                )
        boundaries = [0.0] if not events or events[0][0] > 0 else []
        segment_lines = [-1] if boundaries else []
        for start, line, _ in events:
            boundaries.append(start)
            segment_lines.append(line)
        boundaries.append(float(duration))
        words = {
            i: _words_at(lyric[i].words, lyric[i].start, start)
            for start, i, _ in events
            if 0 <= i < len(lyric)
        }
        return cls(
            boundaries=tuple(boundaries),
            segment_lines=tuple(segment_lines),
            n_lines=n,
            sung=_sung_lines(boundaries, segment_lines, words),
        )

    @classmethod
    def from_set(
        cls, songset: SongSet, *, duration: float, lyrics: Lyrics | None = None
    ) -> Timeline:
        """Timeline of a set: its LRC (read unless given) mapped onto its [[line]] entries."""
        if lyrics is None:
            lyrics = read_lrc(songset.song.lyrics)
        overrides = line_starts_override(songset, lyrics)
        try:
            return cls.from_lyrics(
                lyrics,
                duration=duration,
                line_starts_override=overrides,
                n_lines=len(songset.lines),
            )
        except LyricsError as exc:
            raise SetError(f"{songset.path}: {exc}") from None

    def at(self, t: float) -> Cue:
        """The cue at time t (seconds); t outside the song is clamped to [0, duration]."""
        if math.isnan(t):
            raise ValueError("t is NaN")
        t = min(max(t, 0.0), self.duration)
        k = self._segment(t)
        start, end = self.boundaries[k], self.boundaries[k + 1]
        line = self.segment_lines[k]
        previous = next((x for x in reversed(self.segment_lines[:k]) if x >= 0), -1)
        return Cue(
            line=None if line < 0 else line,
            start=start,
            end=end,
            t_into=t - start,
            t_left=end - t,
            previous_line=None if previous < 0 else previous,
        )

    def sung_at(self, t: float) -> SungLine | None:
        """The line whose text is on screen at t (seconds), None when nobody sings."""
        for sung in self.sung:
            if sung.start <= t < sung.end:
                return sung
        return None

    def lines_at(self, t: np.ndarray) -> np.ndarray:
        """Active line at each time. t: [N] seconds (clamped to the song) -> [N] int, -1: none."""
        t = np.clip(np.asarray(t, dtype=np.float64), 0.0, self.duration)
        k = np.searchsorted(np.asarray(self.boundaries[1:-1]), t, side="right")
        return np.asarray(self.segment_lines, dtype=np.int64)[k]

    def frame_count(self, fps: float) -> int:
        """Frames in a video of the song: round(duration * fps)."""
        return round(self.duration * fps)

    def at_frames(self, fps: float) -> np.ndarray:
        """Active line of every video frame k (at t = k / fps): [frame_count(fps)] int, -1: none."""
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be positive, got {fps}")
        return self.lines_at(np.arange(self.frame_count(fps)) / fps)

    def line_span(self, line: int) -> tuple[float, float]:
        """(start, end) seconds of a 0-based line's segment."""
        if not 0 <= line < self.n_lines:
            raise IndexError(f"line {line} is not in 0..{self.n_lines - 1}")
        k = self.segment_lines.index(line)
        return self.boundaries[k], self.boundaries[k + 1]

    def line_starts(self) -> tuple[float, ...]:
        """Start (seconds) of every line, by 0-based line."""
        return tuple(self.line_span(i)[0] for i in range(self.n_lines))

    def _segment(self, t: float) -> int:
        # The last boundary is the song's end, which belongs to the last segment.
        k = int(np.searchsorted(np.asarray(self.boundaries[1:-1]), t, side="right"))
        return k


def _words_at(words: tuple[Word, ...], lrc_start: float, start: float) -> tuple[Word, ...]:
    """A line's LRC word times moved with the line when set.toml gives it another start."""
    shift = start - lrc_start
    return tuple(Word(start=w.start + shift, text=w.text) for w in words) if shift else words


def _sung_lines(
    boundaries: list[float], segment_lines: list[int], words: Mapping[int, tuple[Word, ...]]
) -> tuple[SungLine, ...]:
    """Each line's text span: its segment, the last line's cut to where its singing ends."""
    spans = [
        (line, boundaries[k], boundaries[k + 1])
        for k, line in enumerate(segment_lines)
        if line >= 0
    ]
    if not spans:
        return ()
    line, start, end = spans[-1]
    if end == boundaries[-1]:  # no stamp ends the last line: the song's end is the outro's
        others = [e - s for _, s, e in spans[:-1]]
        typical = float(np.median(others)) if others else DEFAULT_LINE_S
        own = words.get(line, ())
        if own and not own[-1].text:  # a closing word stamp says when singing ends
            sung_end = own[-1].start
        else:
            sung_end = max(start + typical, (own[-1].start if own else start) + MIN_TAIL_S)
        spans[-1] = (line, start, min(end, max(sung_end, start + 1e-3)))
    return tuple(SungLine(line, s, e, words.get(line, ())) for line, s, e in spans)


def line_starts_override(songset: SongSet, lyrics: Lyrics) -> dict[int, float]:
    """The `at` of each [[line]] that has one, checking the set's lines against the LRC's.

    Raises SetError when the LRC has more lyric lines than set.toml has [[line]] entries, or
    when a [[line]] beyond the LRC's lyric lines has no `at`.
    """
    lyric = lyrics.lyric_lines
    n_set = len(songset.lines)
    lrc_name = songset.song.lyrics.name
    if len(lyric) > n_set:
        extra = lyric[n_set]
        raise SetError(
            f"{songset.path}: {lrc_name} has {len(lyric)} lyric lines but set.toml has "
            f"{n_set} [[line]] entries; LRC line {extra.source_line} ({quoted(extra.text)}) "
            f"has no [[line]]: add one per lyric line (line i of the LRC is [[line]] i)"
        )
    for line in songset.lines[len(lyric) :]:
        if line.at is None:
            raise SetError(
                f"{songset.path}: [[line]] {line.index + 1} ({quoted(line.text)}) has no time: "
                f"{lrc_name} has only {len(lyric)} lyric lines; give it `at = <seconds>` "
                f"or add its line to the LRC"
            )
    return {line.index: line.at for line in songset.lines if line.at is not None}
