"""Validate a set: set.toml, audio, lyrics, line mapping and models; print a short report.

Hard problems (a bad set.toml, a missing or undecodable audio file, a malformed LRC, a line
count that does not match, a model of the wrong shape, a [song] model that is not
conditional or lacks a line's class) stop the check with one sentence (exit 2). Softer ones
(a model not trained yet, a [[line]] text that differs from its LRC line, a line shorter
than its crossfade) are listed as warnings (exit 0).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lyriscope.audiofile import AudioInfo, audio_info
from lyriscope.errors import AudioError, CheckpointError, LyriscopeError, SetError, quoted
from lyriscope.lrc import Lyrics, format_time, read_lrc
from lyriscope.setmodel import SongSet, load_set
from lyriscope.timeline import Timeline, line_starts_override
from lyriscope.track_mix import surround_name, track_channels


@dataclass(frozen=True)
class ModelStatus:
    line: int  # 0-based
    path: Path | None  # None: the [[line]] names no model
    found: bool
    resolution: int | None  # img_resolution from the model's config; None if not read
    label: int | None = None  # the line's class in the song's conditional model; None: own model


@dataclass(frozen=True)
class SongModelStatus:
    """The song's conditional model ([song] model), checked once for all its lines."""

    path: Path
    found: bool
    resolution: int | None = None  # None if not read
    classes: int | None = None  # c_dim; None if not read


@dataclass(frozen=True)
class SetReport:
    songset: SongSet
    lyrics: Lyrics
    duration: float  # seconds of audio
    line_starts: tuple[float, ...]  # seconds, by 0-based line
    models: tuple[ModelStatus, ...]
    warnings: tuple[str, ...]
    song_model: SongModelStatus | None = None  # None: the set names no [song] model
    channels: int = 2  # of the audio file; 5.1 and 7.1 are mixed down to stereo in videos

    def text(self) -> str:
        """The report as printed by `lyriscope check`."""
        s = self.songset
        title = s.song.title + (f" - {s.song.artist}" if s.song.artist else "")
        audio = (
            f"{_rel(s.song.audio, s.root)}, {format_time(self.duration)} ({self.duration:.3f} s)"
        )
        if surround_name(self.channels):
            audio += f", {surround_name(self.channels)} (stereo mix-down in videos)"
        out = [
            f"set       {s.root}",
            f"title     {title}",
            f"audio     {audio}",
            f"lyrics    {_rel(s.song.lyrics, s.root)}, {len(self.lyrics.lyric_lines)} lyric lines, "
            f"{len(self.lyrics.gaps)} instrumental gaps",
        ]
        if self.song_model is not None:
            out.append(f"song      {_song_model_note(self.song_model, s.root)}")
        out.append(f"lines     {len(s.lines)}")
        width = min(40, max(len(line.text) for line in s.lines))
        for line, start, model in zip(s.lines, self.line_starts, self.models, strict=True):
            text = line.text if len(line.text) <= width else line.text[: width - 3] + "..."
            out.append(
                f"  {line.index + 1:3d}  {format_time(start)}  {text:<{width}}  "
                f"{_model_note(model, s.root)}"
            )
        found = sum(m.found for m in self.models)
        out.append(f"models    {found} of {len(self.models)} found")
        if self.warnings:
            out.append("warnings")
            out += [f"  - {w}" for w in self.warnings]
        n = len(self.warnings)
        out.append("ok" if not n else f"ok, with {n} warning{'s' if n > 1 else ''}")
        return "\n".join(out)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", metavar="SET", type=Path, help="a set folder or its set.toml")
    parser.add_argument(
        "--need-models",
        action="store_true",
        help="a line without its model file is an error (use before render/live)",
    )


def run(args: argparse.Namespace) -> int:
    print(check_set(args.set, need_models=args.need_models).text())
    return 0


def check_set(path: str | Path, *, need_models: bool = False) -> SetReport:
    """Check a set folder; raises a LyriscopeError on the first hard problem."""
    songset = load_set(path)
    lyrics = read_lrc(songset.song.lyrics)
    warnings: list[str] = []
    song = _audio_info(songset.song.audio)
    duration = song.duration
    overrides = line_starts_override(songset, lyrics)
    timeline = Timeline.from_set(songset, lyrics=lyrics, duration=duration)
    starts = timeline.line_starts()
    warnings += _text_warnings(songset, lyrics, overrides)
    warnings += _order_warnings(starts)
    warnings += _short_line_warnings(songset, timeline)
    models, song_model = _check_models(songset, warnings, need_models=need_models)
    return SetReport(
        songset=songset,
        lyrics=lyrics,
        duration=duration,
        line_starts=starts,
        models=models,
        warnings=tuple(warnings),
        song_model=song_model,
        channels=song.channels,
    )


# --- parts ---------------------------------------------------------------------------------


def _audio_info(path: Path) -> AudioInfo:
    try:
        info = audio_info(path)
    except LyriscopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
        raise AudioError(
            f"{path}: cannot be decoded ({type(exc).__name__}: {exc}); "
            f"expected a wav, flac, mp3 or ogg file"
        ) from None
    if not info.duration > 0:
        raise AudioError(f"{path}: has no audio (duration {info.duration} s)")
    track_channels(info.channels, source=path)  # what render does with them
    return info


def _check_models(
    songset: SongSet, warnings: list[str], *, need_models: bool
) -> tuple[tuple[ModelStatus, ...], SongModelStatus | None]:
    paths = [line.model for line in songset.lines] + [songset.song.model]
    any_found = any(path is not None and path.is_file() for path in paths)
    read_model_config = _model_checker() if any_found else None  # imports torch: only if needed
    song = _check_song_model(songset, read_model_config, need_models=need_models)
    statuses: list[ModelStatus] = []
    missing: list[str] = []
    for line in songset.lines:
        where = f"{songset.path}: [[line]] {line.index + 1}"
        if line.label is not None:  # drawn by the song's model, checked once above
            statuses.append(
                ModelStatus(
                    line.index,
                    line.model,
                    found=song is not None and song.found,
                    resolution=None if song is None else song.resolution,
                    label=line.label,
                )
            )
            continue
        if line.model is None or not line.model.is_file():
            if need_models:
                what = f"model file {line.model} does not exist" if line.model else "has no model"
                raise SetError(
                    f"{where} ({quoted(line.text)}): {what}; train it with "
                    f"`lyriscope train {songset.root} --line {line.index + 1}`"
                )
            missing.append(str(line.index + 1))
            statuses.append(ModelStatus(line.index, line.model, found=False, resolution=None))
            continue
        resolution = None
        if read_model_config is not None:
            resolution = _model_resolution(read_model_config, line.model, line.index)
        statuses.append(ModelStatus(line.index, line.model, found=True, resolution=resolution))
    if song is not None:
        _check_classes(songset, song)
    warnings += _upscale_warnings(statuses, size=songset.output.size)
    if missing:
        warnings.append(
            f"no model yet for line{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; train with `lyriscope train {songset.root}`"
        )
    on_song = [str(s.line + 1) for s in statuses if s.label is not None]
    if song is not None and not song.found and on_song:
        warnings.append(
            f"no song model yet ({_rel(song.path, songset.root)}) for line"
            f"{'s' if len(on_song) > 1 else ''} {', '.join(on_song)}; train it with "
            f"`lyriscope train {songset.root} --conditional`"
        )
    return tuple(statuses), song


def _check_song_model(
    songset: SongSet, read_model_config: Callable[[Path], dict] | None, *, need_models: bool
) -> SongModelStatus | None:
    """The [song] model's file, resolution and class count; a model without classes is an error."""
    path = songset.song.model
    if path is None:
        return None
    if not path.is_file():
        if need_models and any(line.label is not None for line in songset.lines):
            raise SetError(
                f"{songset.path}: [song] model: file {path} does not exist; train it with "
                f"`lyriscope train {songset.root} --conditional`"
            )
        return SongModelStatus(path=path, found=False)
    if read_model_config is None:
        return SongModelStatus(path=path, found=True)
    config = _model_config(read_model_config, path)
    resolution = _resolution_of(config, path, where="[song] model")
    classes = config.get("c_dim")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes <= 0:
        raise CheckpointError(
            f"{songset.path}: [song] model {_rel(path, songset.root)} is not class-conditional "
            f"(c_dim {classes!r}); train the song's model with `lyriscope train "
            f"{songset.root} --conditional`, or give each line its own model"
        )
    return SongModelStatus(path=path, found=True, resolution=resolution, classes=classes)


def _check_classes(songset: SongSet, song: SongModelStatus) -> None:
    """Every line drawn by the song's model has a class the model has."""
    if song.classes is None:
        return
    for line in songset.lines:
        if line.label is not None and line.label >= song.classes:
            raise SetError(
                f"{songset.path}: [[line]] {line.index + 1} ({quoted(line.text)}): class "
                f"{line.label}, but [song] model {_rel(song.path, songset.root)} has classes 0 "
                f"to {song.classes - 1}; set the line's class, give it its own model, or train "
                f"the song's model on every line"
            )


def _upscale_warnings(statuses: list[ModelStatus], *, size: int) -> list[str]:
    """One warning per model size smaller than the output, naming all its lines."""
    by_resolution: dict[int, list[str]] = {}
    for s in statuses:
        if s.resolution is not None and s.resolution < size:
            by_resolution.setdefault(s.resolution, []).append(str(s.line + 1))
    return [
        f"line{'s' if len(lines) > 1 else ''} {', '.join(lines)}: "
        f"{'their models are' if len(lines) > 1 else 'its model is'} {res}x{res}, "
        f"upscaled to the output's {size}"
        for res, lines in sorted(by_resolution.items())
    ]


def _model_checker() -> Callable[[Path], dict]:
    # Imported here: the core imports no package at module level (dependencies point from
    # trainers to the core), and torch loads only when there is a model to read. The check
    # reads each model's header: its config within limits and making the header's tensors.
    from lyriscope.trainers.checkpoint import check_model_file

    return check_model_file


def _model_resolution(read_model_config, path: Path, line: int) -> int:
    return _resolution_of(_model_config(read_model_config, path), path, where=f"line {line + 1}")


def _model_config(read_model_config, path: Path) -> dict:
    try:
        config = read_model_config(path)
    except LyriscopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable model is the user's file problem
        raise CheckpointError(
            f"{path}: cannot be read as a model ({type(exc).__name__}: "
            f"{exc}); expected a .safetensors file written by lyriscope"
        ) from None
    return config if isinstance(config, dict) else {}


def _resolution_of(config: dict, path: Path, *, where: str) -> int:
    res = config.get("img_resolution")
    if not (
        isinstance(res, int) and not isinstance(res, bool) and res >= 4 and res & (res - 1) == 0
    ):
        raise CheckpointError(
            f"{path} ({where}): img_resolution is {res!r}; "
            f"expected a power of two such as 256 or 1024"
        )
    return res


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.casefold()).split())


def _text_warnings(songset: SongSet, lyrics: Lyrics, overrides: dict[int, float]) -> list[str]:
    out = []
    for line, lrc in zip(songset.lines, lyrics.lyric_lines, strict=False):
        if line.index not in overrides and _normal(line.text) != _normal(lrc.text):
            out.append(
                f"line {line.index + 1}: set.toml text {quoted(line.text)} differs from LRC line "
                f"{lrc.source_line} {quoted(lrc.text)}; it still takes that line's time"
            )
    return out


def _order_warnings(starts: tuple[float, ...]) -> list[str]:
    return [
        f"line {i + 2} starts at {format_time(b)}, before line {i + 1} at {format_time(a)}; "
        f"line:next follows the set.toml order"
        for i, (a, b) in enumerate(zip(starts, starts[1:], strict=False))
        if b < a
    ]


def _short_line_warnings(songset: SongSet, timeline: Timeline) -> list[str]:
    out = []
    for line in songset.lines:
        start, end = timeline.line_span(line.index)
        if end - start < line.walk.crossfade_s:
            out.append(
                f"line {line.index + 1} lasts {end - start:.2f} s, less than its "
                f"crossfade_s = {line.walk.crossfade_s}"
            )
    return out


def _model_note(model: ModelStatus, root: Path) -> str:
    if model.label is not None:
        return f"song model, class {model.label}"
    if model.path is None:
        return "no model"
    if not model.found:
        return f"missing {_rel(model.path, root)}"
    return f"{model.resolution}x{model.resolution}" if model.resolution else "found"


def _song_model_note(song: SongModelStatus, root: Path) -> str:
    if not song.found:
        return f"missing {_rel(song.path, root)}"
    size = f", {song.resolution}x{song.resolution}" if song.resolution else ""
    classes = f", {song.classes} classes" if song.classes else ""
    return f"{_rel(song.path, root)}{size}{classes}"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
