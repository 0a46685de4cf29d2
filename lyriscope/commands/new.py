"""Create a set folder from an audio file and an LRC: copies both in and writes set.toml.

The set.toml has [song], [output] and [walk] with every default written out and explained,
one [[line]] per lyric line of the LRC (text, queries = the text, tags, the model file it
will be trained into) and a [midi] example. An existing set is left alone unless --force,
which rewrites set.toml and the two copies but keeps everything else (models, data).

Atomic: a new set is built in a temporary folder beside it and renamed into place once it
loads; with --force the three files are written to temporary files first and renamed
together at the end. A failure (a full disk, Ctrl-C) leaves no half-made set.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path

from lyriscope.atomic import atomic_folder, atomic_path, remove_stale_parts
from lyriscope.audiofile import audio_duration
from lyriscope.errors import LyriscopeError, SetError
from lyriscope.lrc import Lyrics, format_time, parse_lrc, read_lrc
from lyriscope.lrclib import find_synced_lyrics
from lyriscope.params import OUTPUT_PARAMS, POST_PARAMS, TEXT_PARAMS, WALK_PARAMS, Param
from lyriscope.setmodel import (
    DEFAULT_TAGS,
    SET_FILE,
    Output,
    Post,
    TextStyle,
    WalkParams,
    default_seeds,
    load_set,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MODEL_PATH = "models/line-{number:02d}.safetensors"  # number is 1-based


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the set's folder name, e.g. initiation")
    parser.add_argument(
        "--audio",
        required=True,
        type=Path,
        metavar="FILE",
        help="the song: " + ", ".join(s[1:] for s in AUDIO_SUFFIXES),
    )
    lyrics = parser.add_mutually_exclusive_group(required=True)
    lyrics.add_argument("--lyrics", type=Path, metavar="FILE.lrc", help="the timed lyrics (LRC)")
    lyrics.add_argument(
        "--lrclib",
        metavar='"ARTIST - TITLE"',
        help="fetch the synced lyrics from LRCLIB (lrclib.net), matched to the audio's length",
    )
    parser.add_argument(
        "--sets-dir",
        type=Path,
        default=Path("sets"),
        metavar="DIR",
        help="where sets live (default: sets)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rewrite an existing set's set.toml, audio and lyrics (keeps models)",
    )


def run(args: argparse.Namespace) -> int:
    root = create_set(
        args.name,
        audio=args.audio,
        lyrics=args.lyrics,
        lrclib=args.lrclib,
        sets_dir=args.sets_dir,
        force=args.force,
    )
    print(f"created {root / 'set.toml'}; next: `lyriscope check {root}`")
    return 0


def create_set(
    name: str,
    *,
    audio: Path,
    lyrics: Path | None = None,  # an LRC file
    lrclib: str | None = None,  # or "Artist - Title" to fetch from LRCLIB
    sets_dir: Path = Path("sets"),
    force: bool = False,
) -> Path:
    """Make sets_dir/name with copies of `audio` and the lyrics and a set.toml; returns the folder.

    Everything is checked (and LRCLIB asked) before anything is written.
    """
    if not SET_NAME.fullmatch(name):
        raise LyriscopeError(
            f"set name {name!r}: expected letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit (it becomes a folder name)"
        )
    audio = Path(audio)
    if not audio.is_file():
        raise LyriscopeError(f"--audio {audio}: no such file")
    if audio.suffix.lower() not in AUDIO_SUFFIXES:
        raise LyriscopeError(f"--audio {audio}: expected a {', '.join(AUDIO_SUFFIXES)} file")
    if (lyrics is None) == (lrclib is None):
        raise LyriscopeError('give the lyrics as --lyrics FILE.lrc or --lrclib "Artist - Title"')
    fetched = None
    if lyrics is not None:
        lyrics = Path(lyrics)
        parsed = read_lrc(lyrics)
        title, artist = parsed.meta.get("ti") or name, parsed.meta.get("ar", "")
    else:
        match = find_synced_lyrics(lrclib, duration=audio_duration(audio))
        parsed = parse_lrc(match.synced, source=match.label)
        lyrics, fetched = Path(audio.stem + ".lrc"), match.synced
        title, artist = match.title or name, match.artist
    if not parsed.lyric_lines:
        raise LyriscopeError(
            f"{parsed.source}: has no lyric lines (only tags or gaps); a set "
            f"needs at least one timed line of text"
        )
    root = Path(sets_dir) / name
    if root.exists() and not force and (not root.is_dir() or any(root.iterdir())):
        raise SetError(
            f"{root}: already exists; pick another name or add --force to rewrite "
            f"its set.toml, audio and lyrics (models and data are kept)"
        )
    if root.exists() and not root.is_dir():
        raise SetError(f"{root}: exists and is not a folder")
    if audio.name == lyrics.name or SET_FILE in (audio.name, lyrics.name):
        raise LyriscopeError(
            f"--audio {audio.name!r} and --lyrics {lyrics.name!r}: the copies "
            f"need different names, other than {SET_FILE}"
        )

    toml = set_toml(
        parsed, audio_name=audio.name, lyrics_name=lyrics.name, title=title, artist=artist
    )
    # name in the set -> how to write it to a given path; set.toml last (see _rewrite_files)
    files: dict[str, Callable[[Path], None]] = {}
    for src in (audio, lyrics) if fetched is None else (audio,):
        if not (root / src.name).exists() or not (root / src.name).samefile(src):
            files[src.name] = _copy_of(src)  # else it is in the set folder already
    if fetched is not None:
        files[lyrics.name] = _text_of(fetched)
    files[SET_FILE] = _text_of(toml)
    remove_stale_parts(root)  # what a killed `new` of this set left
    if root.is_dir() and any(root.iterdir()):
        _rewrite_files(root, files)
    else:
        with atomic_folder(root) as tmp:
            for name, write in files.items():
                write(tmp / name)
            load_set(tmp)  # what we wrote must load; a failure here is a bug, not bad input
    return root


def _rewrite_files(root: Path, files: Mapping[str, Callable[[Path], None]]) -> None:
    """Write each file to a temporary beside it; rename them all only when all are written."""
    with contextlib.ExitStack() as renames:
        # ExitStack unwinds last-in first-out: set.toml, entered first, is renamed last, so
        # it never names copies that are not in place yet.
        for name in sorted(files, key=lambda n: n != SET_FILE):
            files[name](renames.enter_context(atomic_path(root / name)))
    load_set(root)  # what we wrote must load; a failure here is a bug, not bad input


def _copy_of(src: Path) -> Callable[[Path], None]:
    return lambda path: shutil.copyfile(src, path)


def _text_of(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


def set_toml(
    lyrics: Lyrics, *, audio_name: str, lyrics_name: str, title: str, artist: str = ""
) -> str:
    """The text of a new set.toml for `lyrics`, every default written out and explained."""
    out = [
        f"# lyriscope set {_str(title)}, written by `lyriscope new`.",
        "# Paths are relative to this folder. Validate with `lyriscope check <this folder>`.",
        "",
        "[song]",
        f"title = {_str(title)}",
        f"artist = {_str(artist)}",
        f"audio = {_str(audio_name)}",
        f"lyrics = {_str(lyrics_name)}  # line i of the LRC is [[line]] i unless `at` is given",
        "",
        "[output]",
    ]
    output = Output()
    out += [
        _keyed(f.name, getattr(output, f.name), _help(OUTPUT_PARAMS, f.name))
        for f in fields(Output)
        if f.name != "gap"
    ]
    out += [
        "# gap = 1  # line (1-based) shown in instrumental gaps; unset keeps the previous line",
        "",
        "[walk]  # defaults for every line; any [[line]] may override them",
    ]
    walk = WalkParams()
    out += [
        _keyed(f.name, getattr(walk, f.name), _help(WALK_PARAMS, f.name))
        for f in fields(WalkParams)
    ]
    post = Post()
    out += ["", "[post]  # the renderer's post chain; uncomment a key to change it"]
    out += [_keyed("text", True, "draw the lyric while it is sung")]
    out += [
        "# " + _keyed(f.name, getattr(post, f.name), _help(POST_PARAMS, f.name))
        for f in fields(Post)
        if f.name not in ("text", "style")
    ]
    out += ["# the lyric's look; any [[line]] may override these too"]
    out += [
        "# "
        + _keyed(f"text_{f.name}", _style_value(post.style, f.name), _help(TEXT_PARAMS, f.name))
        for f in fields(TextStyle)
    ]
    for i, line in enumerate(lyrics.lyric_lines):
        out += [
            "",
            f"[[line]]  # line {i + 1}, at {format_time(line.start)} (LRC line {line.source_line})",
            f"text = {_str(line.text)}",
            f"queries = [{_str(line.text)}]  # image searches; add synonyms",
            f"tags = [{', '.join(_str(t) for t in DEFAULT_TAGS)}]",
            f"model = {_str(MODEL_PATH.format(number=i + 1))}  # written by `lyriscope train`",
            f"# seeds = [{', '.join(str(s) for s in default_seeds(i, walk.seeds))}]"
            f"  # the loop's keyframes",
            f"# at = {line.start}  # start in seconds, instead of the LRC's",
        ]
    out += [
        "",
        "[midi]  # a controller; see `lyriscope devices` for port names",
        '# port = "nanoKONTROL"  # part of the port name; unset takes the first',
        "# channel = 1  # 1..16; unset listens to all",
        'cc = { 1 = "pulse", 2 = "motion", 7 = "truncation" }',
        'notes = { 36 = "line:next", 37 = "line:prev", 38 = "freeze" }',
        "",
    ]
    return "\n".join(out)


def _help(params: Mapping[str, Param], key: str) -> str | None:
    """What a key means (lyriscope.params), written beside its default."""
    param = params.get(key)
    return None if param is None else param.help


def _style_value(style: TextStyle, name: str) -> object:
    value = getattr(style, name)
    return "" if value is None else value  # font: "" is the bundled one


def _keyed(key: str, value: object, note: str | None) -> str:
    return f"{key} = {_value(value)}" + (f"  # {note}" if note else "")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _str(value)
    if hasattr(value, "__dataclass_fields__"):  # an inline table such as bands
        return (
            "{ "
            + ", ".join(f"{f.name} = {_value(getattr(value, f.name))}" for f in fields(value))
            + " }"
        )
    raise TypeError(f"no TOML form for {value!r}")


def _str(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
