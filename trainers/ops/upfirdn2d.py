"""Upsample, FIR-filter and downsample 2-D images in one op (StyleGAN2's resampling).

Filters are [fh, fw] (non-separable) or [fw] (separable, applied along both axes), as
made by setup_filter(). Padding is (x0, x1, y0, y1) in pixels of the upsampled image;
negative padding crops. On CUDA the fused kernel (upfirdn2d.cu) computes each output
pixel straight from the input; its gradient is again an upfirdn2d, so it differentiates
to any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

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
    impl: str = "cuda",
) -> torch.Tensor:
    """Insert up-1 zeros between pixels, pad, convolve with `f`, keep every down-th pixel.

    x: [N, C, H, W]; f: [fh, fw], [fw] (separable) or None (identity); flip_filter: False
    means true convolution, True means correlation; gain: scales the result (the filter is
    scaled by gain^(f.ndim/2)). Returns [N, C, H', W'] with
    H' = (H*up_y + pad_y0 + pad_y1 - fh + down_y) // down_y.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be [N, C, H, W], got shape {list(x.shape)}")
    plugin = fused_plugin() if custom_ops.wants_fused(impl, x) else None
    if plugin is None:
        return _upfirdn2d_ref(
            x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain
        )
    return _upfirdn2d_cuda(
        plugin, x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain
    )


def fused_plugin() -> ModuleType | None:
    """The built upfirdn2d kernel once it passed its self-check; None: use the reference."""
    return custom_ops.load_checked_plugin("lyriscope_upfirdn2d", _CUDA_SOURCES, _check_plugin)


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "cuda",
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
    impl: str = "cuda",
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
    impl: str = "cuda",
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


@dataclass(frozen=True)
class _Geometry:
    """What the kernel does besides filtering: zero insertion, padding, subsampling."""

    up: tuple[int, int]  # (x, y)
    down: tuple[int, int]
    pad: tuple[int, int, int, int]  # (x0, x1, y0, y1)

    def transposed(self, in_size: tuple[int, int], f_size: tuple[int, int]) -> _Geometry:
        """The geometry of the gradient: the adjoint maps the output back onto `in_size`.

        in_size: (W, H) of the forward input; f_size: (fw, fh). The adjoint zero-inserts
        by `down`, pads so that a correlation with the flipped filter undoes the forward
        padding (which becomes a crop and vice versa), and subsamples by `up`.
        """
        pads = []
        for axis in (0, 1):
            size, taps = in_size[axis], f_size[axis]
            up, down = self.up[axis], self.down[axis]
            before, after = self.pad[2 * axis], self.pad[2 * axis + 1]
            conv = size * up + before + after - taps + 1  # the forward's unsubsampled length
            out = (conv + down - 1) // down
            pads += [taps - 1 - before, taps - 1 + conv - out * down - after]
        return _Geometry(up=self.down, down=self.up, pad=(pads[0], pads[1], pads[2], pads[3]))


def _upfirdn2d_cuda(
    plugin: ModuleType,
    x: torch.Tensor,
    f: torch.Tensor | None,
    *,
    up: Scaling,
    down: Scaling,
    padding: Padding,
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    # The kernel correlates with one 2-D filter: fold separability, gain and flip into it.
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    f = torch.ones([1, 1]) if f is None else f
    f = f.to(device=x.device, dtype=acc)
    f = (torch.outer(f, f) if f.ndim == 1 else f) * gain
    if not flip_filter:
        f = f.flip([0, 1])
    geometry = _Geometry(parse_scaling(up), parse_scaling(down), parse_padding(padding))
    return _UpFirDn2dCuda.apply(x, f.contiguous(), geometry, plugin)


class _UpFirDn2dCuda(torch.autograd.Function):
    """upfirdn2d on the fused kernel; the gradient is this op on the transposed geometry."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, f: torch.Tensor, geometry: _Geometry, plugin: ModuleType
    ) -> torch.Tensor:
        ctx.save_for_backward(f)
        ctx.geometry, ctx.plugin = geometry, plugin
        ctx.in_size = (x.shape[3], x.shape[2])
        (upx, upy), (downx, downy), pad = geometry.up, geometry.down, geometry.pad
        return plugin.upfirdn2d(x, f, upx, upy, downx, downy, *pad)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (f,) = ctx.saved_tensors
        geometry: _Geometry = ctx.geometry
        back = geometry.transposed(ctx.in_size, (f.shape[1], f.shape[0]))
        dx = _UpFirDn2dCuda.apply(dy, f.flip([0, 1]).contiguous(), back, ctx.plugin)
        return dx, None, None, None


def _check_plugin(plugin: ModuleType, device: str = "cuda") -> str | None:
    """Compare a freshly built kernel with the reference on small inputs; None if they agree."""
    gen = torch.Generator(device=device).manual_seed(0)
    binomial = setup_filter([1, 3, 3, 1])
    long_taps = setup_filter([0.1, -0.2, 0.5, 1.0, 0.7, 0.3, -0.1, 0.05], separable=True)
    cases = [  # (shape, filter, kwargs, dtype, channels_last)
        ([2, 3, 7, 5], binomial, dict(up=2, padding=[2, 1, 2, 1], gain=4), torch.float32, False),
        ([2, 3, 8, 9], binomial, dict(down=2, padding=1), torch.float32, False),
        (
            [1, 2, 9, 6],
            long_taps,
            dict(up=[1, 2], down=[3, 1], padding=[-1, 4, 3, -2], flip_filter=True),
            torch.float32,
            False,
        ),
        ([2, 8, 6, 6], binomial, dict(up=2, padding=[2, 1, 2, 1], gain=4), torch.float16, True),
    ]
    for shape, f, kwargs, dtype, channels_last in cases:
        x = torch.randn(shape, device=device, generator=gen).to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        f = f.to(device)
        tol = 1e-2 if dtype == torch.float16 else 1e-5
        outputs = []
        for run in (_upfirdn2d_ref, lambda *a, **k: _upfirdn2d_cuda(plugin, *a, **k)):
            xi = x.detach().requires_grad_(True)
            y = run(
                xi,
                f,
                **{"up": 1, "down": 1, "padding": 0, "flip_filter": False, "gain": 1, **kwargs},
            )
            w = torch.linspace(-1, 1, y.numel(), device=device).reshape(y.shape).to(dtype)
            (gx,) = torch.autograd.grad((y * w).sum(), [xi])
            outputs.append([y, gx])
        problem = custom_ops.first_difference(("y", "dy/dx"), *outputs, tol=tol)
        if problem is not None:
            return f"{kwargs} {dtype} {problem}"
    return None
