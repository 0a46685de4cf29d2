"""Write a generator with random weights: for benchmarks, tests and trying the engine before training.

Example:
    lyriscope init-model --size 256 --channel-base 16384 -o models/random-256.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lyriscope.errors import LyriscopeError
from lyriscope.trainers.checkpoint import save_model
from lyriscope.trainers.network_options import add_network_options
from lyriscope.trainers.random_model import random_generator


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        type=int,
        required=True,
        help="image side in pixels, a power of two (e.g. 256, 1024)",
    )
    add_network_options(
        parser, defaults="", channel_base=32768, channel_max=512, mapping_layers=8
    )  # NVlabs' paper configs; --channel-base 16384 halves the widths
    parser.add_argument(
        "--classes",
        type=int,
        default=0,
        help="classes of a conditional model, one per line of a song model (default 0: none)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random weights (default 0)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="model file to write (.safetensors)"
    )


def run(args: argparse.Namespace) -> int:
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
        c_dim=args.classes,
        seed=args.seed,
    )
    save_model(args.output, G, extra={"random_init": {"seed": args.seed}})
    count = sum(p.numel() for p in G.parameters())
    print(
        f"wrote {args.output}: random {args.size}x{args.size} generator, {count:,} parameters, "
        f"num_ws {G.num_ws}" + (f", {G.c_dim} classes" if G.c_dim else "")
    )
    return 0
