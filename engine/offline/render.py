"""The offline render: a set -> an MP4 (or PNG frames) with the song's audio, frame-exact.

Frames are counted, not timed: frame k is at t = k / fps and a whole song has
round(duration * fps) frames. Per frame: the timeline picks the shot (line, crossfade),
the walk gives w from the audio features, the generator draws the line's image(s), the
GL post chain blends and grades them, and the encoder thread writes the result.

Example:
    >>> from lyriscope import load_set, render
    >>> render(load_set("sets/demo"), out="demo.mp4")
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lyriscope.audiofile import audio_info
from lyriscope.engine.audio.features import analyse_file
from lyriscope.engine.compose import draw, line_walks, render_picture
from lyriscope.engine.gl.renderer import Renderer
from lyriscope.engine.lyrics import song_lyric, word_times
from lyriscope.engine.offline.encoder import open_writer
from lyriscope.engine.shots import Shot, shot_at
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet, frame_side, load_set
from lyriscope.timebase import Timebase
from lyriscope.timeline import Timeline
from lyriscope.track_mix import track_channels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderOptions:
    start_s: float = 0.0  # song time of the first frame
    end_s: float | None = None  # song time after the last frame; None: the song's end
    size: int | None = None  # output side in pixels; None: [output] size
    timebase: Timebase | None = None  # frames per second; None: the set's [output] fps
    crf: int | None = None  # None: [output] crf
    preset: str = "medium"  # x264 preset
    device: str = "auto"  # torch device for synthesis
    batch: int = 8  # frames synthesized together (per line)
    progress: bool = True  # a tqdm bar on stderr
    fast: bool = False  # engine.fastpath synthesis (CUDA graph + fp16 on a GPU)


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    fps: float
    size: int
    seconds: float  # wall time

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.inf


def shots_at_frames(
    songset: SongSet, timeline: Timeline, frames: Sequence[int], *, timebase: Timebase
) -> list[Shot]:
    """The shot of each frame (frame k at t = k / fps): pure, from the timeline and the set."""
    fades = [line.walk.crossfade_s for line in songset.lines]
    gap = songset.output.gap
    return [shot_at(timeline, timebase.time(k), crossfade_s=fades, gap_line=gap) for k in frames]


def render(
    songset: SongSet | str | Path,
    out: str | Path,
    *,
    options: RenderOptions = RenderOptions(),
    generator=None,
) -> RenderResult:
    """Render a set (or a set folder) to `out` (.mp4/.mov/.mkv, or a folder for PNG frames)."""
    if not isinstance(songset, SongSet):
        songset = load_set(songset, need_models=generator is None)
    timebase = options.timebase if options.timebase is not None else Timebase.from_set(songset)
    fps = timebase.rate
    size = songset.output.size if options.size is None else frame_side(options.size, where="size")
    crf = songset.output.crf if options.crf is None else options.crf
    if size % 2:
        raise LyriscopeError(f"output size must be even for H.264, got {size}")

    song = audio_info(songset.song.audio)
    track_channels(song.channels, source=songset.song.audio)  # a song the video can carry
    duration = song.duration
    timeline = Timeline.from_set(songset, duration=duration)
    first, last = frame_range(
        timeline.frame_count(fps), fps=fps, start_s=options.start_s, end_s=options.end_s
    )
    log.info("analysing %s at %g fps", songset.song.audio.name, fps)
    features = analyse_file(songset.song.audio, fps=fps)
    if generator is None:
        generator = Generator.from_set(
            songset,
            options=RuntimeOptions(device=options.device, fast=options.fast, batch=options.batch),
        )
    walks = line_walks(songset, generator, fps=fps)
    frames = range(first, last)
    shots = shots_at_frames(songset, timeline, frames, timebase=timebase)
    batch = max(1, options.batch)
    words = word_times(timeline)  # the walks' word pulses

    began = time.perf_counter()
    with (
        Renderer.offscreen(size, post=songset.post) as renderer,
        open_writer(
            out,
            fps=timebase.fps,
            size=(size, size),
            audio=songset.song.audio,
            audio_start_s=timebase.time(first),
            crf=crf,
            preset=options.preset,
        ) as writer,
    ):
        bar = _progress(len(frames), enabled=options.progress, unit="frame", desc="render")
        frame_out = np.empty((size, size, 3), np.uint8)
        for start in range(0, len(frames), batch):
            chunk = slice(start, start + batch)
            pictures = draw(
                shots[chunk],
                frames=frames[chunk],
                songset=songset,
                walks=walks,
                generator=generator,
                features=features,
                lyrics=[song_lyric(songset, timeline, timebase.time(k)) for k in frames[chunk]],
                word_times=words,
            )
            for picture in pictures:
                render_picture(renderer, picture)
                writer.write(renderer.read(frame_out))
                bar.update(1)
        bar.close()
    seconds = time.perf_counter() - began
    return RenderResult(path=Path(out), frames=len(frames), fps=fps, size=size, seconds=seconds)


def frame_range(
    n_frames: int, *, fps: float, start_s: float = 0.0, end_s: float | None = None
) -> tuple[int, int]:
    """Frames [first, last) of the span [start_s, end_s) of a song of n_frames frames."""
    first = round(start_s * fps)
    last = n_frames if end_s is None else min(n_frames, round(end_s * fps))
    if start_s < 0 or first >= n_frames:
        raise LyriscopeError(
            f"--start {start_s} s is outside the song (0 to {n_frames / fps:.2f} s)"
        )
    if last <= first:
        raise LyriscopeError(f"--end {end_s} s must come after --start {start_s} s")
    return first, last


def _progress(total: int, *, enabled: bool, **kwargs):
    return tqdm(total=total, disable=not enabled, dynamic_ncols=True, **kwargs)
