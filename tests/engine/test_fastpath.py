"""The fast synthesis path gives the reference's images, and falls back to it when it cannot run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lyriscope.engine.synth.fastpath import (
    FastOptions,
    FastPathWarning,
    FastSynthesis,
    HostFrames,
    SynthesisPlan,
    probe_ws,
    reference_images,
    to_uint8,
)
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.trainers.checkpoint import build_generator, save_model
from lyriscope.trainers.random_model import random_generator

CPU = torch.device("cpu")
FLOAT_TOLERANCE = 1e-4  # fp32 plan vs reference on [-1, 1] pixels: rounding order only
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _generator(size: int = 32, **synthesis: object) -> torch.nn.Module:
    """A small random generator; synthesis options (architecture, conv_clamp, ...) as NVlabs."""
    config = {
        "z_dim": 512,
        "c_dim": 0,
        "w_dim": 512,
        "img_resolution": size,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 512, "channel_max": 32, **synthesis},
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        G = build_generator(config).eval().requires_grad_(False)
        # Random init leaves noise strengths at 0; give the noise a visible effect to test.
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    return G


@pytest.fixture(scope="module")
def G() -> torch.nn.Module:
    return _generator()


@pytest.mark.parametrize(
    "batch, channels_last, noise_mode, subpixel",
    [
        (1, False, "const", False),
        (3, True, "const", False),
        (1, True, "none", False),
        (3, False, "none", False),
        (1, False, "const", True),
        (3, True, "const", True),
    ],
)
def test_plan_equals_reference(G, batch, channels_last, noise_mode, subpixel):
    options = FastOptions(channels_last=channels_last, noise_mode=noise_mode, subpixel=subpixel)
    fast = FastSynthesis(G, batch=batch, options=options)
    assert ("subpixel" in fast.mode) == subpixel
    ws = probe_ws(G, batch, device=CPU, seed=11)
    ref = reference_images(G, ws, noise_mode=noise_mode)
    got = fast.float_images(ws)
    assert fast.mode.startswith("plan fp32")
    assert got.shape == ref.shape == (batch, 3, 32, 32)
    assert (got - ref).abs().max() < FLOAT_TOLERANCE
    frames = fast(ws)
    assert frames.dtype == torch.uint8 and frames.shape == (batch, 32, 32, 3)
    assert (frames.int() - to_uint8(ref).int()).abs().max() <= 1


def test_noise_modes_differ(G):
    """The plan really adds the const noise: 'const' and 'none' give different images."""
    ws = probe_ws(G, 1, device=CPU)
    const = FastSynthesis(G, options=FastOptions(noise_mode="const")).float_images(ws)
    none = FastSynthesis(G, options=FastOptions(noise_mode="none")).float_images(ws)
    assert (const - none).abs().max() > 1e-3


def test_clamped_model_equals_reference():
    """A conv_clamp small enough to bite is applied where the reference applies it."""
    G = _generator(conv_clamp=0.5)
    ws = probe_ws(G, 2, device=CPU)
    ref = reference_images(G, ws)
    unclamped = reference_images(_generator(), ws)
    assert (ref - unclamped).abs().max() > 1e-2  # the clamp changes the image
    got = FastSynthesis(G, batch=2).float_images(ws)
    assert (got - ref).abs().max() < FLOAT_TOLERANCE


def test_other_batch_sizes_run_eagerly(G):
    fast = FastSynthesis(G, batch=1)
    ws = probe_ws(G, 4, device=CPU, seed=5)
    assert (fast.float_images(ws) - reference_images(G, ws)).abs().max() < FLOAT_TOLERANCE


def test_plan_of_a_published_size_model():
    """The random-weight generator the bench uses (64², 4 blocks of up-convs) matches too."""
    G = random_generator(64, channel_base=1024, channel_max=64, mapping_layers=2)
    ws = probe_ws(G, 1, device=CPU)
    for subpixel in (False, True):
        plan = SynthesisPlan.build(G, batch=1, subpixel=subpixel)
        assert (plan.forward(ws) - reference_images(G, ws)).abs().max() < FLOAT_TOLERANCE


def test_unsupported_architecture_falls_back_with_one_warning():
    G = _generator(architecture="resnet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = FastSynthesis(G)
        ws = probe_ws(G, 1, device=CPU)
        frames = fast(ws)
        fast(ws)
    ours = [w for w in caught if issubclass(w.category, FastPathWarning)]
    assert len(ours) == 1 and "resnet" in str(ours[0].message)
    assert fast.mode == "reference fp32"
    assert torch.equal(frames, to_uint8(reference_images(G, ws)))


def test_half_precision_on_cpu_falls_back_to_float32(G):
    with pytest.warns(FastPathWarning, match="needs CUDA"):
        fast = FastSynthesis(G, options=FastOptions(dtype="fp16"))
    assert fast.mode.startswith("plan fp32")


@pytest.mark.parametrize("bad", [dict(noise_mode="random"), dict(dtype="fp8")])
def test_options_are_checked(bad):
    with pytest.raises(ValueError):
        FastOptions(**bad)


def test_host_frames_on_cpu_hand_back_the_frame_at_once():
    frames = HostFrames((4, 4, 3), device=CPU)
    image = torch.arange(48, dtype=torch.uint8).reshape(4, 4, 3)
    out = frames.push(image)
    assert frames.depth == 0
    np.testing.assert_array_equal(out, image.numpy())
    assert frames.flush() == []


def test_runtime_fast_option_gives_the_reference_frames(tmp_path):
    G = random_generator(32, channel_base=256, channel_max=32, mapping_layers=2, seed=4)
    save_model(tmp_path / "m.safetensors", G)
    ws = probe_ws(G, 2, device=CPU)
    reference = Generator([tmp_path / "m.safetensors"], options=RuntimeOptions(device="cpu"))
    fast = Generator([tmp_path / "m.safetensors"], options=RuntimeOptions(device="cpu", fast=True))
    assert fast.line(0).fast is not None and reference.line(0).fast is None
    diff = np.abs(fast.synthesize(0, ws).astype(int) - reference.synthesize(0, ws).astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01


# ----------------------------------------------------------------------------- CUDA


@pytest.fixture(scope="module")
def G_cuda() -> torch.nn.Module:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return _generator(size=64).cuda()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize(
    "dtype, subpixel", [("fp32", False), ("fp16", False), ("bf16", False), ("fp16", True)]
)
def test_cuda_graph_equals_reference(G_cuda, dtype, subpixel, no_tf32):
    options = FastOptions(dtype=dtype, max_abs_error=0.15, mean_abs_error=0.01, subpixel=subpixel)
    fast = FastSynthesis(G_cuda, batch=1, options=options)
    assert "cuda-graph" in fast.mode, fast.notes
    for seed in (1, 2):  # a second replay with new ws gives that ws's image
        ws = probe_ws(G_cuda, 1, device=G_cuda.synthesis.b4.const.device, seed=seed)
        ref = to_uint8(reference_images(G_cuda, ws)).int()
        got = fast(ws).int()
        tolerance = 1 if dtype == "fp32" else 20
        assert (got - ref).abs().max() <= tolerance
        assert (got - ref).abs().float().mean() < (0.01 if dtype == "fp32" else 1.0)


@pytest.mark.gpu
@needs_cuda
def test_cuda_compile_equals_reference(G_cuda, no_tf32):
    fast = FastSynthesis(G_cuda, options=FastOptions(dtype="fp32", compile=True))
    ws = probe_ws(G_cuda, 1, device=torch.device("cuda"))
    assert (fast.float_images(ws) - reference_images(G_cuda, ws)).abs().max() < 1e-3


@pytest.mark.gpu
@needs_cuda
def test_cuda_host_frames_lag_one_frame(G_cuda):
    fast = FastSynthesis(G_cuda)
    frames = HostFrames((64, 64, 3), device=torch.device("cuda"), stream=fast.stream)
    assert frames.depth == 1
    expected, shown = [], []
    for seed in range(4):
        ws = probe_ws(G_cuda, 1, device=torch.device("cuda"), seed=seed)
        image = fast(ws)[0]
        expected.append(image.cpu().numpy())
        out = frames.push(image)
        if out is not None:
            shown.append(out.copy())
    shown += [out.copy() for out in frames.flush()]
    assert len(shown) == 4
    for want, got in zip(expected, shown, strict=True):
        np.testing.assert_array_equal(got, want)
