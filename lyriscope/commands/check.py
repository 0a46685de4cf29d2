"""Validate a set: set.toml, audio, lyrics, line mapping and models; print a short report.

Hard problems (a bad set.toml, a missing or undecodable audio file, a malformed LRC, a line
count that does not match, a model of the wrong shape) stop the check with one sentence
(exit 2). Softer ones (a model not trained yet, a [[line]] text that differs from its LRC
line, a line shorter than its crossfade) are listed as warnings (exit 0).
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


@dataclass(frozen=True)
class SetReport:
    songset: SongSet
    lyrics: Lyrics
    duration: float  # seconds of audio
    line_starts: tuple[float, ...]  # seconds, by 0-based line
    models: tuple[ModelStatus, ...]
    warnings: tuple[str, ...]
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
            f"lines     {len(s.lines)}",
        ]
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
    models = _check_models(songset, warnings, need_models=need_models)
    return SetReport(
        songset=songset,
        lyrics=lyrics,
        duration=duration,
        line_starts=starts,
        models=models,
        warnings=tuple(warnings),
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
) -> tuple[ModelStatus, ...]:
    any_found = any(line.model is not None and line.model.is_file() for line in songset.lines)
    check_model_file = _model_checker() if any_found else None  # imports torch: only if needed
    statuses: list[ModelStatus] = []
    missing: list[str] = []
    for line in songset.lines:
        where = f"{songset.path}: [[line]] {line.index + 1}"
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
        if check_model_file is not None:
            resolution = _model_resolution(check_model_file, line.model, line.index)
        statuses.append(ModelStatus(line.index, line.model, found=True, resolution=resolution))
    warnings += _upscale_warnings(statuses, size=songset.output.size)
    if missing:
        warnings.append(
            f"no model yet for line{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; train with `lyriscope train {songset.root}`"
        )
    return tuple(statuses)


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


def _model_resolution(check_model_file, path: Path, line: int) -> int:
    try:
        config = check_model_file(path)
    except LyriscopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable model is the user's file problem
        raise CheckpointError(
            f"{path}: cannot be read as a model ({type(exc).__name__}: "
            f"{exc}); expected a .safetensors file written by lyriscope"
        ) from None
    res = config.get("img_resolution") if isinstance(config, dict) else None
    if not (
        isinstance(res, int) and not isinstance(res, bool) and res >= 4 and res & (res - 1) == 0
    ):
        raise CheckpointError(
            f"{path} (line {line + 1}): img_resolution is {res!r}; "
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
    if model.path is None:
        return "no model"
    if not model.found:
        return f"missing {_rel(model.path, root)}"
    return f"{model.resolution}x{model.resolution}" if model.resolution else "found"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
