"""Drawing a frame, one way for the offline render, the loops, the preview and the live show.

A frame shows a Shot (engine.shots): its line's image and, while a crossfade runs, the
image of the line fading out. `shot_images` says which line images a shot needs,
`synthesize` draws a batch of them with one walk call and one generator call per line (the
offline render batches many frames; the live worker draws one shot), and `render_picture`
hands the images, their mix and the lyric (live: also the post overrides, flash and
blackout) to the renderer. The lyric is not the shown line's: it is what is sung at the
frame's time (engine.lyrics), whatever pictures are shown.

Example:
    >>> walks = line_walks(songset, generator, fps=60)
    >>> lyrics = [song_lyric(songset, timeline, timebase.time(k)) for k in frames]
    >>> for picture in draw(shots, frames=frames, songset=songset, walks=walks,
    ...                     generator=generator, features=features, lyrics=lyrics):
    ...     render_picture(renderer, picture)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lyriscope.engine.audio.features import Features
from lyriscope.engine.gl.lyric import Lyric
from lyriscope.engine.gl.renderer import Renderer
from lyriscope.engine.shots import Shot
from lyriscope.engine.synth.walk import Walk
from lyriscope.setmodel import Post, SongSet, WalkParams

# A line's Walk by line index: a list of every line's, or a dict of the few being drawn.
Walks = Sequence[Walk] | Mapping[int, Walk]


@dataclass(frozen=True)
class LineImage:
    """One image to synthesize: a line's walk `t` seconds into its loop."""

    line: int  # 0-based
    t: float  # seconds into the line's loop (negative before the line starts)
    frame: int  # absolute video frame: the walk reads the audio features there
    params: WalkParams  # the set's [walk] of the line, or live: with the knobs' overrides


@dataclass(frozen=True)
class Picture:
    """What one output frame shows before the post chain."""

    image: np.ndarray  # uint8 [H, W, 3] of the line shown
    prev_image: np.ndarray | None  # uint8 [H, W, 3] of the line fading out; None: no crossfade
    mix: float  # 0: prev_image only .. 1: image only
    lyric: Lyric | None  # the words sung at the frame's time; None: nobody sings


def line_walks(songset: SongSet, generator: Any, *, fps: float) -> list[Walk]:
    """Every line's Walk on its model (generator.line(i)) through its seeds."""
    return [
        Walk.for_model(generator.line(i), seeds=line.seeds, fps=fps)
        for i, line in enumerate(songset.lines)
    ]


def shot_images(
    shot: Shot, *, frame: int, params: WalkParams, prev_params: WalkParams | None = None
) -> tuple[LineImage, ...]:
    """The images a shot needs: its line's, then (while crossfading) the fading line's.

    Both read the audio at the same frame; prev_params None: the fading line uses `params`.
    """
    images = (LineImage(shot.line, shot.t_line, frame, params),)
    if shot.prev is None:
        return images
    fading = LineImage(shot.prev, shot.t_prev, frame, prev_params or params)
    return (*images, fading)


def synthesize(
    requests: Sequence[LineImage],
    *,
    walks: Walks,
    generator: Any,  # engine.synth.runtime.Generator: synthesize(line, ws) -> uint8 [N, H, W, 3]
    features: Features | None,  # the audio's features at the walks' fps; None: a silent walk
    word_times: Sequence[float] = (),  # seconds each sung word starts (engine.lyrics.word_times)
) -> list[np.ndarray]:
    """uint8 [H, W, 3] images of requests, in request order; one walk and one synthesis call per line.

    (Per line and params, strictly: a set gives each line one params, live the knobs' now.)
    """
    images: list[np.ndarray | None] = [None] * len(requests)
    batches: dict[tuple[int, WalkParams], list[int]] = {}
    for i, request in enumerate(requests):
        batches.setdefault((request.line, request.params), []).append(i)
    for (line, params), order in batches.items():
        ws = walks[line].w_batch(
            [requests[i].t for i in order],
            params=params,
            features=features,
            frames=[requests[i].frame for i in order],
            word_times=word_times,
        )  # [N, num_ws, w_dim]
        drawn = generator.synthesize(line, ws)  # [N, H, W, 3]
        for j, i in enumerate(order):
            images[i] = drawn[j]
    return images  # type: ignore[return-value] - every slot is filled


def draw(
    shots: Sequence[Shot],
    *,
    frames: Sequence[int],  # absolute video frame of each shot
    songset: SongSet,
    walks: Walks,
    generator: Any,
    features: Features | None,
    lyrics: Sequence[Lyric | None] | None = None,  # each frame's words; None: no words at all
    word_times: Sequence[float] = (),  # seconds each sung word starts (the walks' word pulse)
) -> list[Picture]:
    """The pictures of shots with the set's walk params, synthesized together (batched per line)."""
    if len(frames) != len(shots):
        raise ValueError(f"got {len(shots)} shots but {len(frames)} frames; give one per shot")
    if lyrics is None:
        lyrics = [None] * len(shots)
    elif len(lyrics) != len(shots):
        raise ValueError(f"got {len(shots)} shots but {len(lyrics)} lyrics; give one per shot")
    requests = [
        shot_images(shot, frame=int(frame), params=songset.lines[shot.line].walk)
        for shot, frame in zip(shots, frames, strict=True)
    ]
    # Every shown image first, then the fading ones: a batch keeps the frames' order.
    flat = [images[0] for images in requests] + [images[1] for images in requests if images[1:]]
    drawn = synthesize(
        flat, walks=walks, generator=generator, features=features, word_times=word_times
    )
    shown, fading = drawn[: len(shots)], iter(drawn[len(shots) :])
    return [
        Picture(
            image=image,
            prev_image=next(fading) if shot.prev is not None else None,
            mix=shot.mix,
            lyric=lyric,
        )
        for shot, image, lyric in zip(shots, shown, lyrics, strict=True)
    ]


def render_picture(
    renderer: Renderer,
    picture: Picture | None,  # None: nothing drawn yet, black (live, before the first image)
    *,
    post: Post | None = None,  # None: the renderer's post (the set's [post])
    flash: float = 0.0,  # 0 .. 1 towards white
    blackout: float = 0.0,  # 0 .. 1 towards black
) -> None:
    """Run the renderer's post chain on a picture: the crossfade, the lyric, the live effects."""
    if picture is None:
        blank = np.zeros((8, 8, 3), np.uint8)
        renderer.render(blank, post=post, flash=flash, blackout=blackout)
    elif picture.prev_image is None:
        renderer.render(
            picture.image, lyric=picture.lyric, post=post, flash=flash, blackout=blackout
        )
    else:
        renderer.render(
            picture.prev_image,
            image_b=picture.image,
            mix=picture.mix,
            lyric=picture.lyric,
            post=post,
            flash=flash,
            blackout=blackout,
        )
