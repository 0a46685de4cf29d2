"""The fused-op paths of bias_act and upfirdn2d.

On CPU the kernels themselves cannot run, so Python transcriptions of them
(kernel_models.py) stand in for the built plugin: that checks the autograd wiring
around the kernels (gradient geometry, derivative modes, layouts) and the kernels'
index arithmetic and derivative table against the reference path. The tests marked
`gpu` build the real kernels and compare them with the reference on CUDA.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest
import torch
from kernel_models import BiasActKernel, UpFirDn2dKernel

from lyriscope.trainers.networks import Discriminator, Generator, set_op_impl
from lyriscope.trainers.ops import bias_act as bias_act_module
from lyriscope.trainers.ops import custom_ops
from lyriscope.trainers.ops import upfirdn2d as upfirdn2d_module
from lyriscope.trainers.ops.bias_act import ACTIVATIONS, bias_act
from lyriscope.trainers.ops.upfirdn2d import setup_filter, upfirdn2d

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# ----------------------------------------------------------------------------- CPU: kernel models


def test_activation_codes_match_the_kernel_enum():
    source = (Path(bias_act_module.__file__).parent / "bias_act.cu").read_text()
    start = source.index("enum Activation")
    enum = source[start : source.index("};", start)]
    codes = {
        re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(): int(code)
        for name, code in re.findall(r"k(\w+) = (\d+),", enum)
    }
    assert codes == bias_act_module.ACTIVATION_CODES
    assert set(codes) == set(ACTIVATIONS)


def test_bias_act_self_check_passes_with_the_kernel_transcription():
    assert bias_act_module._check_plugin(BiasActKernel(), device="cpu") is None


def test_upfirdn2d_self_check_passes_with_the_kernel_transcription():
    assert upfirdn2d_module._check_plugin(UpFirDn2dKernel(), device="cpu") is None


def test_upfirdn2d_self_check_catches_an_indexing_bug():
    problem = upfirdn2d_module._check_plugin(UpFirDn2dKernel(off_by_one=True), device="cpu")
    assert problem is not None and "differs" in problem


def test_bias_act_self_check_catches_a_wrong_derivative():
    class WrongSecondDerivative(BiasActKernel):
        def bias_act(self, x, b, grad, dim, act, alpha, gain, clamp, mode):  # noqa: ANN001, ANN201
            out = super().bias_act(x, b, grad, dim, act, alpha, gain, clamp, mode)
            return out * 1.5 if mode == 2 else out

    problem = bias_act_module._check_plugin(WrongSecondDerivative(), device="cpu")
    assert problem is not None and "d2y/dx2" in problem


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_fused_bias_act_differentiates_twice_like_the_reference(act):
    # float64 gradcheck/gradgradcheck of the fused path's autograd functions, then equality
    # of values and gradients with the reference path.
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn([2, 3, 2, 2], generator=gen, dtype=torch.float64) * 2).requires_grad_()
    b = torch.randn([3], generator=gen, dtype=torch.float64).requires_grad_()
    kernel = BiasActKernel()

    def fused(x, b):  # noqa: ANN001, ANN202
        return bias_act_module._bias_act_cuda(
            kernel, x, b, dim=1, act=act, alpha=None, gain=None, clamp=1.5
        )

    torch.autograd.gradcheck(fused, (x, b))
    torch.autograd.gradgradcheck(fused, (x, b))
    results = []
    for run in (fused, lambda x, b: bias_act(x, b, act=act, clamp=1.5)):
        y = run(x, b)
        gx, gb = torch.autograd.grad(y.sin().sum(), [x, b], create_graph=True)
        ggx, ggb = torch.autograd.grad(gx.square().sum() + gb.sum(), [x, b])
        results.append([y, gx, gb, ggx, ggb])
    for fused_t, ref_t in zip(*results, strict=True):
        torch.testing.assert_close(fused_t, ref_t)


@pytest.mark.parametrize(
    "act, clamp, kept",
    [("lrelu", 256.0, "output"), ("relu", None, "output"), ("linear", 1.0, "output"),
     ("linear", None, "nothing"), ("tanh", None, "input")],
)  # fmt: skip
def test_fused_bias_act_keeps_the_output_for_backward_where_that_suffices(act, clamp, kept):
    # Piecewise-linear acts keep their output (which the next layer keeps anyway), as
    # NVlabs' op does: keeping the input held one more activation per layer.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, 4, 4], generator=gen).requires_grad_()
    b = torch.randn([3], generator=gen).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = bias_act_module._bias_act_cuda(
            BiasActKernel(), x, b, dim=1, act=act, alpha=None, gain=None, clamp=clamp
        )
    big = [t for t in saved if t.numel() == x.numel()]
    storage = {"output": y, "input": x}.get(kept)
    if storage is None:
        assert big == []
    else:
        ptr = storage.untyped_storage().data_ptr()
        assert big and any(t.untyped_storage().data_ptr() == ptr for t in big)
        if kept == "output":
            assert all(t.untyped_storage().data_ptr() == ptr for t in big)
    gx, gb = torch.autograd.grad(y.sin().sum(), [x, b])
    ref = bias_act(x, b, act=act, clamp=clamp, impl="ref")
    rx, rb = torch.autograd.grad(ref.sin().sum(), [x, b])
    torch.testing.assert_close((gx, gb), (rx, rb))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(up=2, padding=[2, 1, 2, 1], gain=4),
        dict(down=2, padding=1),
        dict(up=[2, 1], down=[1, 2], padding=[0, -1, 3, 2], flip_filter=True),
        dict(up=3, down=2, padding=[-2, 1, 1, -1]),
    ],
)
def test_fused_upfirdn2d_gradients_equal_the_reference(kwargs):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn([1, 2, 5, 4], generator=gen, dtype=torch.float64, requires_grad=True)
    f = torch.tensor([1.0, 2.0, 4.0, -1.0], dtype=torch.float64)  # asymmetric: flips show
    kernel = UpFirDn2dKernel()

    def fused(x):  # noqa: ANN001, ANN202
        return upfirdn2d_module._upfirdn2d_cuda(
            kernel,
            x,
            f,
            **{"up": 1, "down": 1, "padding": 0, "flip_filter": False, "gain": 1, **kwargs},
        )

    torch.autograd.gradcheck(fused, (x,))
    torch.autograd.gradgradcheck(fused, (x,))
    y_fused, y_ref = fused(x), upfirdn2d(x, f, **kwargs)
    torch.testing.assert_close(y_fused, y_ref)
    w = torch.randn(y_ref.shape, generator=gen, dtype=torch.float64)
    (g_fused,) = torch.autograd.grad((y_fused * w).sum(), [x])
    (g_ref,) = torch.autograd.grad((y_ref * w).sum(), [x])
    torch.testing.assert_close(g_fused, g_ref)


def test_a_plugin_that_disagrees_is_refused_with_one_warning(monkeypatch):
    monkeypatch.setattr(
        custom_ops, "load_plugin", lambda name, sources: UpFirDn2dKernel(off_by_one=True)
    )
    custom_ops.load_checked_plugin.cache_clear()
    try:

        def cpu_check(plugin):  # noqa: ANN001, ANN202
            return upfirdn2d_module._check_plugin(plugin, device="cpu")

        with pytest.warns(RuntimeWarning, match="disagrees with the reference path"):
            assert custom_ops.load_checked_plugin("bad", ("x.cu",), cpu_check) is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert custom_ops.load_checked_plugin("bad", ("x.cu",), cpu_check) is None
    finally:
        custom_ops.load_checked_plugin.cache_clear()


def _small_networks(device: str = "cpu") -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    G = Generator(
        z_dim=16, c_dim=0, w_dim=16, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=64, channel_max=8, conv_clamp=256),
    )  # fmt: skip
    D = Discriminator(
        c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=8,
        conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=2),
    )  # fmt: skip
    return G.to(device), D.to(device)


def _g_and_r1(G: Generator, D: Discriminator, impl: str, device: str) -> list[torch.Tensor]:
    """G's images, D's logits, and R1's gradient on D's first conv (a double backward)."""
    set_op_impl(G, impl)
    set_op_impl(D, impl)
    gen = torch.Generator(device=device).manual_seed(1)
    z = torch.randn([2, G.z_dim], device=device, generator=gen)
    images = G(z, None, noise_mode="const")
    reals = images.detach().requires_grad_(True)
    logits = D(reals, None)
    (r1_grads,) = torch.autograd.grad(logits.sum(), [reals], create_graph=True)
    first_conv = next(p for name, p in D.named_parameters() if name.endswith("conv0.weight"))
    (r1_weight_grad,) = torch.autograd.grad(r1_grads.square().sum(), [first_conv])
    return [images, logits, r1_grads, r1_weight_grad]


def test_networks_on_the_fused_route_equal_the_reference_route(monkeypatch):
    # The kernel transcriptions stand in for the plugins on CPU, so every layer's call into
    # the fused path (and R1's double backward through it) is exercised.
    kernels = {"lyriscope_bias_act": BiasActKernel(), "lyriscope_upfirdn2d": UpFirDn2dKernel()}
    used = set()

    def transcribed(name):  # noqa: ANN001, ANN202
        def plugin():  # noqa: ANN202
            used.add(name)
            return kernels[name]

        return plugin

    monkeypatch.setattr(custom_ops, "wants_fused", lambda impl, x: impl == "cuda")
    monkeypatch.setattr(bias_act_module, "fused_plugin", transcribed("lyriscope_bias_act"))
    monkeypatch.setattr(upfirdn2d_module, "fused_plugin", transcribed("lyriscope_upfirdn2d"))
    G, D = _small_networks()
    with torch.no_grad():
        assert not torch.equal(*[G(torch.ones([1, 16]) * k, None) for k in (1, -1)])
    fused = _g_and_r1(G, D, "cuda", "cpu")
    assert used == set(kernels)
    reference = _g_and_r1(G, D, "ref", "cpu")
    for what, f, r in zip(
        ("images", "logits", "R1 grads", "R1 weight grad"), fused, reference, strict=True
    ):
        torch.testing.assert_close(f, r, rtol=1e-4, atol=1e-5, msg=what)


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_a_first_use_under_no_grad_still_checks_and_takes_the_plugin(monkeypatch, mode):
    # Rendering runs under no_grad/inference_mode; the self-check differentiates anyway.
    kernel = UpFirDn2dKernel()
    monkeypatch.setattr(custom_ops, "load_plugin", lambda name, sources: kernel)
    custom_ops.load_checked_plugin.cache_clear()
    try:
        with warnings.catch_warnings(), mode():
            warnings.simplefilter("error")
            plugin = custom_ops.load_checked_plugin(
                "good", ("x.cu",), lambda p: upfirdn2d_module._check_plugin(p, device="cpu")
            )
        assert plugin is kernel
    finally:
        custom_ops.load_checked_plugin.cache_clear()


def test_self_checks_compare_at_full_float32_precision():
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with custom_ops.exact_float32():
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_set_op_impl_switches_every_layer_and_checks_its_argument():
    G, _ = _small_networks()
    set_op_impl(G, "ref")
    layers = [m for m in G.modules() if hasattr(m, "op_impl")]
    assert len(layers) > 5 and {m.op_impl for m in layers} == {"ref"}
    with pytest.raises(ValueError, match="impl must be one of"):
        set_op_impl(G, "triton")


# ----------------------------------------------------------------------------- GPU: the real kernels


def _built(name: str) -> object:
    module = {"bias_act": bias_act_module, "upfirdn2d": upfirdn2d_module}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed build or self-check fails the test
        return module.fused_plugin()


@pytest.mark.gpu
@cuda
def test_cuda_kernels_build_and_pass_their_self_checks():
    assert _built("bias_act") is not None
    assert _built("upfirdn2d") is not None


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_cuda_bias_act_equals_reference(act, dtype):
    _built("bias_act")
    gen = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn([4, 32, 9, 11], device="cuda", generator=gen).to(dtype) * 3
    b = torch.randn([32], device="cuda", generator=gen).to(dtype)

    def fused(x, b, clamp):  # noqa: ANN001, ANN202
        return bias_act(x, b, act=act, clamp=clamp, impl="cuda")

    assert_bias_act_close(fused, x, b, act=act)


def assert_bias_act_close(fused, x: torch.Tensor, b: torch.Tensor, *, act: str) -> None:  # noqa: ANN001
    """fused(x, b, clamp)'s y, dy/dx and dy/db equal the reference path's within x's dtype."""
    # In 16 bits the reference rounds before it clamps, so an element just above the clamp
    # can keep its gradient there and lose it here: the clamp is tested in float32/64 only.
    dtype = x.dtype
    clamp = None if dtype in (torch.float16, torch.bfloat16) else 2.0

    def reference(x, b, clamp):  # noqa: ANN001, ANN202
        return bias_act(x, b, act=act, clamp=clamp, impl="ref")

    outs = []
    for run in (fused, reference):
        xi, bi = x.clone().requires_grad_(), b.clone().requires_grad_()
        y = run(xi, bi, clamp)
        gx, gb = torch.autograd.grad(y.float().square().sum(), [xi, bi])
        outs.append([y.float(), gx.float(), gb.float()])
    tol = {torch.float16: 2e-2, torch.bfloat16: 5e-2, torch.float32: 1e-4, torch.float64: 1e-10}[
        dtype
    ]
    (y, gx, gb), (y_ref, gx_ref, gb_ref) = outs
    torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(gx, gx_ref, rtol=tol, atol=tol)
    spread = bias_grad_spread(gx_ref, eps=torch.finfo(dtype).eps, terms=x.numel() // x.shape[1])
    torch.testing.assert_close(gb, gb_ref, rtol=tol, atol=tol + spread)


def bias_grad_spread(gx: torch.Tensor, *, eps: float, terms: int) -> float:
    """How far two right bias gradients, sums of `terms` elements of gx, may differ.

    The reference rounds x + b and act(s) to x's dtype between steps while the kernel
    rounds once, so each term may differ by a few eps * max|gx|, and such differences add
    up in the sum like a random walk: ~sqrt(terms) of them. 4 units cover what the kernel
    transcription gives in bfloat16 with 3.7x to spare (the CPU test below). In float32 a
    unit is ~2e-6, far under the test's 1e-4, which still catches an approximate tanh
    (tanh.approx.f32 missed it by 1.2e-4 on an H200, issue 17).
    """
    return 4 * math.sqrt(terms) * eps * gx.abs().max().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_the_kernel_transcription_meets_the_gpu_tests_tolerances(dtype, one_thread):
    # A kernel computing act(s) exactly once, rounded (kernel_models), must pass the GPU
    # test's comparison: then a failure there is the kernel's, not the tolerance's.
    gen = torch.Generator().manual_seed(2)  # its bfloat16 sums broke the old tolerance
    x = torch.randn([4, 32, 9, 11], generator=gen).to(dtype) * 3
    b = torch.randn([32], generator=gen).to(dtype)
    kernel = BiasActKernel()

    def fused(x, b, clamp):  # noqa: ANN001, ANN202
        return bias_act_module._bias_act_cuda(
            kernel, x, b, dim=1, act="tanh", alpha=None, gain=None, clamp=clamp
        )

    assert_bias_act_close(fused, x, b, act="tanh")


def test_bias_act_builds_without_fast_math():
    assert "--use_fast_math" not in custom_ops.cuda_flags(bias_act_module._CUDA_SOURCES)
    assert "--use_fast_math" in custom_ops.cuda_flags(upfirdn2d_module._CUDA_SOURCES)


@pytest.mark.gpu
@cuda
def test_cuda_ops_pass_gradgradcheck_in_float64(no_tf32):
    _built("bias_act")
    _built("upfirdn2d")
    gen = torch.Generator(device="cuda").manual_seed(4)
    x = torch.randn([2, 3, 4, 5], device="cuda", generator=gen, dtype=torch.float64)
    b = torch.randn([3], device="cuda", generator=gen, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).to("cuda", torch.float64)
    for act in ("lrelu", "swish", "tanh"):

        def fn(x, b, act=act):  # noqa: ANN001, ANN202
            return bias_act(x, b, act=act, clamp=1.0, impl="cuda")

        torch.autograd.gradgradcheck(fn, (x.requires_grad_(), b.requires_grad_()))
    for kwargs in (dict(up=2, padding=[2, 1, 2, 1], gain=4), dict(down=2, padding=1)):
        torch.autograd.gradgradcheck(
            lambda x, kw=kwargs: upfirdn2d(x, f, impl="cuda", **kw), (x.requires_grad_(),)
        )


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_upfirdn2d_equals_reference_at_network_sizes(dtype, channels_last, no_tf32):
    _built("upfirdn2d")
    gen = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn([2, 64, 64, 64], device="cuda", generator=gen).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    f = setup_filter([1, 3, 3, 1]).cuda()
    tol = {torch.float16: 2e-2, torch.bfloat16: 5e-2, torch.float32: 1e-5}[dtype]
    for kwargs in (
        dict(up=2, padding=[2, 1, 2, 1], gain=4),
        dict(down=2, padding=1),
        dict(padding=[1, 2, 1, 2]),
        dict(up=2, down=2, padding=[1, 2, 1, 2]),
    ):
        ref = upfirdn2d(x, f, impl="ref", **kwargs)
        fused = upfirdn2d(x, f, impl="cuda", **kwargs)
        torch.testing.assert_close(fused.float(), ref.float(), rtol=tol, atol=tol)


@pytest.mark.gpu
@cuda
def test_cuda_networks_on_the_fused_route_equal_the_reference_route(no_tf32):
    _built("bias_act")
    _built("upfirdn2d")
    G, D = _small_networks("cuda")
    fused = _g_and_r1(G, D, "cuda", "cuda")
    reference = _g_and_r1(G, D, "ref", "cuda")
    for f, r in zip(fused, reference, strict=True):
        torch.testing.assert_close(f, r, rtol=1e-3, atol=1e-4)
