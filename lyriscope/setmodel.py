"""The set: one song's folder described by sets/<name>/set.toml, loaded into frozen dataclasses.

Every key is checked: unknown keys, wrong types and missing files raise `SetError` with the
file, the key (and the [[line]] number) and what was expected. [walk] holds defaults that
each [[line]] may override; paths are resolved against the set folder.

Example:
    >>> s = load_set("sets/demo")
    >>> s.lines[0].walk.loop_seconds, s.output.fps
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lyriscope.atomic import write_text
from lyriscope.errors import SetError, quoted
from lyriscope.params import (
    CONTROLLABLE,
    OUTPUT_PARAMS,
    POST_PARAMS,
    TEXT_PARAMS,
    WALK_PARAMS,
    Param,
)

SET_FILE = "set.toml"
DEFAULT_TAGS: tuple[str, ...] = ("photography", "art", "painting")
BAND_NAMES: tuple[str, ...] = ("low", "mid", "high")
LAYER_GROUPS: tuple[str, ...] = ("coarse", "middle", "fine", "none")
NOISE_MODES: tuple[str, ...] = ("const", "random", "none")  # as NVlabs' noise_mode
TEXT_POSITIONS: tuple[str, ...] = ("bottom", "center", "top")
KARAOKE_MODES: tuple[str, ...] = ("fill", "words", "off")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
NOTE_ACTION = re.compile(
    r"^(line:(next|prev|[1-9]\d*)|freeze|blackout|flash)$"
)  # line:N is 1-based
_MIDI_NUMBER = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True)
class Song:
    title: str
    audio: Path  # absolute; wav/flac/mp3/ogg
    lyrics: Path  # absolute; LRC
    artist: str = ""
    model: Path | None = None  # the song's class-conditional model (c = line); None: none


@dataclass(frozen=True)
class Output:
    size: int = 1024  # output frame side in pixels (square)
    fps: float = 60.0  # video frames per second; frame k is at t = k / fps
    crf: int = 18  # H.264 constant rate factor (0 lossless .. 51 worst)
    gap: int | None = None  # line (0-based) shown in instrumental gaps; None keeps the previous


@dataclass(frozen=True)
class Bands:
    """Which layer group of w each frequency band pushes."""

    low: str = "coarse"
    mid: str = "middle"
    high: str = "fine"


@dataclass(frozen=True)
class WalkParams:
    loop_seconds: float = 15.0  # one closed loop through the line's seeds
    seeds: int = 9  # keyframes per loop when a line lists no seeds
    truncation: float = 0.7  # psi
    truncation_follow: float = 0.0  # psi added at full loudness
    pulse: float = 0.4  # onset -> push along the pulse direction
    motion: float = 0.5  # loudness -> walk speed
    bands: Bands = field(default_factory=Bands)
    band_depth: float = 0.3  # how far a band's energy pushes its layer group
    crossfade_s: float = 1.0  # blend time into this line at its boundary
    space: str = "z"  # "z": slerp between seeds' z; "w": lerp between their w
    noise: str = "const"  # per-pixel noise inputs: "const", "random" (flickers) or "none" (smooth)
    word_pulse: float = 0.0  # a sung word (enhanced LRC word time) pushes the walk this much


@dataclass(frozen=True)
class TextStyle:
    """How the lyric is drawn: [post] text_<name> keys, each overridable per [[line]].

    Sizes are fractions of the frame side, so a style looks the same at 256² and 1024².
    """

    font: Path | None = None  # a .ttf/.otf file (absolute); None: the bundled DejaVu Sans Bold
    size: float = 0.055  # letter height
    position: str = "bottom"  # "bottom", "center" or "top"
    margin: float = 0.07  # space to the frame's edge
    max_width: float = 0.86  # lines wider than this wrap
    color: str = "#ffffff"
    sung_color: str = "#ffd166"  # words already sung (enhanced LRC)
    karaoke: str = "fill"  # "fill": colour sweeps through each word; "words"; "off"
    outline: float = 0.08  # outline width, a fraction of the letter height
    outline_color: str = "#000000"
    shadow: float = 0.5  # drop shadow opacity
    fade_s: float = 0.25  # fade in at the stamp, out at the line's end


@dataclass(frozen=True)
class Post:
    """Parameters of the renderer's post chain (shaders/)."""

    brightness: float = 0.0  # added, in [-1, 1]
    contrast: float = 1.0  # multiplier around mid grey
    saturation: float = 1.0  # 0 grey .. 1 as is .. >1 vivid
    vignette: float = 0.25  # 0 none .. 1 strong
    trail: float = 0.0  # feedback trail amount, 0 none .. <1
    text: bool = False  # draw the active lyric line
    upscale: str = "lanczos"  # filter when the model is smaller than the output
    style: TextStyle = field(default_factory=TextStyle)  # the lyric's look (text_* keys)


@dataclass(frozen=True)
class Line:
    index: int  # 0-based; people see index + 1
    text: str
    queries: tuple[str, ...]
    tags: tuple[str, ...]
    model: Path | None  # absolute: its own model, else the song's conditional one; None: none yet
    seeds: tuple[int, ...]  # keyframe seeds of the loop
    walk: WalkParams
    at: float | None = None  # start time (s) overriding the LRC's
    # The class of this line in the song's conditional model (0-based, as NVlabs' --class);
    # None when the line has a model of its own.
    label: int | None = None
    # Where `collect` looks for this line's images: source names, "folder:DIR" or "urls:FILE"
    # (paths made absolute); () takes the command's sources.
    sources: tuple[str, ...] = ()
    style: TextStyle = field(default_factory=TextStyle)  # [post]'s text style + this line's


@dataclass(frozen=True)
class Midi:
    cc: Mapping[int, str] = field(default_factory=dict)  # CC number -> parameter
    notes: Mapping[int, str] = field(default_factory=dict)  # note number -> action
    port: str | None = None  # port name substring; None = first found
    channel: int | None = None  # 1..16; None = any


@dataclass(frozen=True)
class SongSet:
    root: Path  # the set folder (absolute)
    path: Path  # its set.toml
    song: Song
    output: Output
    walk: WalkParams  # the set-wide defaults
    post: Post
    lines: tuple[Line, ...]
    midi: Midi

    @property
    def name(self) -> str:
        return self.root.name


def set_file(path: str | Path) -> Path:
    """The set.toml of a set folder (or the file itself)."""
    p = Path(path)
    return p / SET_FILE if p.is_dir() or p.suffix != ".toml" else p


def load_set(path: str | Path, *, need_models: bool = False) -> SongSet:
    """Read and validate a set folder (or its set.toml).

    need_models: also require every line's model file to exist (render, live).
    """
    toml_path = set_file(path).resolve()
    if not toml_path.is_file():
        raise SetError(f"{toml_path}: no such set file; create one with `lyriscope new`")
    try:
        with open(toml_path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SetError(f"{toml_path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SetError(f"{toml_path}: its tables or arrays are nested too deeply") from None
    except UnicodeDecodeError:
        raise SetError(f"{toml_path}: not UTF-8 text") from None
    except OSError as exc:
        raise SetError(f"{toml_path}: cannot be read ({exc.strerror or exc})") from None
    return parse_set(data, root=toml_path.parent, source=toml_path, need_models=need_models)


def parse_set(
    data: Mapping[str, Any], *, root: Path, source: Path | str = SET_FILE, need_models: bool = False
) -> SongSet:
    """Build a SongSet from already-parsed TOML data (see `load_set`)."""
    root = Path(root).resolve()
    src = str(source)
    _no_unknown(data, {"song", "output", "walk", "post", "line", "midi"}, src, "")

    song_t = _table(data, "song", src, required=True)
    _no_unknown(song_t, {"title", "audio", "lyrics", "artist", "model"}, src, "[song] ")
    song_model = None
    if "model" in song_t:
        rel = _get(song_t, "model", str, src, "[song] ")
        song_model = _in_set(root, rel, src, "[song] model")
        if need_models and not song_model.is_file():
            raise SetError(
                f"{src}: [song] model: file {song_model} does not exist; train it with "
                f"`lyriscope train {root} --conditional`"
            )
    song = Song(
        title=_get(song_t, "title", str, src, "[song] ", required=True),
        audio=_file(
            root, _get(song_t, "audio", str, src, "[song] ", required=True), src, "[song] audio"
        ),
        lyrics=_file(
            root, _get(song_t, "lyrics", str, src, "[song] ", required=True), src, "[song] lyrics"
        ),
        artist=_get(song_t, "artist", str, src, "[song] ", default=""),
        model=song_model,
    )

    out_t = _table(data, "output", src)
    _no_unknown(out_t, {"size", "fps", "crf", "gap"}, src, "[output] ")
    gap = _get(out_t, "gap", int, src, "[output] ", default=None)
    output = Output(
        size=_get(
            out_t,
            "size",
            int,
            src,
            "[output] ",
            default=Output.size,
            check=_even_size,
        ),
        fps=float(
            _get(
                out_t,
                "fps",
                float,
                src,
                "[output] ",
                default=Output.fps,
                check=_ranged(OUTPUT_PARAMS["fps"]),
            )
        ),
        crf=_get(
            out_t,
            "crf",
            int,
            src,
            "[output] ",
            default=Output.crf,
            check=_ranged(OUTPUT_PARAMS["crf"]),
        ),
        gap=None if gap is None else gap - 1,
    )

    walk = _parse_walk(
        _table(data, "walk", src), WalkParams(), src, "[walk] ", allow_seed_list=False
    )
    post = _parse_post(_table(data, "post", src), root, src)

    raw_lines = data.get("line", [])
    if not isinstance(raw_lines, list) or not all(isinstance(x, dict) for x in raw_lines):
        raise SetError(f"{src}: 'line' must be an array of tables written [[line]]")
    if not raw_lines:
        raise SetError(f"{src}: no [[line]] entries; a set needs at least one lyric line")
    lines = tuple(
        _parse_line(i, t, walk, post.style, song.model, root, src, need_models=need_models)
        for i, t in enumerate(raw_lines)
    )
    if output.gap is not None and not 0 <= output.gap < len(lines):
        raise SetError(f"{src}: [output] gap: expected a line number 1..{len(lines)}, got {gap}")

    midi = _parse_midi(_table(data, "midi", src), src)
    for note, action in midi.notes.items():
        if action.startswith("line:") and action[5:].isdigit() and int(action[5:]) > len(lines):
            raise SetError(
                f"{src}: [midi] notes.{note}: {action!r} names a line the set does not "
                f"have; expected line:1..line:{len(lines)}"
            )
    return SongSet(
        root=root,
        path=Path(source) if isinstance(source, Path) else root / SET_FILE,
        song=song,
        output=output,
        walk=walk,
        post=post,
        lines=lines,
        midi=midi,
    )


def edit_set(path: str | Path, change: Callable[[Any], None]) -> SongSet:
    """Edit a set.toml in place, keeping the user's comments and layout; returns the new set.

    change(doc) edits the parsed document (a tomlkit TOMLDocument). The result is written atomically, only
    when it differs and still loads as a set; otherwise SetError names what broke and the
    file is left as it was. Every write to set.toml goes through here.

    Example:
        >>> edit_set("sets/demo", lambda doc: doc["walk"].update(pulse=0.8))
    """
    # Imported here: `import lyriscope` (every CLI start) loads this module, few runs write.
    import tomlkit

    toml_path = load_set(path).path  # the file must be a valid set before we touch it
    before = toml_path.read_text(encoding="utf-8")
    doc = tomlkit.parse(before)
    change(doc)
    after = tomlkit.dumps(doc)
    edited = parse_set(tomllib.loads(after), root=toml_path.parent, source=toml_path)
    if after != before:
        write_text(toml_path, after)
    return edited


def require_models(songset: SongSet, lines: Iterable[int]) -> None:
    """SetError for the first of `lines` (0-based) whose model file does not exist.

    For commands that show only some lines (preview, loops): load_set(need_models=True)
    asks for every line's model, these only for the ones they draw.
    """
    root, src = songset.root, songset.path
    for i in lines:
        line = songset.lines[i]
        where = f"[[line]] {i + 1} ({quoted(line.text)})"
        if line.model is None:
            raise SetError(
                f'{src}: {where} has no model; add model = "models/line-{i + 1:02d}.safetensors"'
            )
        if line.model.is_file():
            continue
        if line.label is not None:
            raise SetError(
                f"{src}: [song] model: file {line.model} does not exist (line {i + 1} is drawn "
                f"by it); train it with `lyriscope train {root} --conditional`"
            )
        raise SetError(
            f"{src}: {where} model: file {line.model} does not exist; train it with "
            f"`lyriscope train {root} --line {i + 1}`"
        )


def frame_side(size: int, *, where: str) -> int:
    """`size` once it is what [output] size may be (16..8192, even); `where` names its origin.

    For a --size flag: SetError "--size: expected ..., got 0" instead of a silent fallback.
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise SetError(f"{where}: expected a whole number of pixels, got {size!r}")
    problem = _even_size(size)
    if problem:
        raise SetError(f"{where}: expected {problem}, got {size}")
    return size


def default_seeds(line_index: int, count: int) -> tuple[int, ...]:
    """Seeds of a line that lists none: distinct per line, stable across runs."""
    return tuple(line_index * 1000 + k for k in range(count))


# --- parts ---------------------------------------------------------------------------------

_WALK_KEYS = {f.name for f in fields(WalkParams)}
# The walk's numbers: the parameters a knob can drive live.
_WALK_NUMBERS = tuple(k for k, p in WALK_PARAMS.items() if p.knob is not None)
_POST_KEYS = {f.name for f in fields(Post)} - {"style"}
_TEXT_KEYS = {f"text_{f.name}" for f in fields(TextStyle)}
_LINE_KEYS = (
    {"text", "queries", "tags", "model", "class", "at", "sources"} | _WALK_KEYS | _TEXT_KEYS
)


def _parse_walk(
    t: Mapping[str, Any],
    base: WalkParams,
    src: str,
    where: str,
    *,
    allow_seed_list: bool,
    extra: set[str] | None = None,
) -> WalkParams:
    if extra is None:
        _no_unknown(t, _WALK_KEYS, src, where)
    changes: dict[str, Any] = {}
    for key in _WALK_NUMBERS:
        if key in t:
            changes[key] = float(_get(t, key, float, src, where, check=_ranged(WALK_PARAMS[key])))
    if "seeds" in t and not (allow_seed_list and isinstance(t["seeds"], list)):
        changes["seeds"] = _get(t, "seeds", int, src, where, check=_ranged(WALK_PARAMS["seeds"]))
    if "space" in t:
        changes["space"] = _get(t, "space", str, src, where, check=_one_of(("z", "w")))
    if "noise" in t:
        changes["noise"] = _get(t, "noise", str, src, where, check=_one_of(NOISE_MODES))
    if "bands" in t:
        bands_t = t["bands"]
        if not isinstance(bands_t, dict):
            raise SetError(
                f"{src}: {where}bands: expected a table like "
                f'{{ low = "coarse", mid = "middle", high = "fine" }}'
            )
        _no_unknown(bands_t, set(BAND_NAMES), src, f"{where}bands.")
        cur = base.bands
        changes["bands"] = Bands(
            **{
                b: _get(
                    bands_t,
                    b,
                    str,
                    src,
                    f"{where}bands.",
                    default=getattr(cur, b),
                    check=_one_of(LAYER_GROUPS),
                )
                for b in BAND_NAMES
            }
        )
    return replace(base, **changes)


def _parse_post(t: Mapping[str, Any], root: Path, src: str) -> Post:
    where = "[post] "
    _no_unknown(t, _POST_KEYS | _TEXT_KEYS, src, where)
    d = Post()
    numbers = {
        key: float(_get(t, key, float, src, where, default=getattr(d, key), check=_ranged(param)))
        for key, param in POST_PARAMS.items()
        if param.knob is not None  # the post chain's numbers (the ones a knob can drive)
    }
    return Post(
        **numbers,
        text=_get(t, "text", bool, src, where, default=d.text),
        upscale=_get(
            t,
            "upscale",
            str,
            src,
            where,
            default=d.upscale,
            check=_one_of(("lanczos", "bicubic", "bilinear", "nearest")),
        ),
        style=_parse_text_style(t, TextStyle(), root, src, where),
    )


def _line_sources(t: Mapping[str, Any], root: Path, src: str, where: str) -> tuple[str, ...]:
    """A line's `sources`, its folder: and urls: paths made absolute against the set folder."""
    out = []
    for spec in _str_list(t, "sources", src, where, default=()):
        kind, sep, arg = spec.partition(":")
        if not spec.strip() or (sep and kind in ("folder", "urls") and not arg.strip()):
            raise SetError(
                f"{src}: {where}sources: {spec!r} is not a source; expected a name such as "
                f'"openverse", "folder:DIR" or "urls:FILE"'
            )
        if kind in ("folder", "urls"):
            spec = f"{kind}:{_in_set(root, arg, src, f'{where}sources')}"
        out.append(spec)
    return tuple(out)


def _parse_text_style(
    t: Mapping[str, Any], base: TextStyle, root: Path, src: str, where: str
) -> TextStyle:
    """base with the text_<name> keys of table t applied."""
    changes: dict[str, Any] = {}
    for f in fields(TextStyle):
        key = f"text_{f.name}"
        if key not in t:
            continue
        if f.name == "font":
            rel = _get(t, key, str, src, where)
            changes["font"] = _file(root, rel, src, f"{where}{key}") if rel else None
        elif f.name in ("position", "karaoke"):
            options = TEXT_POSITIONS if f.name == "position" else KARAOKE_MODES
            changes[f.name] = _get(t, key, str, src, where, check=_one_of(options))
        elif f.name.endswith("color"):
            changes[f.name] = _get(t, key, str, src, where, check=_color).lower()
        else:
            check = _ranged(TEXT_PARAMS[f.name])
            changes[f.name] = float(_get(t, key, float, src, where, check=check))
    return replace(base, **changes)


def _parse_line(
    i: int,
    t: Mapping[str, Any],
    walk: WalkParams,
    style: TextStyle,
    song_model: Path | None,
    root: Path,
    src: str,
    *,
    need_models: bool,
) -> Line:
    text_preview = t.get("text")
    where = (
        f"[[line]] {i + 1}"
        + (f" ({quoted(text_preview)})" if isinstance(text_preview, str) else "")
        + " "
    )
    _no_unknown(t, _LINE_KEYS, src, where)
    text = _get(t, "text", str, src, where, required=True)
    queries = _str_list(t, "queries", src, where, default=(text,))
    tags = _str_list(t, "tags", src, where, default=DEFAULT_TAGS)
    line_walk = _parse_walk(t, walk, src, where, allow_seed_list=True, extra=_LINE_KEYS)
    if isinstance(t.get("seeds"), list):
        seeds = t["seeds"]
        most = int(WALK_PARAMS["seeds"].hi)
        if not 2 <= len(seeds) <= most or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in seeds
        ):
            raise SetError(
                f"{src}: {where}seeds: expected a list of at least 2 (at most {most}) integer "
                f"seeds in 0..4294967295, got {_clip(repr(seeds))}"
            )
        seeds_t = tuple(seeds)
        line_walk = replace(line_walk, seeds=len(seeds_t))
    else:
        seeds_t = default_seeds(i, line_walk.seeds)
    model, label = None, None
    if "model" in t:
        rel = _get(t, "model", str, src, where)
        model = _in_set(root, rel, src, f"{where}model")
        if "class" in t:
            raise SetError(
                f"{src}: {where}class: only a line drawn by the song's conditional model "
                f"([song] model) has a class; this line has its own model"
            )
        if need_models and not model.is_file():
            raise SetError(
                f"{src}: {where}model: file {model} does not exist; train it with "
                f"`lyriscope train {root} --line {i + 1}`"
            )
    elif song_model is not None:
        model = song_model
        label = _get(t, "class", int, src, where, default=i, check=_at_least(0))
    elif "class" in t:
        raise SetError(
            f"{src}: {where}class: the set has no conditional model; add [song] model = "
            f'"models/song.safetensors" (see `lyriscope train --conditional`)'
        )
    elif need_models:
        raise SetError(
            f'{src}: {where}has no model; add model = "models/line-{i + 1:02d}.safetensors"'
        )
    at = None
    if "at" in t:
        at = float(_get(t, "at", float, src, where, check=_at_least(0)))
    return Line(
        index=i,
        text=text,
        queries=queries,
        tags=tags,
        model=model,
        seeds=seeds_t,
        walk=line_walk,
        at=at,
        label=label,
        sources=_line_sources(t, root, src, where),
        style=_parse_text_style(t, style, root, src, where),
    )


def _parse_midi(t: Mapping[str, Any], src: str) -> Midi:
    where = "[midi] "
    _no_unknown(t, {"cc", "notes", "port", "channel"}, src, where)

    def numbered(key: str, check_value: Callable[[str], bool], expected: str) -> dict[int, str]:
        table = t.get(key, {})
        if not isinstance(table, dict):
            raise SetError(f'{src}: {where}{key}: expected a table like {{ 1 = "pulse" }}')
        out: dict[int, str] = {}
        for k, v in table.items():
            if not (_MIDI_NUMBER.fullmatch(k) and 0 <= int(k) <= 127):
                raise SetError(f"{src}: {where}{key}.{k}: expected a MIDI number 0..127 as key")
            if not isinstance(v, str) or not check_value(v):
                raise SetError(f"{src}: {where}{key}.{k}: expected {expected}, got {v!r}")
            out[int(k)] = v
        return out

    return Midi(
        cc=numbered("cc", lambda v: v in CONTROLLABLE, "one of " + ", ".join(CONTROLLABLE)),
        notes=numbered(
            "notes",
            lambda v: bool(NOTE_ACTION.match(v)),
            "line:next, line:prev, line:N, freeze, blackout or flash",
        ),
        port=_get(t, "port", str, src, where, default=None),
        channel=_get(t, "channel", int, src, where, default=None, check=_in(1, 16)),
    )


# --- typed access --------------------------------------------------------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_MISSING = object()


def _get(
    t: Mapping[str, Any],
    key: str,
    typ: type,
    src: str,
    where: str,
    *,
    required: bool = False,
    default: Any = _MISSING,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    if key not in t:
        if required or default is _MISSING:
            raise SetError(f"{src}: {where}{key}: missing; expected {_TYPE_NAMES[typ]}")
        return default
    v = t[key]
    ok = isinstance(v, typ) and not (typ is not bool and isinstance(v, bool))
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        ok = True
    if typ is float and ok and not math.isfinite(v):
        ok = False
    if not ok:
        raise SetError(f"{src}: {where}{key}: expected {_TYPE_NAMES[typ]}, got {v!r}")
    if typ is str and not v.strip() and required:
        raise SetError(f"{src}: {where}{key}: must not be empty")
    if check is not None:
        problem = check(v)
        if problem:
            raise SetError(f"{src}: {where}{key}: expected {problem}, got {v!r}")
    return v


def _str_list(
    t: Mapping[str, Any], key: str, src: str, where: str, *, default: tuple[str, ...]
) -> tuple[str, ...]:
    if key not in t:
        return default
    v = t[key]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise SetError(f"{src}: {where}{key}: expected a list of strings, got {v!r}")
    return tuple(v)


def _table(
    data: Mapping[str, Any], key: str, src: str, *, required: bool = False
) -> Mapping[str, Any]:
    if key not in data:
        if required:
            raise SetError(f"{src}: [{key}]: missing table")
        return {}
    v = data[key]
    if not isinstance(v, dict):
        raise SetError(f"{src}: [{key}]: expected a table, got {v!r}")
    return v


def _no_unknown(t: Mapping[str, Any], allowed: set[str], src: str, where: str) -> None:
    unknown = sorted(set(t) - allowed)
    if unknown:
        raise SetError(
            f"{src}: {where}{unknown[0]}: unknown key; expected one of "
            + ", ".join(sorted(allowed))
        )


def _in_set(root: Path, rel: str, src: str, where: str) -> Path:
    """root / rel, refused when it leaves the set folder (absolute, or .. past the folder).

    A set.toml may come from someone else: the paths it names are read and written by
    collect, train and render, so they stay inside the set. Symlinks the user made inside
    the folder are followed (the check is on the path as written).
    """
    if not Path(os.path.normpath(root / rel)).is_relative_to(root):
        raise SetError(
            f"{src}: {where}: {rel!r} is outside the set folder; paths in set.toml stay "
            f"inside {root} (copy the file in)"
        )
    return (root / rel).resolve()


def _file(root: Path, rel: str, src: str, where: str) -> Path:
    p = _in_set(root, rel, src, where)
    if not p.is_file():
        raise SetError(f"{src}: {where}: file {p} does not exist")
    return p


def _in(lo: float, hi: float) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"a value in {lo}..{hi}"


def _even_size(value: int) -> str | None:
    problem = OUTPUT_PARAMS["size"].problem(value)
    return problem or (None if value % 2 == 0 else "an even number of pixels (H.264 needs one)")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _ranged(param: Param) -> Callable[[Any], str | None]:
    return param.problem


def _at_least(lo: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= lo else f"a value of at least {lo}"


def _color(value: str) -> str | None:
    return None if _COLOR.fullmatch(value) else 'a colour written "#rrggbb", e.g. "#ffd166"'


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else "one of " + ", ".join(repr(o) for o in options)
