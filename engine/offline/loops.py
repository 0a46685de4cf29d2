"""A line's seamless loop, as the paper cut them: loop_seconds through its seeds, first = last image.

Without audio the walk is the plain closed loop, so a video of round(loop_seconds * fps)
frames (frame k at t = k / fps) repeats without a seam. With [post] text on, the line's
words are shown for the whole clip, sung by its own word times from the clip's start and
faded in and out at its ends (engine.lyrics.loop_lyric), so the words do not break the
seam either; the walk gets no word pulses (word_pulse follows the song's clock). `lyriscope loops` writes one per line; `lyriscope preview` writes a short clip
of one line and a contact strip of its keyframes while the set is being tuned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lyriscope.atomic import atomic_path
from lyriscope.engine.compose import LineImage, draw, render_picture, synthesize
from lyriscope.engine.gl.renderer import Renderer
from lyriscope.engine.lyrics import line_words, loop_lyric
from lyriscope.engine.offline.encoder import open_writer
from lyriscope.engine.shots import Shot
from lyriscope.engine.synth.walk import Walk
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet, frame_side
from lyriscope.timebase import Timebase, positive_seconds


@dataclass(frozen=True)
class LoopOptions:
    size: int | None = None  # output side; None: [output] size
    timebase: Timebase | None = None  # frames per second; None: the set's [output] fps
    seconds: float | None = None  # clip length; None: one whole loop
    crf: int | None = None
    device: str = "auto"
    batch: int = 8
    progress: bool = True


def loop_frame_count(loop_seconds: float, fps: float) -> int:
    """Frames of one loop: frame N (= frame 0 again) is left out, so the file repeats seamlessly."""
    return max(1, round(loop_seconds * fps))


def render_loop(
    songset: SongSet, line: int, out: str | Path, *, generator, options: LoopOptions = LoopOptions()
) -> int:
    """Write line's loop (no audio) to out (.mp4 or a PNG folder); returns the frame count."""
    check_line(songset, line)
    spec = songset.lines[line]
    timebase = options.timebase if options.timebase is not None else Timebase.from_set(songset)
    fps = timebase.rate
    size = songset.output.size if options.size is None else frame_side(options.size, where="size")
    seconds = (
        spec.walk.loop_seconds
        if options.seconds is None
        else positive_seconds(options.seconds, where="seconds")
    )
    n = loop_frame_count(seconds, fps)
    walks = {line: Walk.for_model(generator.line(line), seeds=spec.seeds, fps=fps)}
    crf = songset.output.crf if options.crf is None else options.crf
    batch = max(1, options.batch)
    words = line_words(songset, line) if songset.post.text else ()
    with (
        Renderer.offscreen(size, post=songset.post) as renderer,
        open_writer(out, fps=timebase.fps, size=(size, size), crf=crf) as writer,
    ):
        frame_out = np.empty((size, size, 3), np.uint8)
        with tqdm(
            total=n, disable=not options.progress, unit="frame", desc=f"line {line + 1}"
        ) as bar:
            for first in range(0, n, batch):
                frames = range(first, min(n, first + batch))
                shots = [loop_shot(line, timebase.time(k)) for k in frames]
                lyrics = [
                    loop_lyric(
                        songset, line, timebase.time(k), seconds=timebase.time(n), words=words
                    )
                    for k in frames
                ]
                pictures = draw(
                    shots,
                    frames=frames,
                    songset=songset,
                    walks=walks,
                    generator=generator,
                    features=None,
                    lyrics=lyrics,
                )
                for picture in pictures:
                    render_picture(renderer, picture)
                    writer.write(renderer.read(frame_out))
                    bar.update(1)
    return n


def loop_shot(line: int, t: float) -> Shot:
    """A line alone, t seconds into its loop: no crossfade."""
    return Shot(line=line, t_line=t, prev=None, t_prev=0.0, mix=1.0)


def keyframe_strip(
    songset: SongSet,
    line: int,
    out: str | Path,
    *,
    generator,
    timebase: Timebase | None = None,  # None: the set's [output] fps
    thumb: int = 192,  # side of one keyframe's tile in pixels
) -> Path:
    """A PNG strip of the line's keyframe images (what the loop passes through), left to right."""
    check_line(songset, line)
    spec = songset.lines[line]
    timebase = timebase if timebase is not None else Timebase.from_set(songset)
    walk = Walk.for_model(generator.line(line), seeds=spec.seeds, fps=timebase.rate)
    requests = [
        LineImage(line, float(t), timebase.frame(t), spec.walk)
        for t in walk.keyframe_times(spec.walk.loop_seconds)
    ]
    images = synthesize(requests, walks={line: walk}, generator=generator, features=None)
    tiles = [Image.fromarray(img).resize((thumb, thumb), Image.LANCZOS) for img in images]
    strip = Image.new("RGB", (thumb * len(tiles), thumb))
    for i, tile in enumerate(tiles):
        strip.paste(tile, (i * thumb, 0))
    out = Path(out)
    with atomic_path(out) as tmp:
        strip.save(tmp, format="PNG")
    return out


def check_line(songset: SongSet, line: int) -> None:
    if not 0 <= line < len(songset.lines):
        raise LyriscopeError(
            f"{songset.path}: there is no line {line + 1}; the set has lines "
            f"1..{len(songset.lines)}"
        )
