"""Seeds and pixels as NVlabs' generate.py defines them, so a seed shows the same image here and there.

A seed is a latent: z = numpy.random.RandomState(seed).randn(1, z_dim) (float64, cast to
float32 by the mapping). An image in [-1, 1] becomes pixels as
(img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(uint8).

Example:
    >>> parse_seeds("0,1,7-9")
    [0, 1, 7, 8, 9]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from lyriscope.errors import LyriscopeError

_SEED_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
MAX_SEED = 2**32 - 1  # numpy RandomState accepts seeds in [0, 2**32)


def parse_seeds(text: str) -> list[int]:
    """Seeds from "0,1,7" or ranges like "0-3" (inclusive), in the order given."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.isdigit():
            seeds.append(int(part))
            continue
        match = _SEED_RANGE.match(part)
        if match is None:
            raise LyriscopeError(
                f"seed list {text!r}: {part!r} is not a seed; write numbers and ranges "
                f"like 0,1,7 or 0-3"
            )
        first, last = int(match.group(1)), int(match.group(2))
        if last < first:
            raise LyriscopeError(
                f"seed list {text!r}: the range {part!r} runs backwards; write it as {last}-{first}"
            )
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise LyriscopeError(f"seed list {text!r} names no seed; write e.g. 0,1,7 or 0-3")
    too_big = [s for s in seeds if s > MAX_SEED]
    if too_big:
        raise LyriscopeError(f"seed {too_big[0]} is too large; seeds go from 0 to {MAX_SEED}")
    return seeds


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """The latent of `seed` as generate.py draws it: float64 [1, z_dim]."""
    if not 0 <= seed <= MAX_SEED:
        raise LyriscopeError(f"seed {seed} is out of range; seeds go from 0 to {MAX_SEED}")
    return np.random.RandomState(seed).randn(1, z_dim)


def seeds_to_z(
    seeds: Iterable[int], z_dim: int, *, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Latents of several seeds stacked: float32 [N, z_dim]."""
    rows = [seed_to_z(seed, z_dim) for seed in seeds]
    return torch.from_numpy(np.concatenate(rows, axis=0)).to(device, torch.float32)  # [N, z_dim]


def class_labels(
    c_dim: int, class_index: int | None, count: int = 1, *, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Labels for `count` images: zeros [count, c_dim] with a one at `class_index` (None: all zero)."""
    labels = torch.zeros(count, c_dim, device=device)  # [N, c_dim]
    if class_index is not None:
        if not 0 <= class_index < c_dim:
            raise LyriscopeError(
                f"class {class_index} does not exist; this model has classes 0 to {c_dim - 1}"
                if c_dim
                else f"class {class_index} given, but this model is unconditional"
            )
        labels[:, class_index] = 1
    return labels


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] -> uint8 pixels [N, H, W, C] (generate.py's rounding)."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def seed_images(
    G: torch.nn.Module,
    seeds: Iterable[int],
    *,
    psi: float = 1.0,
    class_index: int | None = None,
    noise_mode: str = "const",
) -> Iterator[tuple[int, np.ndarray]]:
    """(seed, uint8 image [H, W, C]) for each seed, one at a time as generate.py draws them."""
    device = next(G.parameters()).device
    label = class_labels(G.c_dim, class_index, device=device)  # [1, c_dim]
    for seed in seeds:
        z = seeds_to_z([seed], G.z_dim, device=device)  # [1, z_dim]
        img = G(z, label, truncation_psi=psi, noise_mode=noise_mode)  # [1, C, H, W]
        yield seed, to_uint8(img)[0].cpu().numpy()
