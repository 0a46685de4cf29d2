"""StyleGAN2's modulated (and demodulated) convolution: per-sample styles scale the weights."""

from __future__ import annotations

import math

import torch

from lyriscope.trainers.ops import upfirdn2d
from lyriscope.trainers.ops.conv2d_resample import conv2d_resample


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: upfirdn2d.Padding = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    impl: str = "cuda",
) -> torch.Tensor:
    """Convolve each sample with weight * style, normalised to unit output variance.

    x: [N, C_in, H, W]; weight: [C_out, C_in, kh, kw]; styles: [N, C_in]; noise: added
    after demodulation, broadcastable to [N, C_out, H', W'] (None: none). fused_modconv:
    True builds per-sample weights and runs one grouped conv; False scales the activations
    before and after a shared conv. Both give the same result. impl: of the FIR filtering,
    'cuda' (fused where it can) or 'ref'. Returns [N, C_out, H', W'].
    """
    n = x.shape[0]
    c_out, c_in, kh, kw = weight.shape
    if x.ndim != 4 or x.shape[1] != c_in or styles.shape != (n, c_in):
        raise ValueError(
            f"expected x [N, {c_in}, H, W] and styles [N, {c_in}], "
            f"got {list(x.shape)} and {list(styles.shape)}"
        )

    if x.dtype == torch.float16 and demodulate:
        # Pre-scale by max-norms so float16 intermediates cannot overflow; demodulation undoes it.
        weight = weight * (
            1 / math.sqrt(c_in * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = None
    dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, C_out, C_in, kh, kw]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, C_out]
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(
            x, weight.to(x.dtype), f=resample_filter, up=up, down=down,
            padding=padding, flip_weight=flip_weight, impl=impl,
        )  # fmt: skip
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    # The batch becomes groups of one conv: [1, N*C_in, H, W] with [N*C_out, C_in, kh, kw].
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, c_in, kh, kw)
    x = conv2d_resample(
        x, w.to(x.dtype), f=resample_filter, up=up, down=down,
        padding=padding, groups=n, flip_weight=flip_weight, impl=impl,
    )  # fmt: skip
    x = x.reshape(n, -1, *x.shape[2:])  # [N, C_out, H', W']
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x
