"""Closed loops through keyframes: eased slerp (for z) and periodic Catmull-Rom (for w), both C1.

A loop position is given in cycles (1.0 = one whole loop); key k sits at k / n_keys and the
segment after the last key leads back to key 0, so cycles 0 and 1 give the same point.
"""

from __future__ import annotations

import numpy as np
import torch


def loop_segments(cycles: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Where a loop position falls: segment i [T] int64 (key i -> key (i + 1) % n_keys), u [T] in [0, 1]."""
    s = np.mod(np.asarray(cycles, dtype=np.float64), 1.0) * n_keys
    # np.mod of a tiny negative number rounds up to 1.0; clamping lands it at the end of the last segment.
    i = np.minimum(np.floor(s), n_keys - 1)
    return i.astype(np.int64), s - i


def smoothstep(u: torch.Tensor) -> torch.Tensor:
    """3u² - 2u³: 0 -> 0 and 1 -> 1 with zero slope at both ends."""
    return u * u * (3.0 - 2.0 * u)


def slerp(a: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows a [T, D] -> b [T, D] by u [T]; lerp where they are parallel."""
    a_unit = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = (a_unit * b_unit).sum(dim=1).clamp(-1.0, 1.0)
    omega = torch.acos(cos)  # [T] angle between the rows
    sin = torch.sin(omega)
    parallel = sin < 1e-6
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, 1.0 - u, torch.sin((1.0 - u) * omega) / safe_sin)
    wb = torch.where(parallel, u, torch.sin(u * omega) / safe_sin)
    return wa[:, None] * a + wb[:, None] * b


def slerp_loop(keys: torch.Tensor, cycles: np.ndarray) -> torch.Tensor:
    """Keys [K, D] at loop positions cycles [T] -> [T, D], slerping with an eased parameter.

    The ease (smoothstep) brings the velocity to zero at every key, so the path has no kink
    where one great-circle arc turns into the next (C1), and each seed's image is held briefly.
    """
    n_keys = keys.shape[0]
    i, u = loop_segments(cycles, n_keys)
    i_t = torch.from_numpy(i).to(keys.device)
    u_t = smoothstep(torch.from_numpy(u)).to(keys.device, keys.dtype)
    return slerp(keys[i_t], keys[(i_t + 1) % n_keys], u_t)


def catmull_rom_loop(keys: torch.Tensor, cycles: np.ndarray) -> torch.Tensor:
    """Keys [K, ...] at loop positions cycles [T] -> [T, ...] on a closed uniform Catmull-Rom spline.

    Cubic Hermite segments with tangents (next - previous) / 2: passes through every key, and
    the velocity is continuous everywhere (C1) without stopping at the keys.
    """
    n_keys = keys.shape[0]
    i, u = loop_segments(cycles, n_keys)
    i_t = torch.from_numpy(i).to(keys.device)
    j_t = (i_t + 1) % n_keys
    tangents = (keys.roll(-1, dims=0) - keys.roll(1, dims=0)) / 2  # [K, ...] per segment
    u64 = torch.from_numpy(u)
    u2, u3 = u64 * u64, u64 * u64 * u64
    shape = (-1,) + (1,) * (keys.dim() - 1)

    def basis(h: torch.Tensor) -> torch.Tensor:
        return h.to(keys.device, keys.dtype).view(shape)

    return (
        basis(2 * u3 - 3 * u2 + 1) * keys[i_t]
        + basis(u3 - 2 * u2 + u64) * tangents[i_t]
        + basis(-2 * u3 + 3 * u2) * keys[j_t]
        + basis(u3 - u2) * tangents[j_t]
    )
