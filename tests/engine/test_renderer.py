"""The GL renderer on the offscreen (EGL) target; the window target under Xvfb."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from native_libs import import_or_skip
from PIL import Image
from xvfb_server import private_display

from lyriscope.engine.gl.lyric import Lyric
from lyriscope.engine.gl.renderer import Renderer, ShaderError, copy_shaders
from lyriscope.errors import DeviceError
from lyriscope.setmodel import Post, TextStyle

PLAIN = Post(vignette=0.0)  # every pass off except the crossfade: an identity chain
LUMA = np.array([0.2126, 0.7152, 0.0722])


@pytest.fixture
def renderer_of():
    """Make offscreen renderers; all are closed after the test."""
    made = []

    def make(size: int, **options) -> Renderer:
        try:
            r = Renderer.offscreen(size, **options)
        except DeviceError as exc:
            pytest.skip(f"no offscreen GL here: {exc}")
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def random_image(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def smooth_image(size: int, seed: int) -> np.ndarray:
    """A photo-like test image: random colours at 8x8, smoothly enlarged."""
    coarse = random_image(8, seed)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))


def render(r: Renderer, image: np.ndarray, **kw) -> np.ndarray:
    r.render(image, **kw)
    return r.read().astype(np.int16)


def test_identity_chain_reads_back_the_image(renderer_of):
    image = random_image(64, 0)
    r = renderer_of(64, post=PLAIN)
    assert np.abs(render(r, image) - image).max() <= 1
    # Top row first: a red top half stays on top.
    halves = np.zeros((64, 64, 3), np.uint8)
    halves[:32, :, 0] = 255
    out = render(r, halves)
    assert out[0, 0, 0] == 255 and out[-1, 0, 0] == 0


def test_torch_tensor_and_numpy_give_the_same_frame(renderer_of):
    torch = pytest.importorskip("torch")
    image = random_image(32, 1)
    r = renderer_of(32, post=PLAIN)
    np.testing.assert_array_equal(render(r, torch.from_numpy(image)), render(r, image))


def test_read_fills_a_given_array_and_rejects_a_wrong_one(renderer_of):
    r = renderer_of(32, post=PLAIN)
    r.render(random_image(32, 2))
    out = np.zeros((32, 32, 3), np.uint8)
    assert r.read(out) is out
    np.testing.assert_array_equal(out, r.read())
    with pytest.raises(ValueError, match="shape"):
        r.read(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"uint8 \[height, width, 3\]"):
        r.render(np.zeros((32, 32), np.float32))


@pytest.mark.parametrize("mix", [0.0, 0.5, 1.0])
def test_crossfade_blends_the_two_images(renderer_of, mix):
    a, b = random_image(64, 3), random_image(64, 4)
    r = renderer_of(64, post=PLAIN)
    expected = (1 - mix) * a + mix * b
    assert np.abs(render(r, a, image_b=b, mix=mix) - expected).max() <= 1


@pytest.mark.parametrize(
    "brightness, contrast, saturation",
    [
        (0.1, 1.0, 1.0),
        (-0.2, 1.0, 1.0),
        (0.0, 1.5, 1.0),
        (0.0, 0.5, 1.0),
        (0.0, 1.0, 0.0),
        (0.0, 1.0, 1.8),
        (0.05, 1.2, 0.6),
    ],
)
def test_grade_matches_the_reference_formula(renderer_of, brightness, contrast, saturation):
    image = random_image(32, 5)
    post = replace(PLAIN, brightness=brightness, contrast=contrast, saturation=saturation)
    r = renderer_of(32, post=post)
    rgb = image / 255 + brightness
    rgb = (rgb - 0.5) * contrast + 0.5
    grey = (rgb @ LUMA)[..., None]
    expected = np.clip(grey + (rgb - grey) * saturation, 0, 1) * 255
    assert np.abs(render(r, image) - expected).max() <= 2


def test_saturation_zero_is_grey_and_brightness_lifts_the_mean(renderer_of):
    image = random_image(32, 6)
    r = renderer_of(32, post=replace(PLAIN, saturation=0.0))
    grey = render(r, image)
    assert np.abs(grey - grey[..., :1]).max() <= 1
    brighter = render(r, image, post=replace(PLAIN, brightness=0.2))
    assert brighter.mean() > image.mean() + 30


@pytest.mark.parametrize("amount", [0.3, 0.6, 1.0])
def test_vignette_darkens_corners_not_the_centre(renderer_of, amount):
    image = np.full((64, 64, 3), 200, np.uint8)
    r = renderer_of(64, post=replace(PLAIN, vignette=amount))
    out = render(r, image)
    assert np.abs(out[28:36, 28:36] - 200).max() <= 1
    for corner in (out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]):
        assert np.abs(corner - 200 * (1 - amount)).max() <= 4
    diagonal = out[np.arange(32), np.arange(32), 0]
    assert np.all(np.diff(diagonal) >= 0)  # brighter towards the centre


def test_trail_blends_with_the_previous_output(renderer_of):
    black = np.zeros((32, 32, 3), np.uint8)
    white = np.full((32, 32, 3), 255, np.uint8)
    r = renderer_of(32, post=replace(PLAIN, trail=0.5))
    assert render(r, black).max() == 0  # the first frame has no ghost of an older one
    assert np.abs(render(r, white) - 127.5).max() <= 1
    assert np.abs(render(r, white) - 191.25).max() <= 1
    r.reset()
    assert render(r, black).max() == 0  # a cut forgets the trail


def test_a_long_trail_fades_out_completely(renderer_of):
    r = renderer_of(16, post=replace(PLAIN, trail=0.9))
    render(r, np.full((16, 16, 3), 255, np.uint8))
    for _ in range(150):
        out = render(r, np.zeros((16, 16, 3), np.uint8))
    assert out.max() == 0


@pytest.mark.parametrize(
    "flash, blackout, expected", [(1.0, 0.0, 255), (0.0, 1.0, 0), (0.5, 0.0, 177.5)]
)
def test_flash_and_blackout(renderer_of, flash, blackout, expected):
    image = np.full((16, 16, 3), 100, np.uint8)
    r = renderer_of(16, post=PLAIN)
    assert np.abs(render(r, image, flash=flash, blackout=blackout) - expected).max() <= 1


def test_text_is_drawn_in_the_lower_third_only_when_on(renderer_of):
    image = np.full((128, 128, 3), 60, np.uint8)
    r = renderer_of(128, post=replace(PLAIN, text=True))
    style = TextStyle(karaoke="off", fade_s=0.0)  # the words in their colour, white
    lyric = Lyric("first ray of light", style, t=1.0, start=0.5, end=2.0)
    out = render(r, image, lyric=lyric)
    changed = np.abs(out - 60).max(axis=2) > 20
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.size and rows.min() > 128 // 2  # below the middle
    assert (out == 255).all(axis=2).sum() > 30  # white glyphs
    assert np.array_equal(render(r, image, lyric=None), np.full_like(out, 60))
    off = render(r, image, lyric=lyric, post=PLAIN)
    assert np.array_equal(off, np.full_like(out, 60))
    for t in (0.4, 2.0):  # before its stamp and at its end: nothing, as with text off
        assert np.array_equal(render(r, image, lyric=replace(lyric, t=t)), np.full_like(out, 60))


PIL_FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


@pytest.mark.parametrize("upscale", ["lanczos", "bicubic", "bilinear"])
@pytest.mark.parametrize("source, output", [(64, 256), (64, 100), (128, 64), (100, 37)])
def test_resizing_matches_pil(renderer_of, upscale, source, output):
    image = random_image(source, 7)  # noise: the hardest case for a resampler
    r = renderer_of(output, post=replace(PLAIN, upscale=upscale))
    reference = np.asarray(Image.fromarray(image).resize((output, output), PIL_FILTERS[upscale]))
    assert np.abs(render(r, image) - reference).max() <= 2


@pytest.mark.parametrize("upscale", ["lanczos", "bicubic", "bilinear", "nearest"])
def test_upscaling_keeps_the_mean_colour(renderer_of, upscale):
    small = smooth_image(64, 7)
    r = renderer_of(256, post=replace(PLAIN, upscale=upscale))
    out = render(r, small)
    assert np.abs(out.mean(axis=(0, 1)) - small.mean(axis=(0, 1))).max() < 1.0
    if upscale == "nearest":  # each texel becomes a 4x4 block
        np.testing.assert_array_equal(out, np.repeat(np.repeat(small, 4, axis=0), 4, axis=1))


def test_lanczos_is_closer_to_pil_lanczos_than_nearest(renderer_of):
    small = random_image(64, 8)  # sharp detail makes the filters differ
    reference = np.asarray(Image.fromarray(small).resize((256, 256), Image.Resampling.LANCZOS))
    errors = {}
    for upscale in ("lanczos", "nearest"):
        r = renderer_of(256, post=replace(PLAIN, upscale=upscale))
        errors[upscale] = np.abs(render(r, small) - reference).mean()
    assert errors["lanczos"] < errors["nearest"] / 4


def test_shader_reload_keeps_the_last_good_program(renderer_of, tmp_path):
    folder = copy_shaders(tmp_path / "shaders")
    image = random_image(32, 9)
    r = renderer_of(32, post=replace(PLAIN, brightness=0.1), shader_dir=folder)
    before = render(r, image)
    assert r.reload() == []  # nothing changed

    grade = folder / "grade.frag.glsl"
    good = grade.read_text()
    grade.write_text(good.replace("f_color = vec4(", "f_color = vec4(oops + "))
    errors = r.reload()
    assert len(errors) == 1
    assert "grade.frag.glsl does not compile" in errors[0] and "oops" in errors[0]
    np.testing.assert_array_equal(render(r, image), before)

    grade.write_text(good.replace("f_color = vec4(clamp(rgb", "f_color = vec4(clamp(1.0 - rgb"))
    assert r.reload() == []
    inverted = render(r, image)
    assert np.abs(inverted - (255 - before)).max() <= 1


def test_a_broken_shader_at_start_is_a_shader_error(tmp_path):
    folder = copy_shaders(tmp_path / "shaders")
    (folder / "vignette.frag.glsl").write_text("#version 330 core\nvoid main() { nonsense; }\n")
    with pytest.raises(ShaderError, match=r"vignette\.frag\.glsl does not compile"):
        Renderer.offscreen(16, shader_dir=folder)
    (folder / "trail.frag.glsl").unlink()
    with pytest.raises(ShaderError, match=r"trail\.frag\.glsl: shader file not found"):
        Renderer.offscreen(16, shader_dir=folder)


def test_without_gl_the_error_says_what_to_install(tmp_path):
    # A fresh process that finds only broken libEGL/libGL files and no display: as if Mesa
    # was not installed.
    for name in ("libEGL.so.1", "libGL.so.1", "libEGL.so", "libGL.so"):
        (tmp_path / name).write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["LD_LIBRARY_PATH"] = str(tmp_path)
    code = (
        "from lyriscope.engine.gl.renderer import Renderer\n"
        "from lyriscope.errors import DeviceError\n"
        "try:\n    Renderer.offscreen(16)\n"
        "except DeviceError as exc:\n    print('DeviceError:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert "DeviceError: no OpenGL 3.3 context" in result.stdout, result.stderr
    assert "libegl1 libegl-mesa0 libgl1-mesa-dri" in result.stdout


# --- the window target ---------------------------------------------------------------------


@pytest.fixture
def xvfb_display(monkeypatch):
    """A private X server; the test is skipped when Xvfb is not installed."""
    with private_display(monkeypatch, screen="640x480x24") as display:
        yield display


def test_window_shows_the_frame_upright(xvfb_display):
    from PIL import ImageGrab, features

    if not features.check("xcb"):
        pytest.skip("Pillow was built without XCB screen capture")
    import glfw

    image = np.zeros((32, 32, 3), np.uint8)
    image[:16] = (255, 0, 0)  # red on top
    image[16:] = (0, 0, 255)
    with Renderer.window(128, post=PLAIN, title="lyriscope test") as r:
        assert not r.should_close
        for _ in range(3):
            r.render(image)
            r.present()
            time.sleep(0.02)
        x, y = glfw.get_window_pos(r.target.window)
        screen = np.asarray(ImageGrab.grab(xdisplay=xvfb_display))
        np.testing.assert_array_equal(r.read()[0, 0], (255, 0, 0))
    assert tuple(screen[y + 10, x + 64]) == (255, 0, 0)
    assert tuple(screen[y + 118, x + 64]) == (0, 0, 255)


def test_fullscreen_letterboxes_the_square_frame(xvfb_display):
    from PIL import ImageGrab, features

    if not features.check("xcb"):
        pytest.skip("Pillow was built without XCB screen capture")
    image = np.full((32, 32, 3), (0, 255, 0), np.uint8)
    with Renderer.window(64, post=PLAIN, fullscreen=True, monitor=0) as r:
        for _ in range(3):
            r.render(image)
            r.present()
            time.sleep(0.02)
        screen = np.asarray(ImageGrab.grab(xdisplay=xvfb_display))  # 640x480: a 480² square
    assert screen.shape[:2] == (480, 640)
    assert tuple(screen[240, 320]) == (0, 255, 0)
    assert tuple(screen[240, 85]) == (0, 255, 0) and tuple(screen[240, 555]) == (0, 255, 0)
    assert tuple(screen[240, 40]) == (0, 0, 0) and tuple(screen[240, 600]) == (0, 0, 0)


def test_a_missing_monitor_is_a_device_error(xvfb_display):
    with pytest.raises(DeviceError, match="monitor 3 not found; 1 connected"):
        Renderer.window(64, fullscreen=True, monitor=3)


def test_a_window_without_a_display_is_a_device_error(monkeypatch):
    import_or_skip("glfw", needs="the GLFW library")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DeviceError, match="no display for a window .*xvfb-run"):
        Renderer.window(64)
