"""The offline render: a set -> an MP4 (or PNG frames) with the song's audio, frame-exact.

Frames are counted, not timed: frame k is at t = k / fps and a whole song has
round(duration * fps) frames. Per frame: the timeline picks the shot (line, crossfade),
the walk gives w from the audio features, the generator draws the line's image(s), the
GL post chain blends and grades them, and the encoder writes the result.

The stages overlap (engine.offline.pipeline): a worker thread draws batch k+1 on the device
while this thread runs batch k through the post chain and the encoder's own thread (x264
frame threads) encodes the frames before it; the audio is muxed as the video goes. The
queues between them are bounded, frames are encoded in order, and an error in any stage or
Ctrl-C/SIGTERM stops them all and leaves no partial output. `RenderOptions(depth=0)` is the
sequential reference: one batch at a time, drawn in this thread, the same frames.

Example:
    >>> from lyriscope import load_set, render
    >>> render(load_set("sets/demo"), out="demo.mp4")
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lyriscope.audiofile import audio_info
from lyriscope.engine.audio.features import analyse_file
from lyriscope.engine.compose import draw, line_walks, render_picture
from lyriscope.engine.gl.renderer import Renderer
from lyriscope.engine.lyrics import song_lyric, word_times
from lyriscope.engine.offline.encoder import DEFAULT_PRESET, open_writer
from lyriscope.engine.offline.pipeline import DrawnAhead, DrawnBatch, HostReadback
from lyriscope.engine.shots import Shot, shot_at
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet, frame_side, load_set
from lyriscope.timebase import Timebase, clock_text
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
    preset: str = DEFAULT_PRESET  # x264 preset (encoder.DEFAULT_PRESET says why this one)
    device: str = "auto"  # torch device for synthesis
    batch: int = 8  # frames synthesized together (per line)
    progress: bool = True  # a tqdm bar on stderr
    fast: bool = False  # engine.fastpath synthesis (CUDA graph + fp16 on a GPU)
    depth: int = 2  # batches drawn ahead of the post chain; 0: sequential, one at a time
    encoder_threads: int | None = None  # x264 frame threads; None: one per usable CPU


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

    @property
    def realtime_factor(self) -> float:
        """Seconds of video made per second of wall time (above 1: faster than it plays)."""
        return self.frames_per_second / self.fps

    def summary(self) -> str:
        """E.g. "rendered 13,500 frames in 3:12 — 70.3 frames/s, 1.17x real time"."""
        return (
            f"rendered {self.frames:,} frames in {clock_text(self.seconds)} — "
            f"{self.frames_per_second:.1f} frames/s, {self.realtime_factor:.2f}x real time"
        )


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
    if options.depth < 0:
        raise LyriscopeError(f"depth must be 0 (sequential) or more batches, got {options.depth}")

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
    readback = HostReadback(generator)

    def draw_batch(chunk: slice) -> DrawnBatch:
        """Synthesis of one batch (the worker thread's stage); its pixels are ready at `ready`."""
        pictures = draw(
            shots[chunk],
            frames=frames[chunk],
            songset=songset,
            walks=walks,
            generator=readback,
            features=features,
            lyrics=[song_lyric(songset, timeline, timebase.time(k)) for k in frames[chunk]],
            word_times=words,
        )
        return DrawnBatch(pictures, readback.fence())

    chunks = [slice(start, start + batch) for start in range(0, len(frames), batch)]
    began = time.perf_counter()
    # Left in reverse order: the drawing thread is joined before the writer finishes (or
    # removes) its file and before the GL context goes.
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
            threads=options.encoder_threads,
        ) as writer,
        DrawnAhead(chunks, draw_batch, depth=options.depth) as drawn,
        _progress(len(frames), enabled=options.progress, desc="render") as bar,
    ):
        _post_and_encode(drawn, renderer=renderer, writer=writer, bar=bar, fps=fps)
    seconds = time.perf_counter() - began
    return RenderResult(path=Path(out), frames=len(frames), fps=fps, size=size, seconds=seconds)


def _post_and_encode(
    drawn: Iterable[DrawnBatch],
    *,
    renderer: Renderer,
    writer: Any,  # encoder.VideoWriter or PngSequenceWriter
    bar: tqdm,
    fps: float,
) -> None:
    """This thread's stage: each drawn batch through the GL post chain into the writer, in order."""
    frame_out = np.empty((renderer.size, renderer.size, 3), np.uint8)
    for batch in drawn:
        batch.ready.wait()  # its pixels are on the host
        for picture in batch.items:
            render_picture(renderer, picture)
            writer.write(renderer.read(frame_out))  # copied: frame_out is reused
        bar.update(len(batch.items))
        bar.set_postfix_str(_pace(bar.n, bar.format_dict["elapsed"], fps=fps), refresh=False)


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


def _pace(frames: int, seconds: float, *, fps: float) -> str:
    """The progress bar's real-time factor so far ("1.17x real time")."""
    return f"{frames / seconds / fps:.2f}x real time" if seconds > 0 else ""


def _progress(total: int, *, enabled: bool, **kwargs):
    # unit " frames": tqdm writes the rate as "70.31 frames/s". smoothing 0: that rate is the
    # average since the bar began, the same clock as _pace's real-time factor beside it.
    return tqdm(
        total=total,
        disable=not enabled,
        dynamic_ncols=True,
        unit=" frames",
        smoothing=0,
        **kwargs,
    )
