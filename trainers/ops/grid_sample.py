"""Bilinear 2-D grid sampling built from plain torch ops, so gradients of gradients exist.

ADA's geometric augmentations sample the images with a grid, and the R1 penalty
differentiates D's gradient w.r.t. those images once more; torch's own grid_sample has no
double backward for its input gradient on every version. Gathers and products do.
"""

from __future__ import annotations

import torch


def grid_sample(
    input: torch.Tensor, grid: torch.Tensor, *, align_corners: bool = False
) -> torch.Tensor:
    """Sample input [N, C, H, W] at grid [N, Ho, Wo, 2] -> [N, C, Ho, Wo], bilinear, zeros outside.

    grid holds (x, y) in [-1, 1] (x along W, y along H), with the same meaning of
    align_corners as torch.nn.functional.grid_sample. Differentiable twice w.r.t. both.
    """
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(
            f"expected input [N, C, H, W] and grid [N, Ho, Wo, 2], "
            f"got {list(input.shape)} and {list(grid.shape)}"
        )
    n, c, h, w = input.shape
    ho, wo = grid.shape[1:3]
    grid = grid.to(input.dtype)
    ix = _unnormalize(grid[..., 0], w, align_corners).reshape(n, -1)  # [N, Ho*Wo] pixel x
    iy = _unnormalize(grid[..., 1], h, align_corners).reshape(n, -1)  # [N, Ho*Wo] pixel y
    x0 = ix.detach().floor()
    y0 = iy.detach().floor()
    tx = ix - x0  # carries the gradient w.r.t. the grid
    ty = iy - y0

    flat = input.reshape(n, c, h * w)
    out = input.new_zeros([n, c, ho * wo])
    for dx, dy, weight in (
        (0, 0, (1 - tx) * (1 - ty)),
        (1, 0, tx * (1 - ty)),
        (0, 1, (1 - tx) * ty),
        (1, 1, tx * ty),
    ):
        xs = x0 + dx
        ys = y0 + dy
        inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
        index = ys.clamp(0, h - 1).long() * w + xs.clamp(0, w - 1).long()  # [N, Ho*Wo]
        values = flat.gather(2, index.unsqueeze(1).expand(n, c, -1))  # [N, C, Ho*Wo]
        out = out + values * (weight * inside).unsqueeze(1)
    return out.reshape(n, c, ho, wo)


def _unnormalize(coord: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return ((coord + 1) * size - 1) / 2
