"""Every layer form of the fast plan gives the reference's images; the Triton epilogue equals
the PyTorch one.

The tests run on CUDA where there is one (float32, eager, TF32 off), else on the CPU, where
the Triton kernel runs in Triton's interpreter. Triton reads TRITON_INTERPRET when a kernel
is decorated, i.e. when synth.triton_epilogue is first imported, so it is set here, at
import, before anything imports that module.
"""

from __future__ import annotations

import itertools
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lyriscope.engine.synth.fastpath import (  # noqa: E402  (after TRITON_INTERPRET)
    FastOptions,
    FastPathWarning,
    FastSynthesis,
    SynthesisPlan,
    probe_ws,
    reference_images,
    to_uint8,
    torch_epilogue,
)
from lyriscope.engine.synth.picker import LayerImpl  # noqa: E402
from lyriscope.trainers.checkpoint import build_generator  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# fp32 forms vs reference on [-1, 1] pixels: rounding order only (cuDNN picks other algorithms).
FLOAT_TOLERANCE = 1e-3 if DEVICE.type == "cuda" else 1e-4

# One thread: tiny convolutions on a shared CPU; full float32 on CUDA.
pytestmark = pytest.mark.usefixtures("one_thread", "no_tf32")


def _triton_epilogue():
    """The kernel module, or a skip saying why it cannot run here."""
    triton_epilogue = pytest.importorskip(
        "lyriscope.engine.synth.triton_epilogue", reason="triton is not installed"
    )
    if not torch.cuda.is_available():
        from triton.runtime.interpreter import InterpretedFunction

        if not isinstance(triton_epilogue._epilogue_kernel, InterpretedFunction):
            pytest.skip("triton_epilogue was imported before TRITON_INTERPRET was set")
    return triton_epilogue


def _generator(**synthesis: object) -> torch.nn.Module:
    """32², 4 blocks (3 with 2x up-convs), 32 channels, visible noise; NVlabs' options."""
    config = {
        "z_dim": 512,
        "c_dim": 0,
        "w_dim": 512,
        "img_resolution": 32,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 512, "channel_max": 32, **synthesis},
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        G = build_generator(config).eval().requires_grad_(False)
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):  # random init leaves them at 0
                p.fill_(0.3)
    return G.to(DEVICE)


@pytest.fixture(scope="module")
def G() -> torch.nn.Module:
    """Clamped where it bites (0.5), noisy, with up-convs: every part of the epilogue works."""
    return _generator(conv_clamp=0.5)


def _options(**kwargs: object) -> FastOptions:
    """float32 and eager on CUDA too, so that forms compare at float32 precision."""
    return FastOptions(dtype="fp32", cuda_graph=False, **kwargs)


def _assert_like_reference(fast: FastSynthesis, G: torch.nn.Module, batch: int) -> None:
    ws = probe_ws(G, batch, device=DEVICE, seed=11)
    ref = reference_images(G, ws)
    got = fast.float_images(ws)
    assert got.shape == ref.shape
    assert (got - ref).abs().max() < FLOAT_TOLERANCE
    diff = (to_uint8(got).int() - to_uint8(ref).int()).abs()
    assert diff.max() <= 2 and diff.float().mean() <= 0.1


def test_the_clamp_bites(G):
    ws = probe_ws(G, 1, device=DEVICE)
    assert (reference_images(G, ws) - reference_images(_generator(), ws)).abs().max() > 1e-2


@pytest.mark.parametrize(
    "conv, epilogue, channels_last, batch",
    list(itertools.product(("grouped", "scaled"), ("torch", "triton"), (False, True), (1, 3))),
)
def test_every_layer_form_equals_reference(G, conv, epilogue, channels_last, batch):
    if epilogue == "triton":
        _triton_epilogue()
    layer = LayerImpl(conv=conv, epilogue=epilogue, fir="ref")
    options = _options(channels_last=channels_last, layer=layer)
    fast = FastSynthesis(G, batch=batch, options=options)
    assert fast.notes == []
    layers = len(fast.plan.layers())
    assert f"conv {conv}:{layers}" in fast.mode and f"epilogue {epilogue}:{layers}" in fast.mode
    _assert_like_reference(fast, G, batch)


@pytest.mark.parametrize(
    "conv, epilogue", list(itertools.product(("grouped", "scaled"), ("torch", "triton")))
)
def test_subpixel_up_convs_in_every_form(G, conv, epilogue):
    if epilogue == "triton":
        _triton_epilogue()
    options = _options(
        channels_last=True, subpixel=True, layer=LayerImpl(conv=conv, epilogue=epilogue)
    )
    fast = FastSynthesis(G, batch=3, options=options)
    assert "subpixel" in fast.mode
    _assert_like_reference(fast, G, 3)


def test_forms_can_differ_from_layer_to_layer(G):
    """The picker's choices are per shape: a plan mixing forms is still the reference."""
    plan = SynthesisPlan.build(G, batch=2)
    forms = itertools.cycle([LayerImpl(conv="scaled"), LayerImpl(), LayerImpl(conv="scaled")])
    plan.use({plan.shape_key(conv): next(forms) for conv in plan.layers()})
    assert "grouped:" in plan.summary() and "scaled:" in plan.summary()
    ws = probe_ws(G, 2, device=DEVICE, seed=3)
    assert (plan.forward(ws) - reference_images(G, ws)).abs().max() < FLOAT_TOLERANCE


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_scaled_form_in_reduced_precision_is_as_close_as_grouped(G, dtype):
    """The shared weight is scaled by 1/sqrt(fan-in) so fp16 sums stay in range; run on the CPU."""
    ws = probe_ws(G, 2, device=DEVICE, seed=7)
    ref = reference_images(G, ws).clamp(-1, 1)
    errors = {}
    for conv in ("grouped", "scaled"):
        plan = SynthesisPlan.build(G, batch=2, dtype=dtype, channels_last=True)
        plan.use({plan.shape_key(c): LayerImpl(conv=conv) for c in plan.layers()})
        error = (plan.forward(ws).clamp(-1, 1) - ref).abs()
        errors[conv] = (float(error.max()), float(error.mean()))
    options = FastOptions()
    assert errors["scaled"][0] <= options.max_abs_error, errors
    assert errors["scaled"][1] <= max(2 * errors["grouped"][1], options.mean_abs_error / 2), errors


def test_a_form_out_of_tolerance_falls_back_to_todays(G, monkeypatch):
    """The tolerance check guards the chosen forms: a broken form is dropped with one warning."""
    original = SynthesisPlan._scaled_conv

    def broken(self, *args, **kwargs):
        return original(self, *args, **kwargs) * 1.5

    monkeypatch.setattr(SynthesisPlan, "_scaled_conv", broken)
    with pytest.warns(FastPathWarning, match="chosen layer forms"):
        fast = FastSynthesis(G, options=_options(layer=LayerImpl(conv="scaled")))
    assert "conv grouped:" in fast.mode and "scaled" not in fast.mode
    _assert_like_reference(fast, G, 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("conv, epilogue", [("scaled", "triton"), ("scaled", "torch")])
def test_cuda_graph_of_every_form_in_half_precision(conv, epilogue):
    G = _generator(conv_clamp=256)  # fp16 models clamp at 256
    options = FastOptions(
        dtype="fp16",
        max_abs_error=0.15,
        mean_abs_error=0.01,
        layer=LayerImpl(conv=conv, epilogue=epilogue, fir="ref"),
    )
    fast = FastSynthesis(G, batch=3, options=options)
    assert "cuda-graph" in fast.mode and "fp16" in fast.mode, fast.notes
    assert f"conv {conv}:" in fast.mode and f"epilogue {epilogue}:" in fast.mode
    for seed in (1, 2):  # a second replay with new ws gives that ws's image
        ws = probe_ws(G, 3, device=DEVICE, seed=seed)
        diff = (fast(ws).int() - to_uint8(reference_images(G, ws)).int()).abs()
        assert diff.max() <= 20 and diff.float().mean() < 1.0  # as the grouped form's test


# ----------------------------------------------------------------------------- the kernel


def _epilogue_case(dtype, channels_last, *, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(3, 5, 6, 7, generator=generator) * 2).to(dtype)  # [N, C, H, W]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    scale = torch.rand(3, 5, generator=generator) + 0.5  # [N, C] float32
    bias = torch.randn(5, generator=generator).to(dtype)  # [C]
    noise = torch.randn(1, 1, 6, 7, generator=generator).to(dtype)  # [1, 1, H, W]
    return tuple(t.to(DEVICE) for t in (x, scale, bias, noise))


EPILOGUES = [  # (scale, bias, noise, slope, clamp): the plan's combinations and the extremes
    (True, True, True, 0.2, None),  # a scaled conv layer
    (False, True, True, 0.2, 1.0),  # a grouped conv layer with clamp
    (False, False, True, 0.2, None),  # a grouped plain conv: bias already in the conv
    (False, True, False, 1.0, 0.5),  # toRGB
    (True, True, False, 0.0, 2.0),  # relu
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", EPILOGUES)
def test_triton_epilogue_equals_torch_epilogue(dtype, channels_last, case):
    triton_epilogue = _triton_epilogue()
    use_scale, use_bias, use_noise, slope, clamp = case
    x, scale, bias, noise = _epilogue_case(dtype, channels_last)
    options = dict(
        scale=scale if use_scale else None,
        bias=bias if use_bias else None,
        noise=noise if use_noise else None,
        slope=slope,
        clamp=clamp,
    )
    exact = torch_epilogue(x.float(), **options)  # fp32 maths, rounded once below
    want = torch_epilogue(x.clone(), **options)
    got = triton_epilogue.epilogue(x, **options)
    assert got.data_ptr() == x.data_ptr() and got.stride() == want.stride()  # in place
    if dtype == torch.float32:
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        return
    # Computed in fp32 and rounded once: within one unit of the last place of the result...
    ulp = torch.finfo(dtype).eps * exact.abs() + torch.finfo(dtype).tiny
    assert ((got.float() - exact).abs() <= ulp).all()
    # ...and as close to the PyTorch epilogue (which rounds after every step) as that is.
    assert (got.float() - want.float()).abs().max() <= (
        want.float() - exact
    ).abs().max() + ulp.max()


def test_triton_epilogue_takes_flat_noise_and_checks_shapes():
    triton_epilogue = _triton_epilogue()
    x, scale, bias, noise = _epilogue_case(torch.float32, False, seed=1)
    want = torch_epilogue(x.clone(), bias=bias, noise=noise)
    got = triton_epilogue.epilogue(x.clone(), bias=bias, noise=noise[0, 0])  # [H, W]
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="scale has 5 elements, expected 15"):
        triton_epilogue.epilogue(x, scale=scale[0])
    with pytest.raises(ValueError, match="NCHW or channels-last"):
        triton_epilogue.epilogue(x.transpose(2, 3))
