"""A synthesis layer's epilogue as one Triton kernel: demodulation, bias, noise, act, clamp.

Per element of x [N, C, H, W] (NCHW or channels-last), in place and in float32:
    y = x · scale[n, c] (optional) + bias[c] (optional) + noise[h, w] (optional)
    y = y if y >= 0 else y · slope          (slope 1.0: linear, 0.0: relu)
    y = clamp(y, -clamp, clamp)              (optional)
The activation gain is already folded into scale, bias and noise by the plan, so one read
and one write of the activations replace the four or five passes of the PyTorch epilogue
(fastpath.torch_epilogue, the reference and the CPU path).

This module imports triton at the top: import it only where triton may be missing behind a
guard (fastpath.triton_epilogue_module). Triton reads TRITON_INTERPRET when the kernel
below is decorated, i.e. when this module is first imported: set it before that to run
the kernel on the CPU (tests).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 1024  # elements per program; the kernel is memory-bound, any large block will do


@triton.jit
def _epilogue_kernel(
    x_ptr,  # activations, modified in place
    scale_ptr,  # [N, C] float32 demodulation (unused unless HAS_SCALE)
    bias_ptr,  # [C] (unused unless HAS_BIAS)
    noise_ptr,  # [H, W] contiguous (unused unless HAS_NOISE)
    total,  # N·C·H·W
    channels,  # C
    pixels,  # H·W
    slope,  # leaky ReLU slope for negative values
    clamp,  # |y| limit (unused unless HAS_CLAMP)
    CHANNELS_LAST: tl.constexpr,
    HAS_SCALE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
):
    # int64: a batch of wide 1024² layers passes 2^31 elements.
    offsets = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < total
    if CHANNELS_LAST:  # memory order n, h, w, c
        c = offsets % channels
        hw = (offsets // channels) % pixels
        n = offsets // (channels * pixels)
    else:  # memory order n, c, h, w
        hw = offsets % pixels
        c = (offsets // pixels) % channels
        n = offsets // (channels * pixels)
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    y = x.to(tl.float32)
    if HAS_SCALE:
        y = y * tl.load(scale_ptr + n * channels + c, mask=mask, other=0.0)
    if HAS_BIAS:
        y = y + tl.load(bias_ptr + c, mask=mask, other=0.0).to(tl.float32)
    if HAS_NOISE:
        y = y + tl.load(noise_ptr + hw, mask=mask, other=0.0).to(tl.float32)
    y = tl.where(y >= 0, y, y * slope)
    if HAS_CLAMP:
        y = tl.minimum(tl.maximum(y, -clamp), clamp)
    tl.store(x_ptr + offsets, y.to(x.dtype), mask=mask)


def epilogue(
    x: torch.Tensor,
    *,
    scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    slope: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Apply the epilogue to x [N, C, H, W] in place and return it (see the module docstring).

    x: float32, float16 or bfloat16, contiguous in NCHW or channels-last order;
    scale: [N, C] (float32); bias: [C]; noise: [H, W] or [1, 1, H, W].
    """
    n, c, h, w = x.shape
    channels_last = _layout(x)
    dummy = x  # a pointer for the arguments a flag switches off; never read
    scale_arg = _flat(scale, n * c, "scale", torch.float32) if scale is not None else dummy
    bias_arg = _flat(bias, c, "bias", None) if bias is not None else dummy
    noise_arg = _flat(noise, h * w, "noise", None) if noise is not None else dummy
    total = x.numel()
    if total == 0:
        return x
    grid = (triton.cdiv(total, BLOCK),)
    _epilogue_kernel[grid](
        x,
        scale_arg,
        bias_arg,
        noise_arg,
        total,
        c,
        h * w,
        float(slope),
        float(clamp) if clamp is not None else 0.0,
        CHANNELS_LAST=channels_last,
        HAS_SCALE=scale is not None,
        HAS_BIAS=bias is not None,
        HAS_NOISE=noise is not None,
        HAS_CLAMP=clamp is not None,
        BLOCK_SIZE=BLOCK,
    )
    return x


def _layout(x: torch.Tensor) -> bool:
    """True for channels-last x, False for NCHW; ValueError for any other strides."""
    if x.ndim != 4:
        raise ValueError(f"x must be [N, C, H, W], got shape {list(x.shape)}")
    # NCHW is checked first: with C == 1 or H == W == 1 a tensor is both, and either will do.
    if x.is_contiguous():
        return False
    if x.is_contiguous(memory_format=torch.channels_last):
        return True
    raise ValueError(f"x must be NCHW or channels-last contiguous, got strides {x.stride()}")


def _flat(t: torch.Tensor, numel: int, name: str, dtype: torch.dtype | None) -> torch.Tensor:
    """t as a contiguous 1-D tensor of `numel` elements (the kernel indexes it flat)."""
    if t.numel() != numel:
        raise ValueError(f"{name} has {t.numel()} elements, expected {numel}")
    t = t.reshape(-1)
    return (t if dtype is None else t.to(dtype)).contiguous()
