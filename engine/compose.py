"""Drawing a frame, one way for the offline render, the loops, the preview and the live show.

A frame shows a Shot (engine.shots): its line's image and, while a crossfade runs, the
image of the line fading out. Between two lines of the song's conditional model the change
is a Morph instead: one image synthesized from the two lines' ws lerped by the mix, so the
middle of a change is a picture of an in-between w, not two pictures on top of each other.
`shot_images` says which line images a shot needs,
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
import torch

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
class Morph:
    """One image of a change between two lines of one conditional model (one latent space).

    Each line's walk gives its w at its own time (what that line alone would show there),
    and the image is synthesized from lerp(w_out, w_in, mix): at mix 0 exactly the outgoing
    line's frame, at 1 exactly the incoming line's, in between a generated image. The ws
    are lerped rather than the class embeddings because the two lines walk different seeds
    (and, with space "w", never pass through the mapping per frame); lerping w keeps both
    ends of the change equal to the frames before and after it, keeps the audio's pushes,
    and costs one synthesis instead of two.
    """

    into: LineImage  # the line coming in; its model draws the image
    out_of: LineImage  # the line going out
    mix: float  # 0: out_of's w .. 1: into's w


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


def morphs(songset: SongSet, line: int, prev: int | None) -> bool:
    """Whether a change from line `prev` to `line` morphs: both are classes of the song model."""
    if prev is None:
        return False
    return songset.lines[line].label is not None and songset.lines[prev].label is not None


def shot_images(
    shot: Shot,
    *,
    frame: int,
    params: WalkParams,
    prev_params: WalkParams | None = None,
    morph: bool = False,  # the change is between two lines of one conditional model (`morphs`)
) -> tuple[LineImage | Morph, ...]:
    """The images a shot needs: its line's, then (while crossfading) the fading line's.

    Both read the audio at the same frame; prev_params None: the fading line uses `params`.
    morph: a change is one Morph image instead of two images to crossfade.
    """
    image = LineImage(shot.line, shot.t_line, frame, params)
    if shot.prev is None:
        return (image,)
    fading = LineImage(shot.prev, shot.t_prev, frame, prev_params or params)
    if morph:
        return (Morph(into=image, out_of=fading, mix=shot.mix),)
    return (image, fading)


def synthesize(
    requests: Sequence[LineImage | Morph],
    *,
    walks: Walks,
    generator: Any,  # engine.synth.runtime.Generator: synthesize(line, ws) -> uint8 [N, H, W, 3]
    features: Features | None,  # the audio's features at the walks' fps; None: a silent walk
    word_times: Sequence[float] = (),  # seconds each sung word starts (engine.lyrics.word_times)
) -> list[np.ndarray]:
    """uint8 [H, W, 3] images of requests, in request order; one walk call per line and params,
    one synthesis call per line (a Morph is drawn by its incoming line's model)."""
    sides = [side for request in requests for side in _sides(request)]
    side_ws = iter(_walk_ws(sides, walks=walks, features=features, word_times=word_times))
    ws: list[torch.Tensor] = []  # [num_ws, w_dim] of each request
    for request in requests:
        if isinstance(request, Morph):
            w_in, w_out = next(side_ws), next(side_ws)
            ws.append(torch.lerp(w_out, w_in, request.mix))
        else:
            ws.append(next(side_ws))
    images: list[np.ndarray | None] = [None] * len(requests)
    by_line: dict[int, list[int]] = {}
    for i, request in enumerate(requests):
        by_line.setdefault(_drawn_by(request), []).append(i)
    for line, order in by_line.items():
        drawn = generator.synthesize(line, torch.stack([ws[i] for i in order]))  # [N, H, W, 3]
        for j, i in enumerate(order):
            images[i] = drawn[j]
    return images  # type: ignore[return-value] - every slot is filled


def _sides(request: LineImage | Morph) -> tuple[LineImage, ...]:
    """The line images whose ws a request needs: a Morph's incoming, then outgoing line."""
    return (request.into, request.out_of) if isinstance(request, Morph) else (request,)


def _drawn_by(request: LineImage | Morph) -> int:
    return request.into.line if isinstance(request, Morph) else request.line


def _walk_ws(
    requests: Sequence[LineImage],
    *,
    walks: Walks,
    features: Features | None,
    word_times: Sequence[float],
) -> list[torch.Tensor]:
    """The w [num_ws, w_dim] of each request, one walk call per line and params.

    (Per line and params, strictly: a set gives each line one params, live the knobs' now.)
    """
    ws: list[torch.Tensor | None] = [None] * len(requests)
    batches: dict[tuple[int, WalkParams], list[int]] = {}
    for i, request in enumerate(requests):
        batches.setdefault((request.line, request.params), []).append(i)
    for (line, params), order in batches.items():
        batch = walks[line].w_batch(
            [requests[i].t for i in order],
            params=params,
            features=features,
            frames=[requests[i].frame for i in order],
            word_times=word_times,
        )  # [N, num_ws, w_dim]
        for j, i in enumerate(order):
            ws[i] = batch[j]
    return ws  # type: ignore[return-value] - every slot is filled


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
        shot_images(
            shot,
            frame=int(frame),
            params=songset.lines[shot.line].walk,
            # The fading line walks by its own settings, as in the live show.
            prev_params=None if shot.prev is None else songset.lines[shot.prev].walk,
            morph=morphs(songset, shot.line, shot.prev),
        )
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
            prev_image=next(fading) if images[1:] else None,
            mix=shot.mix,
            lyric=lyric,
        )
        for shot, image, images, lyric in zip(shots, shown, requests, lyrics, strict=True)
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
