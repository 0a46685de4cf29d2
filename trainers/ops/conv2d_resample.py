"""2-D convolution with optional FIR up- and downsampling, by the cheapest equivalent route."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lyriscope.trainers.ops import upfirdn2d


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: upfirdn2d.Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    impl: str = "cuda",
) -> torch.Tensor:
    """Upsample x by `up` with filter f, convolve with w, downsample by `down` with f.

    x: [N, C_in, H, W]; w: [C_out, C_in / groups, kh, kw]; f: FIR filter from
    upfirdn2d.setup_filter() (None: no filtering); padding: of the upsampled image,
    (x0, x1, y0, y1) or fewer values; flip_weight: True correlates like torch's conv2d,
    False convolves; impl: of the FIR filtering, 'cuda' (fused where it can) or 'ref'.
    Returns [N, C_out, H', W'].
    """
    _check_args(x, w, up=up, down=down, groups=groups)
    c_out, c_in_per_group, kh, kw = w.shape
    fw, fh = upfirdn2d.filter_size(f)
    px0, px1, py0, py1 = upfirdn2d.parse_padding(padding)

    # The filter's own support needs extra padding around the resampled image.
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    pad = [px0, px1, py0, py1]

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        # A 1x1 conv commutes with filtering: shrink first, convolve fewer pixels.
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, impl=impl)
        return _conv2d(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        # Convolve the small image, then grow it.
        x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(
            x, f, up=up, padding=pad, gain=up**2, flip_filter=flip_filter, impl=impl
        )
    if down > 1 and up == 1:
        # Filter at full resolution, then a strided conv computes only the kept pixels.
        x = upfirdn2d.upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, impl=impl)
        return _conv2d(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        # A strided transposed conv does zero insertion and the conv at once.
        x, pad = _conv_transpose_up(x, w, up=up, pad=pad, groups=groups, flip_weight=flip_weight)
        x = upfirdn2d.upfirdn2d(x, f, padding=pad, gain=up**2, flip_filter=flip_filter, impl=impl)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv2d(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)
    return conv2d_resample_generic(
        x, w, f=f, up=up, down=down, padding=pad, groups=groups,
        flip_weight=flip_weight, flip_filter=flip_filter, padding_adjusted=True, impl=impl,
    )  # fmt: skip


def conv2d_resample_generic(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: upfirdn2d.Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    padding_adjusted: bool = False,
    impl: str = "cuda",
) -> torch.Tensor:
    """The same result as conv2d_resample() by the literal route: upsample, conv, downsample.

    Slow but obviously right; conv2d_resample's shortcuts are tested against it.
    padding_adjusted: True when `padding` already includes the filter's support.
    """
    _check_args(x, w, up=up, down=down, groups=groups)
    pad = list(upfirdn2d.parse_padding(padding))
    if not padding_adjusted:
        fw, fh = upfirdn2d.filter_size(f)
        if up > 1:
            pad = [pad[0] + (fw + up - 1) // 2, pad[1] + (fw - up) // 2,
                   pad[2] + (fh + up - 1) // 2, pad[3] + (fh - up) // 2]  # fmt: skip
        if down > 1:
            pad = [pad[0] + (fw - down + 1) // 2, pad[1] + (fw - down) // 2,
                   pad[2] + (fh - down + 1) // 2, pad[3] + (fh - down) // 2]  # fmt: skip
    x = upfirdn2d.upfirdn2d(
        x,
        f if up > 1 else None,
        up=up,
        padding=pad,
        gain=up**2,
        flip_filter=flip_filter,
        impl=impl,
    )
    x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
    return x


def _conv_transpose_up(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    up: int,
    pad: list[int],
    groups: int,
    flip_weight: bool,
) -> tuple[torch.Tensor, list[int]]:
    """Transposed strided conv for upsampling; returns it and the padding left for the filter."""
    c_out, c_in_per_group, kh, kw = w.shape
    if groups == 1:
        w = w.transpose(0, 1)  # [C_in, C_out, kh, kw]
    else:
        w = w.reshape(groups, c_out // groups, c_in_per_group, kh, kw)
        w = w.transpose(1, 2)
        w = w.reshape(groups * c_in_per_group, c_out // groups, kh, kw)
    px0, px1, py0, py1 = pad
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    # The transposed conv can crop symmetrically; the rest is left to upfirdn2d.
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    if flip_weight:  # a transposed conv convolves where conv2d correlates
        w = w.flip([2, 3])
    x = F.conv_transpose2d(x, w, stride=up, padding=[pyt, pxt], groups=groups)
    return x, [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt]


def _conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    stride: int = 1,
    padding: tuple[int, int] | int = 0,
    groups: int = 1,
    flip_weight: bool = True,
) -> torch.Tensor:
    if not flip_weight:  # torch's conv2d correlates; flipping the kernel makes it convolve
        w = w.flip([2, 3])
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _check_args(x: torch.Tensor, w: torch.Tensor, *, up: int, down: int, groups: int) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"x and w must be 4-D, got {list(x.shape)} and {list(w.shape)}")
    if not (isinstance(up, int) and isinstance(down, int) and up >= 1 and down >= 1):
        raise ValueError(f"up and down must be integers >= 1, got {up!r} and {down!r}")
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(
            f"x has {x.shape[1]} channels but w expects {w.shape[1]} per group x {groups} groups"
        )
