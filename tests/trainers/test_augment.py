"""ADA's augmentation pipeline: each augmentation does what it says, gradients flow, p is tuned."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.optimize
import torch

from lyriscope.trainers.augment import (
    ALL,
    BLIT,
    COLOR,
    CUTOUT,
    FILTER,
    GEOM,
    NOISE,
    PRESETS,
    SYM2,
    AdaController,
    AugmentConfig,
    AugmentPipe,
    band_filters,
    blit,
    filter_images,
    rotate2d,
    scale2d,
    translate2d,
    warp,
)


def _only(*names: str, **strengths: float) -> AugmentConfig:
    """A config where only the named augmentations can happen."""
    multipliers = {name: 1.0 if name in names else 0.0 for name in ALL}
    return dataclasses.replace(AugmentConfig(), **multipliers, **strengths)


def _augment(images: torch.Tensor, config: AugmentConfig, *, p: float = 1.0, seed: int = 0):
    pipe = AugmentPipe(config)
    pipe.p.fill_(p)
    torch.manual_seed(seed)
    with torch.no_grad():
        return pipe(images)


def _noise(n: int, size: int, *, channels: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn([n, channels, size, size], generator=torch.Generator().manual_seed(seed))


def _disk(size: int, radius: float, *, centre: tuple[float, float] | None = None) -> torch.Tensor:
    """A soft-edged bright disk on a dark background, [1, 3, size, size] in [-1, 1]."""
    cx, cy = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    ys, xs = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    r = torch.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    disk = torch.sigmoid((radius - r) * 2) * 2 - 1
    return disk.expand(1, 3, size, size).clone()


def _centroid(images: torch.Tensor) -> torch.Tensor:
    """Brightness-weighted centre (x, y) in pixels of each image, [N, 2]."""
    weight = (images.mean(dim=1) + 1).clamp(min=0)  # [N, H, W]
    ys, xs = torch.meshgrid(
        torch.arange(images.shape[2], dtype=images.dtype),
        torch.arange(images.shape[3], dtype=images.dtype),
        indexing="ij",
    )
    total = weight.sum(dim=(1, 2))
    return (
        torch.stack([(weight * xs).sum(dim=(1, 2)), (weight * ys).sum(dim=(1, 2))], 1)
        / total[:, None]
    )


# ----------------------------------------------------------------------------- identity


@pytest.mark.parametrize("preset", ["bgc", "blit", "geom", "color", "bgcfnc"])
@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_exactly_the_identity(preset, channels):
    images = _noise(4, 32, channels=channels)
    out = _augment(images, AugmentConfig.preset(preset), p=0.0)
    assert torch.equal(out, images)


def test_output_keeps_shape_and_dtype_at_full_strength():
    images = _noise(3, 32, channels=1).to(torch.float64)
    out = _augment(images, AugmentConfig(), p=1.0)
    assert out.shape == images.shape and out.dtype == torch.float64
    assert not torch.allclose(out, images)


# ----------------------------------------------------------------------------- blitting


def test_xflip_mirrors_whole_images_exactly():
    images = _noise(16, 16)
    out = _augment(images, _only("xflip"))
    flipped = [torch.equal(o, x.flip(-1)) for o, x in zip(out, images, strict=True)]
    kept = [torch.equal(o, x) for o, x in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def test_rotate90_gives_exact_quarter_turns():
    images = _noise(24, 16)
    out = _augment(images, _only("rotate90"))
    turns = []
    for o, x in zip(out, images, strict=True):
        matches = [k for k in range(4) if torch.equal(o, torch.rot90(x, k, dims=(1, 2)))]
        assert len(matches) == 1
        turns.append(matches[0])
    assert set(turns) == {0, 1, 2, 3}


def test_integer_translation_shifts_with_reflected_borders():
    size, reach = 32, 4  # xint_max 0.125 of 32 pixels
    images = _noise(12, size)
    out = _augment(images, _only("xint")).numpy()
    padded = np.pad(images.numpy(), [(0, 0), (0, 0), (reach, reach), (reach, reach)], "reflect")
    shifts = []
    for i in range(len(images)):
        found = [
            (dx, dy)
            for dx in range(-reach, reach + 1)
            for dy in range(-reach, reach + 1)
            if np.array_equal(
                out[i], padded[i, :, reach - dy : reach - dy + size, reach - dx : reach - dx + size]
            )
        ]
        assert len(found) == 1, f"image {i} is no whole-pixel shift of its input"
        shifts.append(found[0])
    assert any(shift != (0, 0) for shift in shifts)


# ----------------------------------------------------------------------------- geometry


def _smooth(size: int) -> torch.Tensor:
    """Low-frequency content [1, 1, size, size]: resampling filters barely touch it."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    blob = np.exp(-((xs - 0.4 * size) ** 2 + (ys - 0.6 * size) ** 2) / (2 * (size / 6) ** 2))
    image = blob + 0.3 * np.sin(xs / size * 2.5 + 0.5) + 0.01 * ys
    return torch.tensor(image, dtype=torch.float32)[None, None]


def _to_scipy(g_inv: torch.Tensor, size: int) -> tuple[np.ndarray, np.ndarray]:
    """g_inv [3, 3] in centre-origin (x, y) -> scipy's (row, col) matrix and offset."""
    g = g_inv.double().numpy()
    swap = np.array([[0, 1], [1, 0]])
    matrix = swap @ g[:2, :2] @ swap
    centre = np.full(2, (size - 1) / 2)
    offset = centre - matrix @ centre + swap @ g[:2, 2]
    return matrix, offset


def test_warp_matches_an_independent_spline_resampling():
    size = 32
    image = _smooth(size)
    one = torch.ones(1)
    g_inv = (
        rotate2d(torch.tensor([0.5]))
        @ scale2d(1.15 * one, 0.9 * one)
        @ translate2d(2.3 * one, -1.6 * one)
    )
    out = warp(image, g_inv)[0, 0].numpy()
    matrix, offset = _to_scipy(g_inv[0], size)
    expected = scipy.ndimage.affine_transform(
        image[0, 0].double().numpy(), matrix, offset, order=3, mode="mirror"
    )
    inner = slice(4, size - 4)  # the border depends on how each pads
    np.testing.assert_allclose(out[inner, inner], expected[inner, inner], atol=0.02)


@pytest.mark.parametrize("shift", [(3, 0), (-2, 5), (7, -7)])
def test_warp_by_whole_pixels_equals_the_exact_blit(shift):
    images = _noise(2, 16)
    one = torch.ones(2)
    g_inv = translate2d(shift[0] * one, shift[1] * one)
    torch.testing.assert_close(warp(images, g_inv), blit(images, g_inv), atol=2e-5, rtol=0)


def test_warp_flips_and_quarter_turns_smooth_images_like_the_blit():
    image = _smooth(32)
    for g_inv in (scale2d(-torch.ones(1), torch.ones(1)), rotate2d(torch.tensor([math.pi / 2]))):
        torch.testing.assert_close(warp(image, g_inv), blit(image, g_inv), atol=0.02, rtol=0)


def test_rotation_leaves_a_centred_disk_in_place():
    disk = _disk(32, 8).expand(8, -1, -1, -1)
    out = _augment(disk, _only("rotate"))
    assert (out - disk).abs().mean() < 0.02
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), disk.mean(dim=(1, 2, 3)), atol=0.01, rtol=0)


def test_scale_and_anisotropy_keep_a_centred_disk_centred():
    size = 32
    disk = _disk(size, 6).expand(8, -1, -1, -1)
    out = _augment(disk, _only("scale", "aniso", "rotate"))
    assert not torch.allclose(out, disk, atol=0.1)
    centre = torch.full([8, 2], (size - 1) / 2)
    torch.testing.assert_close(_centroid(out), centre, atol=0.3, rtol=0)


def test_fractional_translation_moves_the_disk_and_keeps_its_brightness():
    disk = _disk(32, 5).expand(8, -1, -1, -1)
    out = _augment(disk, _only("xfrac"))
    moved = (_centroid(out) - _centroid(disk)).norm(dim=1)
    assert (moved > 0.3).sum() >= 4
    # The background is flat, so the reflected border adds nothing: the mean stays.
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), disk.mean(dim=(1, 2, 3)), atol=0.01, rtol=0)


# ----------------------------------------------------------------------------- colour


def test_brightness_adds_one_constant_per_image_at_the_published_strength():
    images = _noise(400, 4)
    out = _augment(images, _only("brightness"))
    offsets = (out - images).flatten(1)  # [N, C*H*W]
    torch.testing.assert_close(offsets, offsets[:, :1].expand_as(offsets), atol=1e-5, rtol=0)
    assert offsets[:, 0].std().item() == pytest.approx(0.2, abs=0.03)  # brightness_std


def test_contrast_scales_around_zero_at_the_published_strength():
    images = _noise(400, 4)
    out = _augment(images, _only("contrast"))
    factors = (out / images).flatten(1)
    torch.testing.assert_close(factors, factors[:, :1].expand_as(factors), atol=1e-4, rtol=1e-4)
    assert torch.log2(factors[:, 0]).std().item() == pytest.approx(0.5, abs=0.06)  # contrast_std


def _luma_chroma(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    luma = images.mean(dim=1, keepdim=True)
    return luma, images - luma


def test_luma_flip_mirrors_the_luma_and_keeps_the_chroma():
    images = _noise(16, 8)
    out = _augment(images, _only("lumaflip"))
    luma, chroma = _luma_chroma(images)
    out_luma, out_chroma = _luma_chroma(out)
    torch.testing.assert_close(out_chroma, chroma, atol=1e-5, rtol=0)
    flipped = [torch.allclose(o, -x, atol=1e-5) for o, x in zip(out_luma, luma, strict=True)]
    kept = [torch.allclose(o, x, atol=1e-5) for o, x in zip(out_luma, luma, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def test_grey_images_see_the_colour_transform_of_a_grey_pixel():
    images = _noise(16, 8, channels=1)
    out = _augment(images, _only("lumaflip", "hue", "saturation"))
    # Hue and saturation leave grey alone; a luma flip negates it.
    flipped = [torch.allclose(o, -x, atol=1e-5) for o, x in zip(out, images, strict=True)]
    kept = [torch.allclose(o, x, atol=1e-5) for o, x in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def test_hue_rotation_keeps_luma_and_chroma_strength():
    images = _noise(16, 8)
    out = _augment(images, _only("hue"))
    luma, chroma = _luma_chroma(images)
    out_luma, out_chroma = _luma_chroma(out)
    torch.testing.assert_close(out_luma, luma, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_chroma.norm(dim=1), chroma.norm(dim=1), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(out_chroma, chroma, atol=0.1)


def test_saturation_scales_the_chroma_and_keeps_the_luma():
    images = _noise(16, 8)
    out = _augment(images, _only("saturation"))
    luma, chroma = _luma_chroma(images)
    out_luma, out_chroma = _luma_chroma(out)
    torch.testing.assert_close(out_luma, luma, atol=1e-5, rtol=0)
    ratio = (out_chroma / chroma).flatten(1)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), atol=1e-3, rtol=1e-3)
    assert (ratio[:, 0] - 1).abs().max() > 0.1


def test_colour_leaves_geometry_alone():
    images = _noise(8, 16)
    out = _augment(images, _only("brightness", "contrast"))

    # An affine map per image: the normalised images are the same.
    def normalise(x):
        x = x - x.mean(dim=(1, 2, 3), keepdim=True)
        return x / x.std(dim=(1, 2, 3), keepdim=True)

    torch.testing.assert_close(normalise(out), normalise(images), atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------- filter, noise, cutout


def test_filter_bands_split_the_spectrum_without_loss():
    bank = band_filters(SYM2, bands=4)  # [4, 43]
    delta = np.zeros(bank.shape[1])
    delta[bank.shape[1] // 2] = 1
    np.testing.assert_allclose(bank.sum(axis=0), delta, atol=1e-12)
    np.testing.assert_allclose(bank.sum(axis=1), [1, 0, 0, 0], atol=1e-12)  # only band 0 has DC
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-12)  # zero phase: nothing moves
    # Finer bands reach higher frequencies: the peak of each response moves up.
    response = np.abs(np.fft.rfft(bank, n=256, axis=1))
    assert list(np.argmax(response, axis=1)) == sorted(np.argmax(response, axis=1))


def test_image_filter_is_a_gain_per_band():
    images = _noise(2, 32)
    out = _augment(images, _only("imgfilter"), seed=5).double().numpy()
    bank = band_filters(SYM2, bands=4)

    def filtered(x, gains):
        """Independent reference: scipy's separable convolution with mirrored borders."""
        kernel = gains @ bank
        along_x = scipy.ndimage.convolve1d(x, kernel, axis=2, mode="mirror")
        return scipy.ndimage.convolve1d(along_x, kernel, axis=1, mode="mirror")

    for i in range(len(images)):
        x = images[i].double().numpy()
        fit = scipy.optimize.least_squares(
            lambda gains, x=x, i=i: (filtered(x, gains) - out[i]).ravel(), np.ones(4)
        )
        np.testing.assert_allclose(filtered(x, fit.x), out[i], atol=1e-4)
        assert np.abs(np.abs(fit.x) - 1).max() > 0.05  # some band changed


def test_filter_with_the_summed_bank_is_the_identity():
    images = _noise(2, 32)
    kernels = torch.as_tensor(band_filters(SYM2, bands=4).sum(axis=0), dtype=torch.float32)
    out = filter_images(images, kernels.expand(2, -1))
    torch.testing.assert_close(out, images, atol=1e-5, rtol=0)


def test_image_filter_says_how_large_images_must_be():
    with pytest.raises(ValueError, match="at least 22 pixels, got 16x16"):
        _augment(_noise(1, 16), _only("imgfilter"))


def test_noise_is_zero_mean_with_half_normal_strength():
    images = _noise(300, 16)
    residual = (_augment(images, _only("noise")) - images).flatten(1)
    sigma = residual.std(dim=1)
    assert residual.mean().abs() < 0.002
    assert sigma.mean().item() == pytest.approx(0.1 * math.sqrt(2 / math.pi), rel=0.08)
    assert sigma.std() > 0.03  # each image gets its own strength


def test_cutout_blanks_one_square_of_half_the_size():
    size = 32
    images = _noise(12, size) + 10  # no pixel is 0 by itself
    out = _augment(images, _only("cutout"))
    for o, x in zip(out, images, strict=True):
        blank = (o == 0).all(dim=0)  # [H, W]
        rows, cols = blank.any(dim=1).nonzero()[:, 0], blank.any(dim=0).nonzero()[:, 0]
        assert blank[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # a rectangle
        assert rows.numel() <= size // 2 and cols.numel() <= size // 2
        assert torch.equal(o[:, ~blank], x[:, ~blank])
    assert any(((o == 0).all(dim=0).sum() == (size // 2) ** 2).item() for o in out)


# ----------------------------------------------------------------------------- gradients


def test_gradients_of_the_whole_pipeline():
    pipe = AugmentPipe().double()
    pipe.p.fill_(1)
    images = _noise(2, 8).double().requires_grad_()

    def augment(x):
        torch.manual_seed(3)  # the same draws in every evaluation
        return pipe(x)

    assert torch.autograd.gradcheck(augment, (images,), fast_mode=True)


def test_gradients_through_filter_noise_and_cutout():
    pipe = AugmentPipe(_only("imgfilter", "noise", "cutout")).double()
    pipe.p.fill_(1)
    images = _noise(1, 24).double().requires_grad_()

    def augment(x):
        torch.manual_seed(4)
        return pipe(x)

    assert torch.autograd.gradcheck(augment, (images,), fast_mode=True)
    assert torch.autograd.gradgradcheck(augment, (images,), fast_mode=True)


def test_second_derivatives_of_the_whole_pipeline_for_r1():
    pipe = AugmentPipe().double()
    pipe.p.fill_(1)
    images = _noise(1, 8).double().requires_grad_()

    def augment(x):
        torch.manual_seed(2)
        return pipe(x)

    assert torch.autograd.gradgradcheck(augment, (images,), fast_mode=True)


def test_second_derivatives_of_the_geometric_part():
    images = _noise(1, 8, channels=1).double().requires_grad_()
    one = torch.ones(1)
    g_inv = rotate2d(torch.tensor([0.4])) @ scale2d(1.2 * one, 0.9 * one) @ translate2d(one, -one)
    assert torch.autograd.gradgradcheck(lambda x: warp(x, g_inv), (images,), fast_mode=True)


# ----------------------------------------------------------------------------- determinism


def test_same_rng_state_gives_the_same_augmentation():
    images = _noise(4, 16)
    pipe = AugmentPipe()
    pipe.p.fill_(0.8)
    torch.manual_seed(11)
    state = torch.get_rng_state()
    first = pipe(images)
    second = pipe(images)
    torch.set_rng_state(state)
    assert torch.equal(pipe(images), first)
    assert not torch.equal(first, second)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("name", "groups"),
    [
        ("blit", "b"),
        ("geom", "g"),
        ("color", "c"),
        ("filter", "f"),
        ("noise", "n"),
        ("cutout", "x"),
        ("bg", "bg"),
        ("bgc", "bgc"),
        ("bgcf", "bgcf"),
        ("bgcfn", "bgcfn"),
        ("bgcfnc", "bgcfnx"),
    ],
)
def test_presets_switch_whole_groups(name, groups):
    config = AugmentConfig.preset(name)
    by_letter = {"b": BLIT, "g": GEOM, "c": COLOR, "f": FILTER, "n": NOISE, "x": CUTOUT}
    for letter, group in by_letter.items():
        expected = 1.0 if letter in groups else 0.0
        assert all(getattr(config, m) == expected for m in group), (name, letter)


def test_the_default_is_bgc_and_every_preset_has_a_name():
    assert AugmentConfig.preset("bgc") == AugmentConfig()
    assert set(PRESETS) == {"blit", "geom", "color", "filter", "noise", "cutout",
                            "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"}  # fmt: skip


def test_bad_config_says_what_is_allowed():
    with pytest.raises(
        ValueError, match="choose one of blit, geom, color, filter, noise, cutout, bg, bgc, bgcf"
    ):
        AugmentConfig.preset("bgcx")
    with pytest.raises(ValueError, match="scale_std=-0.1"):
        AugmentConfig(scale_std=-0.1)


def test_p_is_saved_but_the_filter_is_not():
    pipe = AugmentPipe()
    pipe.p.fill_(0.25)
    state = pipe.state_dict()
    assert list(state) == ["p"]
    other = AugmentPipe()
    other.load_state_dict(state)
    assert float(other.p) == 0.25


# ----------------------------------------------------------------------------- ADA


def _run(controller: AdaController, pipe: AugmentPipe, logits: list[float], batches: range):
    results = []
    for batch_idx in batches:
        controller.accumulate(torch.tensor(logits)[:, None])
        results.append(controller.step(pipe, batch_idx=batch_idx))
    return results


def test_overconfident_d_raises_p_at_the_published_rate():
    pipe = AugmentPipe()
    controller = AdaController(batch=32)
    results = _run(controller, pipe, [2.0, 0.5, 1.0, 3.0], range(1, 13))
    # Adjusts every 4th minibatch; rt stays a tensor on the logits' device (no sync).
    assert [None if r is None else float(r) for r in results] == [None, None, None, 1.0] * 3
    step = 32 * 4 / (500 * 1000)
    assert float(pipe.p) == pytest.approx(3 * step)


def test_p_falls_when_d_is_unsure_and_stops_at_zero():
    pipe = AugmentPipe()
    pipe.p.fill_(0.0008)
    controller = AdaController(batch=64, target=0.6)
    step = 64 * 4 / (500 * 1000)
    # rt = (3 - 1) / 4 = 0.5 < 0.6: one step down, then the clamp at 0.
    results = _run(controller, pipe, [1.0, 1.0, 1.0, -1.0], range(1, 5))
    assert float(results[3]) == 0.5
    assert float(pipe.p) == pytest.approx(0.0008 - step)
    _run(controller, pipe, [1.0, 1.0, 1.0, -1.0], range(5, 9))
    assert float(pipe.p) == 0.0


def test_controller_state_resumes_exactly():
    # The first half alone would say rt = 2/6, the second alone 4/6: only the sum is right.
    logits = [[1.0, 2.0, 0.3], [0.5, -0.4, -0.1], [-1.0, 1.0, 2.0], [3.0, 1.0, 1.0]]
    pipe_a, pipe_b = AugmentPipe(), AugmentPipe()
    pipe_a.p.fill_(0.5)
    a = AdaController(batch=3, interval=4, ada_kimg=1)
    for batch_idx, row in enumerate(logits[:2], start=1):
        a.accumulate(torch.tensor(row))
        a.step(pipe_a, batch_idx=batch_idx)
    b = AdaController(batch=3, interval=4, ada_kimg=1)
    b.load_state_dict(a.state_dict())
    pipe_b.load_state_dict(pipe_a.state_dict())
    for controller, pipe in ((a, pipe_a), (b, pipe_b)):
        for batch_idx, row in enumerate(logits[2:], start=3):
            controller.accumulate(torch.tensor(row))
            rt = controller.step(pipe, batch_idx=batch_idx)
        assert float(rt) == pytest.approx(
            6 / 12
        )  # signs: +1 +1 +1 | +1 -1 -1 | -1 +1 +1 | +1 +1 +1
    assert float(pipe_a.p) == float(pipe_b.p) == pytest.approx(0.5 - 3 * 4 / 1000)


@pytest.mark.gpu
def test_pipeline_runs_on_cuda_like_on_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    images = _noise(4, 32)
    pipe = AugmentPipe(AugmentConfig.preset("bgcfnc")).cuda()
    assert torch.equal(pipe(images.cuda()).cpu(), images)  # p == 0
    pipe.p.fill_(1)
    out = pipe(images.cuda().requires_grad_())
    assert out.device.type == "cuda" and out.shape == images.shape
    one = torch.ones(4)
    g_inv = rotate2d(0.3 * one) @ translate2d(1.5 * one, -2 * one)
    torch.testing.assert_close(
        warp(images.cuda(), g_inv.cuda()).cpu(), warp(images, g_inv), atol=1e-4, rtol=0
    )


def test_controller_rejects_an_empty_batch():
    with pytest.raises(ValueError, match="batch >= 1"):
        AdaController(batch=0)
