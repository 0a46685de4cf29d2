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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet, load_set

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderOptions:
    start_s: float = 0.0  # song time of the first frame
    end_s: float | None = None  # song time after the last frame; None: the song's end
    size: int | None = None  # output side in pixels; None: [output] size
    fps: float | None = None  # None: [output] fps
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


@dataclass(frozen=True)
class FrameJob:
    """One output frame: which line images it needs and how to blend them."""

    frame: int  # absolute video frame
    line: int
    t_line: float
    prev: int | None
    t_prev: float
    mix: float  # 0: prev only .. 1: line only


def plan(songset: SongSet, timeline, *, fps: float, first: int, last: int) -> list[FrameJob]:
    """The frame jobs of frames [first, last): pure, from the timeline and the set."""
    from lyriscope.engine.shots import shot_at

    fades = [line.walk.crossfade_s for line in songset.lines]
    jobs = []
    for k in range(first, last):
        s = shot_at(timeline, k / fps, crossfade_s=fades, gap_line=songset.output.gap)
        jobs.append(
            FrameJob(frame=k, line=s.line, t_line=s.t_line, prev=s.prev, t_prev=s.t_prev, mix=s.mix)
        )
    return jobs


class FrameSource:
    """Draws the line images of frame jobs, batched per line: (line, t, frame) -> uint8 [H, W, 3]."""

    def __init__(self, songset: SongSet, generator, features, *, fps: float) -> None:
        from lyriscope.engine.synth.walk import Walk

        self.songset = songset
        self.generator = generator
        self.features = features
        self.walks = [
            Walk.for_model(generator.line(i), seeds=line.seeds, fps=fps)
            for i, line in enumerate(songset.lines)
        ]

    def images(self, requests: list[tuple[int, float, int]]) -> list[np.ndarray]:
        """Images for requests (line, t into line, absolute frame), in request order."""
        out: list[np.ndarray | None] = [None] * len(requests)
        by_line: dict[int, list[int]] = {}
        for i, (line, _, _) in enumerate(requests):
            by_line.setdefault(line, []).append(i)
        for line, idx in by_line.items():
            ws = self.walks[line].w_batch(
                [requests[i][1] for i in idx],
                params=self.songset.lines[line].walk,
                features=self.features,
                frames=[requests[i][2] for i in idx],
            )
            frames = self.generator.synthesize(line, ws)  # [N, H, W, 3]
            for j, i in enumerate(idx):
                out[i] = frames[j]
        return out  # type: ignore[return-value]


def render(
    songset: SongSet | str | Path,
    out: str | Path,
    *,
    options: RenderOptions = RenderOptions(),
    generator=None,
) -> RenderResult:
    """Render a set (or a set folder) to `out` (.mp4/.mov/.mkv, or a folder for PNG frames)."""
    from lyriscope.audiofile import audio_duration
    from lyriscope.engine.audio.features import analyse_file
    from lyriscope.engine.gl.renderer import Renderer
    from lyriscope.engine.offline.encoder import open_writer
    from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
    from lyriscope.timeline import Timeline

    if not isinstance(songset, SongSet):
        songset = load_set(songset, need_models=generator is None)
    fps = float(options.fps or songset.output.fps)
    size = int(options.size or songset.output.size)
    crf = songset.output.crf if options.crf is None else options.crf
    if size % 2:
        raise LyriscopeError(f"output size must be even for H.264, got {size}")

    duration = audio_duration(songset.song.audio)
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
    source = FrameSource(songset, generator, features, fps=fps)
    jobs = plan(songset, timeline, fps=fps, first=first, last=last)

    began = time.perf_counter()
    with (
        Renderer.offscreen(size, post=songset.post) as renderer,
        open_writer(
            out,
            fps=fps,
            size=(size, size),
            audio=songset.song.audio,
            audio_start_s=first / fps,
            crf=crf,
            preset=options.preset,
        ) as writer,
    ):
        bar = _progress(len(jobs), enabled=options.progress, unit="frame", desc="render")
        frame_out = np.empty((size, size, 3), np.uint8)
        for chunk in _chunks(jobs, max(1, options.batch)):
            for job, (img, prev_img) in zip(chunk, _draw(source, chunk), strict=True):
                text = songset.lines[job.line].text
                if prev_img is None:
                    renderer.render(img, text=text)
                else:
                    renderer.render(prev_img, image_b=img, mix=job.mix, text=text)
                writer.write(renderer.read(frame_out))
                bar.update(1)
        bar.close()
    seconds = time.perf_counter() - began
    return RenderResult(path=Path(out), frames=len(jobs), fps=fps, size=size, seconds=seconds)


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


def _draw(source: FrameSource, chunk: list[FrameJob]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    requests = [(j.line, j.t_line, j.frame) for j in chunk]
    fading = [j for j in chunk if j.prev is not None]
    requests += [(j.prev, j.t_prev, j.frame) for j in fading]
    images = source.images(requests)
    mains, prevs = images[: len(chunk)], iter(images[len(chunk) :])
    return [
        (img, next(prevs) if j.prev is not None else None)
        for j, img in zip(chunk, mains, strict=True)
    ]


def _chunks(items: list[FrameJob], n: int) -> Iterator[list[FrameJob]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _progress(total: int, *, enabled: bool, **kwargs):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, dynamic_ncols=True, **kwargs)
