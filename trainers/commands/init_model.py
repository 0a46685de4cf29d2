"""Write a generator with random weights: for benchmarks, tests and trying the engine before training.

Example:
    lyriscope init-model --size 256 --channel-base 16384 -o models/random-256.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lyriscope.errors import LyriscopeError

if TYPE_CHECKING:
    import torch

MIN_SIZE = 4
MAX_SIZE = 4096


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        type=int,
        required=True,
        help="image side in pixels, a power of two (e.g. 256, 1024)",
    )
    parser.add_argument(
        "--channel-base",
        type=int,
        default=32768,
        help="channels at a resolution = min(channel_base / res, channel_max) "
        "(default 32768, NVlabs' paper configs; 16384 halves the size)",
    )
    parser.add_argument(
        "--channel-max", type=int, default=512, help="most channels of any layer (default 512)"
    )
    parser.add_argument(
        "--mapping-layers", type=int, default=8, help="depth of the mapping network (default 8)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random weights (default 0)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="model file to write (.safetensors)"
    )


def random_generator(
    size: int,
    *,
    channel_base: int = 32768,
    channel_max: int = 512,
    mapping_layers: int = 8,
    seed: int = 0,
) -> torch.nn.Module:
    """A Generator of `size`² with weights drawn from `seed` (the global torch RNG is left alone)."""
    import torch

    from lyriscope.trainers.checkpoint import build_generator

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
    config = {
        "z_dim": 512,
        "c_dim": 0,
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


def run(args: argparse.Namespace) -> int:
    from lyriscope.trainers.checkpoint import save_model

    if args.output.suffix != ".safetensors":
        raise LyriscopeError(
            f"-o {args.output}: lyriscope models are .safetensors files; "
            f"name it e.g. {args.output.with_suffix('.safetensors').name}"
        )
    G = random_generator(
        args.size,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        mapping_layers=args.mapping_layers,
        seed=args.seed,
    )
    save_model(args.output, G, extra={"random_init": {"seed": args.seed}})
    count = sum(p.numel() for p in G.parameters())
    print(
        f"wrote {args.output}: random {args.size}x{args.size} generator, {count:,} parameters, "
        f"num_ws {G.num_ws}"
    )
    return 0
