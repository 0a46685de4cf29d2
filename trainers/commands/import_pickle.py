"""Convert an NVlabs network pickle (PyTorch or TensorFlow era) to a lyriscope .safetensors model.

The pickle is read as data: its embedded source code is never run, and a pickle that asks
for anything but network parts is refused.

Example:
    lyriscope import network-snapshot-001200.pkl -o sets/demo/models/line-01.safetensors
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lyriscope.errors import CheckpointError
from lyriscope.trainers.checkpoint import save_model
from lyriscope.trainers.nvlabs_pickle import import_generator

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pickle",
        type=Path,
        help="NVlabs network pickle (network-snapshot-NNNNNN.pkl, or a TF-era .pkl)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="model file to write (.safetensors)"
    )
    parser.add_argument(
        "--which",
        choices=("G_ema", "G"),
        default="G_ema",
        help="which generator of the snapshot: the averaged G_ema (default) or G",
    )


def run(args: argparse.Namespace) -> int:
    if args.output.suffix != ".safetensors":
        raise CheckpointError(
            f"-o {args.output}: lyriscope models are .safetensors files; "
            f"name it e.g. {args.output.with_suffix('.safetensors').name}"
        )
    imported = import_generator(args.pickle, which=args.which)
    G = imported.G
    save_model(args.output, G, kimg=imported.kimg, extra={"imported_from": imported.info})
    print(
        f"wrote {args.output}: {G.img_resolution}x{G.img_resolution} generator "
        f"(z_dim {G.z_dim}, c_dim {G.c_dim}, num_ws {G.num_ws}) from {args.which} of "
        f"{args.pickle.name}"
    )
    return 0
