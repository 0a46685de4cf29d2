"""The reference ops of StyleGAN2: against independent computations, and their gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from lyriscope.trainers.ops import custom_ops, upfirdn2d
from lyriscope.trainers.ops.bias_act import ACTIVATIONS, activation_gain, bias_act
from lyriscope.trainers.ops.conv2d_resample import conv2d_resample, conv2d_resample_generic
from lyriscope.trainers.ops.grid_sample import grid_sample
from lyriscope.trainers.ops.modulated_conv import modulated_conv2d

# ----------------------------------------------------------------------------- upfirdn2d


def _upfirdn2d_numpy(x, f, *, up, down, pad, flip_filter, gain):
    """Independent reference: numpy zero insertion and padding, scipy 2-D convolution."""
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = pad
    f2 = np.outer(f, f) if f.ndim == 1 else f
    f2 = f2 * gain
    n, c, h, w = x.shape
    out = []
    for img in x.reshape(n * c, h, w):
        big = np.zeros((h * upy, w * upx))
        big[::upy, ::upx] = img
        big = np.pad(big, ((max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
        big = big[
            max(-py0, 0) : big.shape[0] - max(-py1, 0), max(-px0, 0) : big.shape[1] - max(-px1, 0)
        ]
        op = scipy.signal.correlate2d if flip_filter else scipy.signal.convolve2d
        out.append(op(big, f2, mode="valid")[::downy, ::downx])
    return np.stack(out).reshape(n, c, *out[0].shape)


@pytest.mark.parametrize(
    "up, down, pad",
    [
        ((1, 1), (1, 1), (0, 0, 0, 0)),
        ((2, 2), (1, 1), (2, 1, 2, 1)),
        ((1, 1), (2, 2), (1, 1, 1, 1)),
        ((2, 1), (1, 2), (3, 0, 1, 2)),
        ((3, 3), (2, 2), (-1, 2, 0, -2)),
    ],
)
@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_matches_scipy_convolution(up, down, pad, separable, flip_filter):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    taps = np.array([1.0, 2.0, 5.0, 3.0])  # asymmetric, so a wrong flip shows
    f = taps if separable else np.outer(taps, [1.0, 4.0, 2.0])
    expected = _upfirdn2d_numpy(x, f, up=up, down=down, pad=pad, flip_filter=flip_filter, gain=1.5)
    got = upfirdn2d.upfirdn2d(
        torch.from_numpy(x), torch.from_numpy(f), up=up, down=down, padding=pad,
        flip_filter=flip_filter, gain=1.5,
    )  # fmt: skip
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_setup_filter_is_normalised_outer_product():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-7)
    assert upfirdn2d.setup_filter([1, 3, 3, 1], separable=True).shape == (4,)


@pytest.mark.parametrize(
    "factor, taps",
    [(2, [1, 3, 3, 1]), (4, [1, 2, 3, 4, 3, 2, 1])],  # each phase of the taps sums the same
)
def test_resampling_keeps_a_constant_image_and_sizes(factor, taps):
    f = upfirdn2d.setup_filter(taps)
    x = torch.full([1, 2, 32, 32], 0.7)
    up = upfirdn2d.upsample2d(x, f, up=factor)
    down = upfirdn2d.downsample2d(x, f, down=factor)
    same = upfirdn2d.filter2d(x, f)
    assert up.shape == (1, 2, 32 * factor, 32 * factor)
    assert down.shape == (1, 2, 32 // factor, 32 // factor)
    assert same.shape == x.shape
    # Away from the zero-padded border every resampled pixel keeps the constant.
    torch.testing.assert_close(up[..., 4:-4, 4:-4], torch.full_like(up[..., 4:-4, 4:-4], 0.7))
    torch.testing.assert_close(down[..., 2:-2, 2:-2], torch.full_like(down[..., 2:-2, 2:-2], 0.7))
    torch.testing.assert_close(same[..., 4:-4, 4:-4], torch.full_like(same[..., 4:-4, 4:-4], 0.7))


def test_upfirdn2d_gradients():
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()

    def op(t):
        return upfirdn2d.upfirdn2d(t, f, up=2, down=2, padding=(2, 1, 1, 2))

    assert torch.autograd.gradcheck(op, (x,))
    assert torch.autograd.gradgradcheck(op, (x,))


# ----------------------------------------------------------------------------- bias_act


def _activation_numpy(name, x, alpha):
    return {
        "linear": lambda: x,
        "relu": lambda: np.maximum(x, 0),
        "lrelu": lambda: np.where(x > 0, x, alpha * x),
        "tanh": lambda: np.tanh(x),
        "sigmoid": lambda: 1 / (1 + np.exp(-x)),
        "elu": lambda: np.where(x > 0, x, np.expm1(x)),
        "selu": lambda: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
        "softplus": lambda: np.log1p(np.exp(x)),
        "swish": lambda: x / (1 + np.exp(-x)),
    }[name]()


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_bias_act_defaults_match_formulas(act):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 2, 2)) * 2
    b = rng.standard_normal(5)
    gain = np.sqrt(2) if act in ("relu", "lrelu", "swish") else 1.0
    assert activation_gain(act) == pytest.approx(gain)
    expected = _activation_numpy(act, x + b[None, :, None, None], 0.2) * gain
    got = bias_act(torch.from_numpy(x), torch.from_numpy(b), act=act)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_bias_act_alpha_gain_clamp_and_dim():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 6))
    b = rng.standard_normal(6)
    expected = np.clip(_activation_numpy("lrelu", x + b, 0.05) * 3.0, -0.8, 0.8)
    got = bias_act(
        torch.from_numpy(x),
        torch.from_numpy(b),
        dim=2,
        act="lrelu",
        alpha=0.05,
        gain=3.0,
        clamp=0.8,
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_bias_act_gradients(act):
    # Keep inputs away from relu's kink, where finite differences are wrong.
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    x = (x + 0.2 * x.sign()).requires_grad_()
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)

    def op(t, bias):
        return bias_act(t, bias, act=act, gain=1.3, clamp=5.0)

    assert torch.autograd.gradcheck(op, (x, b))
    assert torch.autograd.gradgradcheck(op, (x, b))


def test_bias_act_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        bias_act(torch.zeros(2, 3), act="gelu")
    with pytest.raises(ValueError, match=r"bias must have shape \[3\]"):
        bias_act(torch.zeros(2, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="impl must be one of"):
        bias_act(torch.zeros(2, 3), impl="triton")


# ----------------------------------------------------------------------------- conv2d_resample


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("up, down", [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample_shortcuts_equal_literal_route(kernel, up, down, groups, flip_weight):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, kernel, kernel, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()
    kwargs = dict(
        f=f, up=up, down=down, padding=kernel // 2, groups=groups, flip_weight=flip_weight
    )
    fast = conv2d_resample(x, w, **kwargs)
    literal = conv2d_resample_generic(x, w, **kwargs)
    assert fast.shape == (2, 6, 8 * up // down, 8 * up // down)
    torch.testing.assert_close(fast, literal, rtol=1e-10, atol=1e-10)


def test_conv2d_resample_without_resampling_is_conv2d():
    x = torch.randn(1, 3, 9, 7, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(conv2d_resample(x, w, padding=1), F.conv2d(x, w, padding=1))
    torch.testing.assert_close(
        conv2d_resample(x, w, padding=1, flip_weight=False), F.conv2d(x, w.flip([2, 3]), padding=1)
    )


@pytest.mark.parametrize("up, down", [(2, 1), (1, 2)])
def test_conv2d_resample_gradients(up, down):
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()

    def op(t, weight):
        return conv2d_resample(t, weight, f=f, up=up, down=down, padding=1)

    assert torch.autograd.gradcheck(op, (x, w))
    assert torch.autograd.gradgradcheck(op, (x, w))


# ----------------------------------------------------------------------------- modulated conv


def _modconv_per_sample(x, weight, styles, *, demodulate, up, f, noise):
    """Reference by definition: one ordinary conv per sample with its own scaled weight."""
    out = []
    for i in range(x.shape[0]):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        out.append(
            conv2d_resample_generic(x[i : i + 1], w, f=f, up=up, padding=weight.shape[-1] // 2)
        )
    y = torch.cat(out)
    return y + noise if noise is not None else y


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("with_noise", [False, True])
def test_fused_and_plain_modconv_agree_with_definition(demodulate, up, with_noise):
    torch.manual_seed(3)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    styles = torch.randn(3, 4, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()
    noise = torch.randn(3, 1, 6 * up, 6 * up, dtype=torch.float64) if with_noise else None
    kwargs = dict(noise=noise, up=up, padding=1, resample_filter=f, demodulate=demodulate)
    flip = up == 1  # as the synthesis layers call it
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, flip_weight=flip, **kwargs)
    plain = modulated_conv2d(x, weight, styles, fused_modconv=False, flip_weight=flip, **kwargs)
    w_ref = weight if flip else weight.flip([2, 3])
    expected = _modconv_per_sample(x, w_ref, styles, demodulate=demodulate, up=up, f=f, noise=noise)
    torch.testing.assert_close(fused, expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(plain, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("fused", [True, False])
def test_modconv_gradients(fused):
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    styles = (torch.rand(2, 2, dtype=torch.float64) + 0.5).requires_grad_()

    def op(t, wt, s):
        return modulated_conv2d(t, wt, s, padding=1, fused_modconv=fused)

    assert torch.autograd.gradcheck(op, (x, weight, styles))
    assert torch.autograd.gradgradcheck(op, (x, weight, styles))


# ----------------------------------------------------------------------------- grid_sample


@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_torch_values_and_gradients(align_corners):
    torch.manual_seed(4)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    # Points inside, on and beyond the border; zeros padding outside.
    grid = (torch.rand(2, 4, 6, 2, dtype=torch.float64) * 2.6 - 1.3).requires_grad_()
    ours = grid_sample(x, grid, align_corners=align_corners)
    theirs = F.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ours)
    ours_grads = torch.autograd.grad(ours, (x, grid), g)
    theirs_grads = torch.autograd.grad(theirs, (x, grid), g)
    for a, b in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_grid_sample_double_backward():
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    # Away from pixel centres, where bilinear weights have kinks.
    grid = (torch.rand(1, 3, 3, 2, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(grid_sample, (x, grid))
    assert torch.autograd.gradgradcheck(grid_sample, (x, grid))


def test_grid_sample_identity_grid_returns_input():
    x = torch.randn(1, 1, 4, 6)
    theta = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]])
    grid = F.affine_grid(theta, [1, 1, 4, 6], align_corners=False)
    torch.testing.assert_close(grid_sample(x, grid), x)


# ----------------------------------------------------------------------------- custom_ops


def test_cpu_tensors_pick_the_reference_path_silently():
    x = torch.zeros(1, 1, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for impl in ("cuda", "ref"):
            assert not custom_ops.wants_fused(impl, x)


def test_unbuildable_plugin_warns_once_and_gives_none():
    name = "lyriscope_test_missing_plugin"
    with pytest.warns(RuntimeWarning, match=f"fused CUDA op '{name}' is unavailable"):
        assert custom_ops.load_plugin(name, ("does_not_exist.cu",)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert custom_ops.load_plugin(name, ("does_not_exist.cu",)) is None
