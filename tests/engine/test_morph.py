"""One conditional model for the song: each line a class, a line change a morph in one space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from setfiles import write_model, write_set
from test_live import ManualClock, make_show, settle

from lyriscope.engine.compose import LineImage, Morph, draw, line_walks, shot_images, synthesize
from lyriscope.engine.shots import Shot
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.errors import CheckpointError
from lyriscope.setmodel import load_set

FPS = 10.0
WALK = {"loop_seconds": 4.0, "seeds": 3, "crossfade_s": 1.0, "pulse": 0.0, "motion": 0.0}
SONG_MODEL = {"model": "models/song.safetensors"}

pytestmark = pytest.mark.usefixtures("one_thread")


def song_set(root: Path, *, lines=("first", "second", "third"), classes: int = 3) -> Path:
    """A set whose lines are classes of one random conditional 32² model (models/song.safetensors)."""
    write_model(root / "models" / "song.safetensors", c_dim=classes, seed=7)
    return write_set(root, lines=lines, song=SONG_MODEL, walk=WALK, output={"fps": FPS})


@pytest.fixture(scope="module")
def conditional(tmp_path_factory) -> Path:
    return song_set(tmp_path_factory.mktemp("song") / "set")


@pytest.fixture(scope="module")
def generator(conditional: Path) -> Generator:
    return Generator.from_set(load_set(conditional), options=RuntimeOptions(device="cpu"))


def test_lines_of_the_song_model_share_its_weights_and_map_with_their_class(conditional, generator):
    first, second, third = (generator.line(i) for i in range(3))
    assert first.G is second.G is third.G  # one network for the song
    assert first is not second and (first.label, second.label, third.label) == (0, 1, 2)
    assert torch.equal(second.c, torch.tensor([[0.0, 1.0, 0.0]]))
    z = torch.randn(2, first.z_dim, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(first.mapping(z), second.mapping(z))  # the class changes w
    expected = first.G.mapping(z, torch.tensor([[0.0, 1.0, 0.0]] * 2), truncation_psi=1.0)
    assert torch.equal(second.mapping(z), expected)
    # Each line truncates towards its own class's average w, not the average of the whole song.
    assert not torch.allclose(first.w_avg, second.w_avg)
    fresh = first.mapping(torch.randn(4096, first.z_dim))[:, 0].mean(dim=0)  # another draw
    assert (first.w_avg - fresh).norm() < 0.1 * (first.w_avg - second.w_avg).norm()


def test_two_lines_with_the_same_class_share_one_line_model(tmp_path: Path):
    root = song_set(tmp_path / "s", lines=("a", {"text": "b", "class": 0}), classes=2)
    gen = Generator.from_set(load_set(root), options=RuntimeOptions(device="cpu"))
    assert gen.line(0) is gen.line(1)


@pytest.mark.parametrize(
    ("classes", "lines", "match"),
    [
        (0, ("a", "b"), r"line 1 is drawn by \[song\] model, but the model is unconditional"),
        (2, ("a", "b", "c"), "line 3 has class 2, but the song model has classes 0 to 1"),
        (2, ("a", {"text": "b", "class": 5}), "line 2 has class 5"),
    ],
)
def test_a_song_model_that_cannot_draw_a_line_is_one_clear_error(
    tmp_path: Path, classes: int, lines, match: str
):
    root = song_set(tmp_path / "s", lines=lines, classes=classes)
    with pytest.raises(CheckpointError, match=match):
        Generator.from_set(load_set(root), options=RuntimeOptions(device="cpu"))


def _change(generator, songset, *, mix: float) -> tuple[np.ndarray, ...]:
    """(outgoing line alone, incoming line alone, the morph at mix) for a change from line 1 to 2."""
    walks = line_walks(songset, generator, fps=FPS)
    params = songset.lines[1].walk
    out_of, into = LineImage(0, 2.3, 23, params), LineImage(1, 0.3, 23, params)
    return tuple(
        synthesize(
            [out_of, into, Morph(into=into, out_of=out_of, mix=mix)],
            walks=walks,
            generator=generator,
            features=None,
        )
    )


def _embedding(image: np.ndarray) -> np.ndarray:
    """A downsampled image embedding: 8x8 mean colours of the 32² image, as float [192]."""
    return image.astype(np.float64).reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)).ravel()


def test_a_line_change_morphs_through_generated_images_not_a_pixel_blend(conditional, generator):
    songset = load_set(conditional)
    a, b, mid = _change(generator, songset, mix=0.5)
    np.testing.assert_array_equal(
        _change(generator, songset, mix=0.0)[2], a
    )  # mix 0 is exactly the outgoing line's frame
    np.testing.assert_array_equal(_change(generator, songset, mix=1.0)[2], b)

    # The middle frame is a generated image of the in-between w ...
    walks = line_walks(songset, generator, fps=FPS)
    w_a = walks[0].w(2.3, params=songset.lines[1].walk, frame=23)
    w_b = walks[1].w(0.3, params=songset.lines[1].walk, frame=23)
    np.testing.assert_array_equal(mid, generator.synthesize(1, torch.lerp(w_a, w_b, 0.5)[None])[0])

    # ... that lies between the two lines' images in a feature space ...
    ea, eb, em = _embedding(a), _embedding(b), _embedding(mid)
    across = np.linalg.norm(eb - ea)
    t = float(np.dot(em - ea, eb - ea) / across**2)  # where mid projects onto a -> b
    assert 0.2 < t < 0.8, t
    assert np.linalg.norm(em - ea) < across and np.linalg.norm(em - eb) < across

    # ... and not the 50/50 pixel mix of the two.
    blend = (a.astype(np.float64) + b) / 2
    off_blend = np.abs(mid - blend).mean()
    assert off_blend > 3.0, off_blend  # levels of 255
    print(
        f"morph: t={t:.3f} |mid-a|={np.linalg.norm(em - ea):.1f} "
        f"|mid-b|={np.linalg.norm(em - eb):.1f} |a-b|={across:.1f} off-blend={off_blend:.2f}"
    )


def test_draw_morphs_between_song_model_lines_and_crossfades_to_a_line_of_its_own(tmp_path):
    root = tmp_path / "mixed"
    write_model(root / "models" / "song.safetensors", c_dim=2, seed=7)
    write_model(root / "models" / "own.safetensors", seed=3)
    lines = ("a", "b", {"text": "c", "model": "models/own.safetensors"})
    write_set(root, lines=lines, song=SONG_MODEL, walk=WALK, output={"fps": FPS})
    songset = load_set(root)
    assert [line.label for line in songset.lines] == [0, 1, None]
    gen = Generator.from_set(songset, options=RuntimeOptions(device="cpu"))
    walks = line_walks(songset, gen, fps=FPS)
    shots = [
        Shot(line=1, t_line=0.5, prev=0, t_prev=2.5, mix=0.5),  # song model -> song model
        Shot(line=2, t_line=0.5, prev=1, t_prev=2.5, mix=0.5),  # song model -> its own model
        Shot(line=0, t_line=0.5, prev=None, t_prev=0.0, mix=1.0),
    ]
    morph, fade, alone = draw(
        shots, frames=[25, 45, 5], songset=songset, walks=walks, generator=gen, features=None
    )
    assert morph.prev_image is None  # one generated image: nothing to blend
    assert fade.prev_image is not None and fade.mix == 0.5  # two spaces: the images crossfade
    assert alone.prev_image is None
    (request,) = shot_images(shots[0], frame=25, params=songset.lines[1].walk, morph=True)
    assert isinstance(request, Morph) and request.mix == 0.5


def test_the_live_show_morphs_as_the_offline_render_does(tmp_path: Path):
    root = song_set(tmp_path / "live", lines=("first", "second"), classes=2)
    songset = load_set(root)
    gen = Generator.from_set(songset, options=RuntimeOptions(device="cpu"))
    show = make_show(songset, gen, ManualClock(2.5), hud_visible=False)  # mid-change: 2 s + 0.5
    try:
        settle(show)
        shown = show.shown
        assert shown.request.shot.prev == 0 and 0 < shown.request.shot.mix < 1
        assert shown.prev_image is None  # one morphed image, no crossfade
        (offline,) = draw(
            [shown.request.shot],
            frames=[round(2.5 * FPS)],
            songset=songset,
            walks=line_walks(songset, gen, fps=FPS),
            generator=gen,
            features=None,
        )
        np.testing.assert_array_equal(shown.image, offline.image)
    finally:
        show.close()
        show.renderer.close()


def test_the_fast_path_is_built_once_for_every_line_of_the_song_model(conditional, generator):
    fast = Generator.from_set(
        load_set(conditional), options=RuntimeOptions(device="cpu", fast=True)
    )
    assert fast.line(0).fast is not None
    assert fast.line(0).fast is fast.line(1).fast is fast.line(2).fast  # one plan per network
    z = torch.randn(2, fast.line(1).z_dim, generator=torch.Generator().manual_seed(3))
    ws = generator.line(1).mapping(z)
    diff = np.abs(fast.synthesize(1, ws).astype(int) - generator.synthesize(1, ws).astype(int))
    assert diff.max() <= 1
