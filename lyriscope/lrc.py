"""LRC lyrics: timed lines, metadata tags, [offset:] and enhanced word times, strictly read.

Accepted, one statement per physical line:
    [mm:ss.xx] text      hundredths; also [mm:ss.xxx] (ms), [mm:ss.x], [mm:ss] and [mm:ss:xx]
    [t1][t2]... text     several stamps: the same text at each time (a chorus sung twice)
    [key:value]          metadata (ar, ti, al, au, length, by, re, ve, ...); kept in `meta`
    [offset:+500]        ms; a positive offset makes every line appear that much sooner
    [t] <t1>w1 <t2>w2    enhanced word times: kept as `words`, removed from the text
    [t] w0 <t1>w1        words before the first word time start at the line's own time
    [t]                  no text: an instrumental gap (no lyric line is active)
    (blank)              ignored
Anything else (text without a stamp, a stamp that does not parse, a negative time, two lines
at the same time) raises LyricsError naming the file and line number: nothing is guessed.
Lines are sorted by time, so out-of-order stamps are fine. Text is stripped and runs of
whitespace fold into one space. Word times belong to a line's earliest stamp; its other
stamps (a repeated chorus) carry the words shifted along. UTF-8 (with or without BOM) and
CRLF / CR line ends are read; other encodings are refused with the line of the first bad byte.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from lyriscope.errors import LyricsError

MAX_LRC_BYTES = 2 * 1024 * 1024  # real LRC files are a few KB; a bigger one is the wrong file
MAX_MINUTES = 9999  # about a week; a bigger stamp is a typo or garbage

# A bracket whose content starts with a digit or a sign is a time stamp and must parse.
_TIME = re.compile(r"(\d{1,6}):([0-5]?\d)(?:([.:])(\d{1,3}))?")
_TAG = re.compile(r"\[([A-Za-z#][A-Za-z0-9_#-]*)[ \t]*:(.*)\][ \t]*")
_WORD = re.compile(r"<(\s*[+-]?\d[^<>]*)>")  # <...> starting with a digit: a word time
_OPEN_WORD = re.compile(r"<\s*[+-]?\d{1,6}:\d")  # looks like a word time but never closes
_OFFSET = re.compile(r"[+-]?\d{1,9}")
LINE_START = -1  # a word's time (ms) while it is "the line's own stamp"


@dataclass(frozen=True)
class Word:
    start: float  # seconds, offset applied, clamped at 0
    text: str  # "" for a closing stamp (the end of the last word)


@dataclass(frozen=True)
class LrcLine:
    start: float  # seconds, offset applied, clamped at 0
    text: str  # without stamps; "" is an instrumental gap
    words: tuple[Word, ...] = ()  # enhanced word times, if the line has them
    source_line: int = 0  # 1-based line number in the file

    @property
    def is_gap(self) -> bool:
        return not self.text


@dataclass(frozen=True)
class Lyrics:
    lines: tuple[LrcLine, ...]  # sorted by start; gaps included
    meta: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # lowercase keys
    offset_ms: int = 0  # the [offset:] tag, already applied to every start
    source: str = "<string>"  # file name for messages

    @property
    def lyric_lines(self) -> tuple[LrcLine, ...]:
        """The non-empty lines in time order: lyric line i of the song is lyric_lines[i]."""
        return tuple(line for line in self.lines if not line.is_gap)

    @property
    def gaps(self) -> tuple[LrcLine, ...]:
        """The empty-text stamps in time order: instrumental gaps."""
        return tuple(line for line in self.lines if line.is_gap)


def format_time(seconds: float) -> str:
    """Seconds as an LRC stamp body, mm:ss.xx (e.g. 83.5 -> '01:23.50')."""
    centis = round(seconds * 100)
    minutes, centis = divmod(centis, 6000)
    return f"{minutes:02d}:{centis // 100:02d}.{centis % 100:02d}"


def read_lrc(path: str | Path) -> Lyrics:
    """Read an LRC file: UTF-8 (BOM allowed), any line ends, at most MAX_LRC_BYTES."""
    p = Path(path)
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            raise LyricsError(f"{p}: is not a regular file (a pipe or device?); give an LRC file")
        size = info.st_size
        if size > MAX_LRC_BYTES:
            raise LyricsError(
                f"{p}: {size / 1e6:.1f} MB is too big for an LRC file (at most "
                f"{MAX_LRC_BYTES // 1024 // 1024} MiB); is this the right file?"
            )
        with open(p, "rb") as f:
            data = f.read(MAX_LRC_BYTES + 1)  # the file may grow between stat and read
    except FileNotFoundError:
        raise LyricsError(f"{p}: no such LRC file") from None
    except IsADirectoryError:
        raise LyricsError(f"{p}: is a folder, expected an LRC file") from None
    except PermissionError:
        raise LyricsError(f"{p}: cannot be read (permission denied)") from None
    if len(data) > MAX_LRC_BYTES:
        raise LyricsError(f"{p}: too big for an LRC file (more than {MAX_LRC_BYTES} bytes)")
    return parse_lrc(_decode(data, str(p)), source=str(p))


def parse_lrc(text: str, *, source: str = "<string>") -> Lyrics:
    """Parse LRC text (see the module docstring); `source` names the file in error messages."""
    if len(text) > MAX_LRC_BYTES:
        raise LyricsError(
            f"{source}: {len(text)} characters is too long for LRC text (at most "
            f"{MAX_LRC_BYTES}); is this the right file?"
        )
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise LyricsError(
            f"{source}: line {line}: contains NUL bytes; this is binary data, not LRC text"
        )
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")

    meta: dict[str, str] = {}
    meta_lines: dict[str, int] = {}
    stamped: list[tuple[int, int, str, tuple[tuple[int, str], ...]]] = []  # (ms, line, text, words)
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{source}: line {number}"
        tag = _TAG.fullmatch(line)
        if tag:
            key, value = tag.group(1).lower(), tag.group(2).strip()
            if key == "offset" and key in meta and meta[key] != value:
                raise LyricsError(
                    f"{where}: a second [offset:] ({value}) differs from the one on "
                    f"line {meta_lines[key]} ({meta[key]}); keep one"
                )
            meta[key], meta_lines[key] = value, number
            continue
        stamps, rest = _leading_stamps(line, where)
        words = _words(rest, where)
        body = _WORD.sub("", rest) if words else rest  # "fi<t>re" is one word sung in two
        body = " ".join(body.split())
        for ms in stamps:
            stamped.append((ms, number, body, words))

    offset_ms = _offset(meta.get("offset"), f"{source}: line {meta_lines.get('offset')}")
    lines = _timed_lines(stamped, offset_ms, source)
    return Lyrics(lines=lines, meta=MappingProxyType(meta), offset_ms=offset_ms, source=source)


# --- parts ---------------------------------------------------------------------------------


def _decode(data: bytes, source: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or _looks_utf16(data):
        raise LyricsError(f"{source}: is saved as UTF-16; save it as UTF-8")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise LyricsError(
            f"{source}: line {line}: contains NUL bytes; this is binary data, not LRC text"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LyricsError(
            f"{source}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; "
            f"save the file as UTF-8"
        ) from None


def _looks_utf16(data: bytes) -> bool:
    """Text saved as UTF-16 without a BOM: every other byte of its first ASCII text is NUL."""
    head = data[:200]
    even, odd = head[0::2], head[1::2]
    return len(head) >= 8 and (even.count(0) > 0.4 * len(even) or odd.count(0) > 0.4 * len(odd))


def _starts_like_time(content: str) -> bool:
    return bool(content) and (content[0].isdigit() or content[0] in "+-")


def _leading_stamps(line: str, where: str) -> tuple[list[int], str]:
    """The [time] stamps at the start of `line` (ms, before the offset) and the text after them."""
    stamps: list[int] = []
    pos = 0
    while pos < len(line) and line[pos] == "[":
        close = line.find("]", pos)
        content = line[pos + 1 : close] if close != -1 else line[pos + 1 :]
        if not _starts_like_time(content.strip()):
            break
        if close == -1:
            raise LyricsError(f"{where}: time stamp [{_clip(content)} has no closing ']'")
        stamps.append(_parse_time(content.strip(), where, "["))
        pos = close + 1
        while pos < len(line) and line[pos] in " \t":
            pos += 1
    if not stamps:
        if line.startswith("["):
            raise LyricsError(
                f"{where}: {_clip(line)!r} is neither a time stamp like [01:23.45] "
                f"nor a tag like [ar:Artist]"
            )
        raise LyricsError(
            f"{where}: text {_clip(line)!r} has no time stamp; expected [mm:ss.xx] before it"
        )
    return stamps, line[pos:]


def _parse_time(content: str, where: str, bracket: str) -> int:
    """'mm:ss.xx' (or .xxx, .x, :xx, none) as whole milliseconds."""
    close = "]" if bracket == "[" else ">"
    m = _TIME.fullmatch(content)
    if content.startswith("-"):
        raise LyricsError(
            f"{where}: time {bracket}{_clip(content)}{close} is negative; "
            f"times count from the start of the song"
        )
    if m is None:
        raise LyricsError(
            f"{where}: time stamp {bracket}{_clip(content)}{close} does not parse; "
            f"expected mm:ss.xx (seconds below 60), e.g. {bracket}01:23.45{close}"
        )
    minutes, seconds, sep, frac = m.groups()
    if int(minutes) > MAX_MINUTES:
        raise LyricsError(
            f"{where}: time {bracket}{content}{close} is {int(minutes)} minutes; "
            f"expected at most {MAX_MINUTES}"
        )
    if sep == ":" and len(frac) != 2:
        raise LyricsError(
            f"{where}: time stamp {bracket}{content}{close}: after mm:ss: expected "
            f"two digits of hundredths"
        )
    frac_ms = int(frac.ljust(3, "0")) if frac else 0
    return (int(minutes) * 60 + int(seconds)) * 1000 + frac_ms


def _words(rest: str, where: str) -> tuple[tuple[int, str], ...]:
    """Enhanced word times <mm:ss.xx> in `rest`: (ms before the offset, word text)."""
    parts = _WORD.split(rest)
    if len(parts) == 1:
        opened = _OPEN_WORD.search(rest)
        if opened:
            raise LyricsError(
                f"{where}: word time {_clip(rest[opened.start() :])!r} has no closing '>'"
            )
        return ()
    # Words before the first word time are sung from the line's own stamp (players agree);
    # LINE_START stands for that stamp until the line's time is known.
    lead = " ".join(parts[0].split())
    words: list[tuple[int, str]] = [(LINE_START, lead)] if lead else []
    for stamp, text in zip(parts[1::2], parts[2::2], strict=True):
        ms = _parse_time(stamp.strip(), where, "<")
        if words and words[-1][0] != LINE_START and ms < words[-1][0]:
            raise LyricsError(
                f"{where}: word time <{stamp}> is earlier than the word before it; "
                f"word times must not go back"
            )
        words.append((ms, " ".join(text.split())))
    return tuple(words)


def _offset(value: str | None, where: str) -> int:
    if value is None:
        return 0
    if not _OFFSET.fullmatch(value):
        raise LyricsError(
            f"{where}: [offset:{_clip(value)}] is not a whole number of "
            f"milliseconds; expected e.g. [offset:+250] or [offset:-100]"
        )
    return int(value)


def _timed_lines(
    stamped: list[tuple[int, int, str, tuple[tuple[int, str], ...]]], offset_ms: int, source: str
) -> tuple[LrcLine, ...]:
    # A positive offset makes lyrics appear sooner (the LRC convention).
    shifted = sorted(
        ((max(0, ms - offset_ms), ms, number, text, words) for ms, number, text, words in stamped),
        key=lambda e: (e[0], e[2]),
    )
    # Word times belong to the line's earliest stamp; its other stamps shift them along.
    first_ms: dict[int, int] = {}
    for ms, number, _, _ in stamped:
        first_ms[number] = min(ms, first_ms.get(number, ms))
    lines: list[LrcLine] = []
    for i, (ms, raw_ms, number, text, words) in enumerate(shifted):
        if i and shifted[i - 1][0] == ms:
            other = shifted[i - 1][2]
            clamp = " after the offset" if offset_ms else ""
            raise LyricsError(
                f"{source}: line {number}: starts at {format_time(ms / 1000)}{clamp}, "
                f"the same time as line {other}; give each line its own time"
            )
        words = tuple((first_ms[number] if w_ms == LINE_START else w_ms, w) for w_ms, w in words)
        early = next((w_ms for w_ms, _ in words if w_ms < first_ms[number]), None)
        if early is not None:
            which = "first word time" if early == words[0][0] else "word time"
            raise LyricsError(
                f"{source}: line {number}: {which} "
                f"<{format_time(early / 1000)}> is before the line's time "
                f"[{format_time(first_ms[number] / 1000)}]"
            )
        shift = raw_ms - first_ms[number] - offset_ms
        lines.append(
            LrcLine(
                start=ms / 1000,
                text=text,
                words=tuple(Word(start=max(0, w_ms + shift) / 1000, text=w) for w_ms, w in words),
                source_line=number,
            )
        )
    return tuple(lines)


def _clip(s: str, limit: int = 40) -> str:
    return s if len(s) <= limit else s[:limit] + "..."
