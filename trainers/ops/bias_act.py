"""Bias + activation + gain + clamp in one op, as StyleGAN2 applies after every layer.

On CUDA the fused kernel (bias_act.cu) does it in one pass and differentiates twice
(R1 needs the gradient of a gradient); everywhere else the reference path runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

from lyriscope.trainers.ops import custom_ops


@dataclass(frozen=True)
class Activation:
    """One activation function with the alpha and gain StyleGAN2 uses by default."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float = 0.0
    def_gain: float = 1.0  # keeps the output's second moment near the input's


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, alpha: x),
    "relu": Activation(lambda x, alpha: F.relu(x), def_gain=math.sqrt(2)),
    "lrelu": Activation(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, alpha: torch.tanh(x)),
    "sigmoid": Activation(lambda x, alpha: torch.sigmoid(x)),
    "elu": Activation(lambda x, alpha: F.elu(x)),
    "selu": Activation(lambda x, alpha: F.selu(x)),
    "softplus": Activation(lambda x, alpha: F.softplus(x)),
    "swish": Activation(lambda x, alpha: torch.sigmoid(x) * x, def_gain=math.sqrt(2)),
}

# The kernel's activation codes: the enum Activation in bias_act.cu (a test compares them).
ACTIVATION_CODES = {
    "linear": 0,
    "relu": 1,
    "lrelu": 2,
    "tanh": 3,
    "sigmoid": 4,
    "elu": 5,
    "selu": 6,
    "softplus": 7,
    "swish": 8,
}
_CUDA_SOURCES = ("bias_act.cpp", "bias_act.cu")


def activation_gain(act: str) -> float:
    """The default gain of activation `act` (sqrt(2) for relu, lrelu and swish, else 1)."""
    return _activation(act).def_gain


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "cuda",
) -> torch.Tensor:
    """act(x + b) * gain, then clamped to [-clamp, clamp].

    x: any shape; b: [x.shape[dim]] added along `dim`; alpha: the activation's slope or
    shape parameter (lrelu); gain, alpha: None means the activation's default; clamp:
    None means no clamp. impl: 'ref' or 'cuda' (falls back to 'ref' when not built).
    """
    spec = _activation(act)
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias must have shape [{x.shape[dim]}], got {list(b.shape)}")
    plugin = fused_plugin() if custom_ops.wants_fused(impl, x) else None
    if plugin is None:
        return _bias_act_ref(x, b, dim=dim, spec=spec, alpha=alpha, gain=gain, clamp=clamp)
    return _bias_act_cuda(plugin, x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def fused_plugin() -> ModuleType | None:
    """The built bias_act kernel once it passed its self-check; None: use the reference."""
    return custom_ops.load_checked_plugin("lyriscope_bias_act", _CUDA_SOURCES, _check_plugin)


def _bias_act_ref(
    x: torch.Tensor,
    b: torch.Tensor | None,
    *,
    dim: int,
    spec: Activation,
    alpha: float | None,
    gain: float | None,
    clamp: float | None,
) -> torch.Tensor:
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    if b is not None:
        x = x + b.reshape([-1 if i == dim % x.ndim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _bias_act_cuda(
    plugin: ModuleType,
    x: torch.Tensor,
    b: torch.Tensor | None,
    *,
    dim: int,
    act: str,
    alpha: float | None,
    gain: float | None,
    clamp: float | None,
) -> torch.Tensor:
    spec = _activation(act)
    params = _KernelParams(
        plugin=plugin,
        dim=dim % x.ndim,
        act=ACTIVATION_CODES[act],
        alpha=float(spec.def_alpha if alpha is None else alpha),
        gain=float(spec.def_gain if gain is None else gain),
        clamp=float(-1 if clamp is None or clamp < 0 else clamp),
        second_derivative=act not in ("linear", "relu", "lrelu"),
    )
    empty = x.new_empty([0])
    b = empty if b is None else b.to(x.dtype).contiguous()
    if params.slope_from_output:
        return _BiasActCudaKeepY.apply(_kernel_layout(x, params.dim), b, params)
    return _BiasActCuda.apply(_kernel_layout(x, params.dim), b, params)


@dataclass(frozen=True)
class _KernelParams:
    plugin: ModuleType
    dim: int
    act: int
    alpha: float
    gain: float
    clamp: float  # -1: no clamp
    second_derivative: bool  # False where act'' is 0 everywhere (piecewise-linear acts)

    @property
    def slope_from_output(self) -> bool:
        """Whether act' follows from the output (kernel mode 3): piecewise-linear acts whose
        sign the output keeps. Backward then needs the output, not the input."""
        return not self.second_derivative and self.gain > 0 and self.alpha >= 0

    def run(self, x: torch.Tensor, b: torch.Tensor, grad: torch.Tensor, mode: int) -> torch.Tensor:
        return self.plugin.bias_act(
            x, b, grad, self.dim, self.act, self.alpha, self.gain, self.clamp, mode
        )


def _kernel_layout(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x as the kernel reads it: contiguous, or channels_last when the bias runs along C."""
    if x.is_contiguous() or (
        x.ndim == 4 and dim == 1 and x.is_contiguous(memory_format=torch.channels_last)
    ):
        return x
    return x.contiguous()


def _like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """t with x's memory layout (the kernel pairs elements by memory position)."""
    fmt = torch.contiguous_format if x.is_contiguous() else torch.channels_last
    return t.contiguous(memory_format=fmt)


def _bias_grad(dx: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor | None:
    if b.numel() == 0:
        return None
    return dx.sum([i for i in range(dx.ndim) if i != dim])


class _BiasActCuda(torch.autograd.Function):
    """y = clamp(act(x + b) * gain) on the fused kernel; backward is _BiasActCudaGrad."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, b: torch.Tensor, params: _KernelParams) -> torch.Tensor:
        ctx.save_for_backward(x, b)
        ctx.params = params
        return params.run(x, b, x.new_empty([0]), 0)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, b = ctx.saved_tensors
        params: _KernelParams = ctx.params
        dx = _BiasActCudaGrad.apply(_like(dy, x), x, b, params)
        return dx, _bias_grad(dx, b, params.dim), None


class _BiasActCudaGrad(torch.autograd.Function):
    """dx = dy * d/dx clamp(act(x + b) * gain), itself differentiable once more (for R1)."""

    @staticmethod
    def forward(
        ctx: Any, dy: torch.Tensor, x: torch.Tensor, b: torch.Tensor, params: _KernelParams
    ) -> torch.Tensor:
        ctx.save_for_backward(dy, x, b)
        ctx.params = params
        return params.run(x, b, dy, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_dx: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        dy, x, b = ctx.saved_tensors
        params: _KernelParams = ctx.params
        d_dx = _like(d_dx, x)
        # dx is linear in dy with the same slope; its slope's own derivative is act''.
        d_dy = params.run(x, b, d_dx, 1) if ctx.needs_input_grad[0] else None
        d_x = None
        if params.second_derivative and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = params.run(x, b, _like(d_dx * dy, x), 2)
        d_b = None if d_x is None else _bias_grad(d_x, b, params.dim)
        return d_dy, d_x, d_b, None


class _BiasActCudaKeepY(torch.autograd.Function):
    """As _BiasActCuda for piecewise-linear acts, but backward keeps the output y, not x.

    The next layer keeps y for its own backward anyway, so this op holds no tensor of its
    own (as NVlabs' op does), where keeping x would hold one more activation per layer.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, b: torch.Tensor, params: _KernelParams) -> torch.Tensor:
        y = params.run(x, b, x.new_empty([0]), 0)
        # linear without a clamp has a constant slope: nothing to keep at all.
        constant = params.act == ACTIVATION_CODES["linear"] and params.clamp < 0
        ctx.save_for_backward(y.new_empty([0]) if constant else y)
        ctx.params = params
        ctx.has_bias = b.numel() > 0
        return y

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        dx = _BiasActCudaGradFromY.apply(_like(dy, y) if y.numel() else dy, y, ctx.params)
        db = dx.sum([i for i in range(dx.ndim) if i != ctx.params.dim]) if ctx.has_bias else None
        return dx, db, None


class _BiasActCudaGradFromY(torch.autograd.Function):
    """dx = dy * slope(y) (kernel mode 3): linear in dy; the slope is piecewise constant, so
    its derivative is 0 and R1's double backward needs only the slope again."""

    @staticmethod
    def forward(ctx: Any, dy: torch.Tensor, y: torch.Tensor, params: _KernelParams) -> torch.Tensor:
        ctx.save_for_backward(y)
        ctx.params = params
        return _times_slope(params, y, dy)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_dx: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        d_dy = _times_slope(ctx.params, y, d_dx) if ctx.needs_input_grad[0] else None
        return d_dy, None, None


def _times_slope(params: _KernelParams, y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """grad * act'(s) * gain, zero where the clamp cut, from the output y (empty: linear
    without a clamp, whose slope is the gain)."""
    if not y.numel():
        return grad * params.gain
    return params.run(y, y.new_empty([0]), _like(grad, y), 3)


def _check_plugin(plugin: ModuleType, device: str = "cuda") -> str | None:
    """Compare a freshly built kernel with the reference on small inputs; None if they agree."""
    gen = torch.Generator(device=device).manual_seed(0)
    cases = [  # (shape, dim, act, clamp, dtype, channels_last)
        ([3, 8, 5, 7], 1, "lrelu", 0.5, torch.float32, False),
        ([6, 16], 1, "linear", None, torch.float32, False),
        ([2, 4, 3, 5], 1, "swish", None, torch.float32, False),
        ([2, 5, 4, 3], 2, "tanh", 0.8, torch.float32, False),
        ([2, 8, 6, 6], 1, "lrelu", 256.0, torch.float16, True),
    ]
    for shape, dim, act, clamp, dtype, channels_last in cases:
        x = torch.randn(shape, device=device, generator=gen).to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        b = torch.randn([shape[dim]], device=device, generator=gen).to(dtype)
        tol = 1e-2 if dtype == torch.float16 else 1e-4
        outputs = []
        for impl in (_bias_act_ref, _bias_act_cuda):
            xi = x.detach().requires_grad_(True)
            bi = b.detach().requires_grad_(True)
            kw = dict(dim=dim, alpha=None, gain=None, clamp=clamp)
            if impl is _bias_act_ref:
                y = impl(xi, bi, spec=_activation(act), **kw)
            else:
                y = impl(plugin, xi, bi, act=act, **kw)
            gx, gb = torch.autograd.grad(y.square().sum(), [xi, bi], create_graph=True)
            (ggx,) = torch.autograd.grad(gx.float().square().sum() + gb.float().sum(), [xi])
            outputs.append([y, gx, gb, ggx])
        problem = custom_ops.first_difference(("y", "dy/dx", "dy/db", "d2y/dx2"), *outputs, tol=tol)
        if problem is not None:
            return f"{act} {dtype} {problem}"
    return None


def _activation(act: str) -> Activation:
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise ValueError(
            f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None
