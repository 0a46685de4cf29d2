"""Write one PNG per seed from a model: the same seed gives the same image as NVlabs' generate.py.

Example:
    lyriscope sample models/line-01.safetensors --seeds 0-3,42 --trunc 0.7 -o samples/
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from lyriscope.atomic import atomic_path
from lyriscope.errors import LyriscopeError
from lyriscope.trainers.devices import pick_device
from lyriscope.trainers.model_or_pickle import load_model_or_pickle
from lyriscope.trainers.seeds import parse_seeds, seed_images

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        type=Path,
        help="a lyriscope .safetensors model or an NVlabs .pkl (imported on the fly)",
    )
    parser.add_argument(
        "--seeds", required=True, help="seeds as a list with ranges, e.g. 0,1,7 or 0-3,42"
    )
    parser.add_argument(
        "--trunc",
        type=float,
        default=1.0,
        help="truncation psi: 1 no truncation, 0.7 typical, 0 the average image",
    )
    parser.add_argument(
        "--class",
        dest="class_index",
        type=int,
        default=None,
        help="class index for a conditional model",
    )
    parser.add_argument(
        "--noise-mode",
        choices=("const", "random", "none"),
        default="const",
        help="per-pixel noise: the stored constant (default), fresh, or none",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (CUDA when present), cpu, cuda, cuda:1, ...",
    )
    parser.add_argument(
        "-o", "--outdir", type=Path, required=True, help="folder for the PNGs (seed0000.png, ...)"
    )


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)  # fail on a bad list before loading anything
    device = pick_device(args.device)
    G = load_model_or_pickle(args.model, device=device)
    class_index = args.class_index
    if G.c_dim == 0 and class_index is not None:
        log.warning("--class %d ignored: %s is unconditional", class_index, args.model)
        class_index = None
    if G.c_dim > 0 and class_index is None:
        raise LyriscopeError(
            f"{args.model} is conditional ({G.c_dim} classes); pick one with "
            f"--class 0..{G.c_dim - 1}"
        )
    args.outdir.mkdir(parents=True, exist_ok=True)
    images = seed_images(
        G, seeds, psi=args.trunc, class_index=class_index, noise_mode=args.noise_mode
    )
    for seed, pixels in tqdm(images, total=len(seeds), desc="sample", unit="img"):
        mode = "L" if pixels.shape[2] == 1 else "RGB"
        with atomic_path(args.outdir / f"seed{seed:04d}.png") as tmp:
            Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode).save(
                tmp, format="PNG"
            )
    print(f"wrote {len(seeds)} image(s) to {args.outdir}")
    return 0
