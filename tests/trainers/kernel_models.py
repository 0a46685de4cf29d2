"""Python transcriptions of the fused CUDA kernels, element by element, for CPU tests.

Each class has the call signature of the built plugin module, and computes what the
.cu file computes, the same way: per output element, with the kernel's own index
arithmetic and derivative table. The ops' autograd wiring (transposed geometries,
derivative modes, layouts, bias gradients) can then run on CPU against the reference
path. They are slow (Python loops): keep the inputs tiny.
"""

from __future__ import annotations

import math

import numpy as np
import torch

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s))


def taylor(act: int, s: float, alpha: float) -> tuple[float, float, float]:
    """(act(s), act'(s), act''(s)) as bias_act.cu's activate() table gives them."""
    if act == 1:  # relu
        return (s, 1.0, 0.0) if s > 0 else (0.0, 0.0, 0.0)
    if act == 2:  # lrelu
        return (s, 1.0, 0.0) if s > 0 else (s * alpha, alpha, 0.0)
    if act == 3:  # tanh
        t = math.tanh(s)
        return t, 1 - t * t, -2 * t * (1 - t * t)
    if act == 4:  # sigmoid
        g = _sigmoid(s)
        return g, g * (1 - g), g * (1 - g) * (1 - 2 * g)
    if act == 5:  # elu
        return (s, 1.0, 0.0) if s > 0 else (math.exp(s) - 1, math.exp(s), math.exp(s))
    if act == 6:  # selu
        if s > 0:
            return SELU_SCALE * s, SELU_SCALE, 0.0
        e = SELU_SCALE * SELU_ALPHA * math.exp(s)
        return e - SELU_SCALE * SELU_ALPHA, e, e
    if act == 7:  # softplus
        if s > 20:
            return s, 1.0, 0.0
        g = _sigmoid(s)
        return math.log1p(math.exp(s)), g, g * (1 - g)
    if act == 8:  # swish
        g = _sigmoid(s)
        return s * g, g + s * g * (1 - g), g * (1 - g) * (2 + s * (1 - 2 * g))
    return s, 1.0, 0.0  # linear


def _memory_order(t: torch.Tensor) -> np.ndarray:
    """t's elements in memory order (contiguous or channels_last), as float64."""
    if not t.is_contiguous() and t.ndim == 4:
        t = t.permute(0, 2, 3, 1)
    return t.detach().contiguous().double().numpy().reshape(-1)


def _from_memory_order(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    out = torch.from_numpy(values).to(like.dtype)
    if not like.is_contiguous() and like.ndim == 4:
        n, c, h, w = like.shape
        return out.reshape(n, h, w, c).permute(0, 3, 1, 2)  # a channels_last view
    return out.reshape(like.shape)


class BiasActKernel:
    """bias_act.cu's bias_act_cuda(x, b, grad, dim, act, alpha, gain, clamp, mode)."""

    def bias_act(self, x, b, grad, dim, act, alpha, gain, clamp, mode):  # noqa: ANN001, ANN201
        xs = _memory_order(x)
        bs = b.detach().double().numpy()
        gs = _memory_order(grad) if mode else None
        channels = x.shape[dim] if b.numel() else 0
        if x.is_contiguous():
            inner = int(np.prod(x.shape[dim + 1 :], dtype=np.int64))
        else:
            inner = 1  # channels_last, dim 1
        out = np.empty_like(xs)
        for i, v in enumerate(xs):
            if mode == 3:  # v is the output y of linear, relu or lrelu
                at_clamp = clamp >= 0 and (v <= -clamp or v >= clamp)
                d1 = {1: float(v > 0), 2: 1.0 if v > 0 else alpha}.get(act, 1.0)
                out[i] = gs[i] * (0.0 if at_clamp else gain * d1)
                continue
            s = v + (bs[(i // inner) % channels] if channels else 0.0)
            value, d1, d2 = taylor(act, s, alpha)
            y = value * gain
            cut = clamp >= 0 and (y < -clamp or y > clamp)
            if mode == 0:
                out[i] = math.copysign(clamp, y) if cut else y
            else:
                out[i] = gs[i] * (0.0 if cut else gain * (d1 if mode == 1 else d2))
        return _from_memory_order(out, x)


class UpFirDn2dKernel:
    """upfirdn2d.cu's upfirdn2d_cuda(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1)."""

    def __init__(self, *, off_by_one: bool = False) -> None:
        self.off_by_one = off_by_one  # a planted indexing bug, to show the self-check bites

    def upfirdn2d(self, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1):  # noqa: ANN001, ANN201
        n, c, h, w = x.shape
        fh, fw = f.shape
        out_h = (h * upy + pady0 + pady1 - fh + downy) // downy
        out_w = (w * upx + padx0 + padx1 - fw + downx) // downx
        assert out_h >= 1 and out_w >= 1
        xs = x.detach().double().numpy()
        taps = f.detach().double().numpy()
        out = np.zeros([n, c, out_h, out_w])
        for oy in range(out_h):
            u0y = oy * downy - pady0 + (1 if self.off_by_one else 0)
            for ox in range(out_w):
                u0x = ox * downx - padx0
                acc = np.zeros([n, c])
                for ky in range(_first_tap(u0y, upy), fh, upy):
                    iy = (u0y + ky) // upy
                    if iy >= h:
                        break
                    for kx in range(_first_tap(u0x, upx), fw, upx):
                        ix = (u0x + kx) // upx
                        if ix >= w:
                            break
                        acc += taps[ky, kx] * xs[:, :, iy, ix]
                out[:, :, oy, ox] = acc
        result = torch.from_numpy(out).to(x.dtype)
        if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            result = result.contiguous(memory_format=torch.channels_last)
        return result


def _first_tap(u0: int, up: int) -> int:
    k = -u0 if u0 < 0 else 0
    r = (u0 + k) % up
    return k if r == 0 else k + up - r
