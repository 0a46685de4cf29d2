"""Upsample, FIR-filter and downsample 2-D images in one op (StyleGAN2's resampling).

Filters are [fh, fw] (non-separable) or [fw] (separable, applied along both axes), as
made by setup_filter(). Padding is (x0, x1, y0, y1) in pixels of the upsampled image;
negative padding crops.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from lyriscope.trainers.ops import custom_ops

Scaling = int | Sequence[int]  # one factor for both axes, or (x, y)
Padding = int | Sequence[int]  # one value for all sides, (x, y), or (x0, x1, y0, y1)

_CUDA_SOURCES = ("upfirdn2d.cpp", "upfirdn2d.cu")


def setup_filter(
    f: Sequence[float] | torch.Tensor | float | None,
    *,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """A float32 FIR filter from taps: [fw] separable or [fh, fw] (outer product of 1-D taps).

    normalize: divide by the sum so the filter keeps the mean; gain: overall scale;
    separable: None keeps 1-D taps separable only when there are at least 8 of them.
    """
    f = torch.as_tensor(1 if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"filter must be a scalar, [fw] or [fh, fw], got shape {list(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2-D filter cannot be separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "ref",
) -> torch.Tensor:
    """Insert up-1 zeros between pixels, pad, convolve with `f`, keep every down-th pixel.

    x: [N, C, H, W]; f: [fh, fw], [fw] (separable) or None (identity); flip_filter: False
    means true convolution, True means correlation; gain: scales the result (the filter is
    scaled by gain^(f.ndim/2)). Returns [N, C, H', W'] with
    H' = (H*up_y + pad_y0 + pad_y1 - fh + down_y) // down_y.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be [N, C, H, W], got shape {list(x.shape)}")
    custom_ops.choose_impl(impl, x, plugin="upfirdn2d_plugin", sources=_CUDA_SOURCES)
    return _upfirdn2d_ref(
        x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain
    )


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "ref",
) -> torch.Tensor:
    """Filter x [N, C, H, W] with `f`, padded so the output keeps the input's size."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    up: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "ref",
) -> torch.Tensor:
    """Upsample x [N, C, H, W] to [N, C, H*up, W*up] with anti-imaging filter `f`."""
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    ]
    # The zeros inserted lower the mean by up_x * up_y; the gain restores it.
    return upfirdn2d(
        x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl
    )


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    down: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "ref",
) -> torch.Tensor:
    """Downsample x [N, C, H, W] to [N, C, H/down, W/down] with anti-aliasing filter `f`."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = [
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)


def parse_scaling(scaling: Scaling) -> tuple[int, int]:
    """(sx, sy) from one factor or a pair; each at least 1."""
    sx, sy = (scaling, scaling) if isinstance(scaling, int) else tuple(scaling)
    if sx < 1 or sy < 1:
        raise ValueError(f"scaling factors must be >= 1, got {scaling!r}")
    return int(sx), int(sy)


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from one value, (x, y) or four values."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) == 4:
        return padding[0], padding[1], padding[2], padding[3]
    raise ValueError(f"padding must have 1, 2 or 4 values, got {padding!r}")


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(fw, fh) of a filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    if f.ndim == 2:
        return f.shape[1], f.shape[0]
    raise ValueError(f"filter must be [fw] or [fh, fw], got shape {list(f.shape)}")


def _upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    up: Scaling,
    down: Scaling,
    padding: Padding,
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)

    # Zero insertion: each pixel becomes the top-left of an up_y x up_x cell.
    x = x.reshape([n, c, h, 1, w, 1])
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape([n, c, h * upy, w * upx])  # [N, C, H*up_y, W*up_x]

    # Positive padding pads with zeros, negative padding crops.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))  # conv2d correlates; flipping makes it a convolution
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].expand(c, 1, -1, -1), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].expand(c, 1, 1, -1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].expand(c, 1, -1, 1), groups=c)
    return x[:, :, ::downy, ::downx]
