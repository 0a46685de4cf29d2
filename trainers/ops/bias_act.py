"""Bias + activation + gain + clamp in one op, as StyleGAN2 applies after every layer."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

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
    impl: str = "ref",
) -> torch.Tensor:
    """act(x + b) * gain, then clamped to [-clamp, clamp].

    x: any shape; b: [x.shape[dim]] added along `dim`; alpha: the activation's slope or
    shape parameter (lrelu); gain, alpha: None means the activation's default; clamp:
    None means no clamp. impl: 'ref' or 'cuda' (falls back to 'ref' when not built).
    """
    spec = _activation(act)
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias must have shape [{x.shape[dim]}], got {list(b.shape)}")
    custom_ops.choose_impl(impl, x, plugin="bias_act_plugin", sources=_CUDA_SOURCES)
    # Only the reference path exists so far; 'cuda' resolves to it.
    return _bias_act_ref(x, b, dim=dim, spec=spec, alpha=alpha, gain=gain, clamp=clamp)


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


def _activation(act: str) -> Activation:
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise ValueError(
            f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None
