"""Generators with random weights: for benchmarks, tests and trying the engine before training."""

from __future__ import annotations

import torch

from lyriscope.errors import LyriscopeError
from lyriscope.trainers.checkpoint import build_generator

MIN_SIZE = 4
MAX_SIZE = 4096


def random_generator(
    size: int,
    *,
    channel_base: int = 32768,
    channel_max: int = 512,
    mapping_layers: int = 8,
    c_dim: int = 0,  # classes of a conditional model (one per line of a song model); 0: none
    seed: int = 0,
) -> torch.nn.Module:
    """A Generator of `size`² with weights drawn from `seed` (the global torch RNG is left alone)."""
    if not MIN_SIZE <= size <= MAX_SIZE or size & (size - 1):
        raise LyriscopeError(
            f"--size {size}: the image side must be a power of two from "
            f"{MIN_SIZE} to {MAX_SIZE} (e.g. 256, 512, 1024)"
        )
    for option, value in (
        ("--channel-base", channel_base),
        ("--channel-max", channel_max),
        ("--mapping-layers", mapping_layers),
    ):
        if value < 1:
            raise LyriscopeError(f"{option} {value}: must be a positive number")
    if c_dim < 0:
        raise LyriscopeError(f"--classes {c_dim}: 0 (unconditional) or more")
    config = {
        "z_dim": 512,
        "c_dim": c_dim,
        "w_dim": 512,
        "img_resolution": size,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": mapping_layers},
        "synthesis_kwargs": {"channel_base": channel_base, "channel_max": channel_max},
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build_generator(config)
    return G.eval().requires_grad_(False)
