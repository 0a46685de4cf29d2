"""Write one PNG per seed from a model: the same seed gives the same image as NVlabs' generate.py.

A conditional model draws the class --class N; given a set instead of a model file,
`--line N` draws line N with its model (for a line on the song's conditional model: with
the line's class). --grid writes one contact sheet of all seeds instead (grid.png); for a
conditional model without a class, one row per class.

Example:
    lyriscope sample models/line-01.safetensors --seeds 0-3,42 --trunc 0.7 -o samples/
    lyriscope sample sets/song --line 3 --seeds 0-8 --grid -o samples/
    lyriscope sample sets/song/models/song.safetensors --seeds 0-5 --grid -o samples/
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lyriscope.atomic import atomic_path
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SET_FILE, load_set, require_models
from lyriscope.trainers.contact_sheet import contact_sheet
from lyriscope.trainers.devices import pick_device
from lyriscope.trainers.model_or_pickle import load_model_or_pickle
from lyriscope.trainers.seeds import class_labels, parse_seeds, seed_images

log = logging.getLogger(__name__)
GRID_FILE = "grid.png"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        type=Path,
        help="a lyriscope .safetensors model, an NVlabs .pkl (imported on the fly), "
        "or a set folder (or its set.toml) with --line N",
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
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--class",
        dest="class_index",
        type=int,
        default=None,
        help="class index for a conditional model (0-based, as NVlabs' --class)",
    )
    which.add_argument(
        "--line",
        type=int,
        default=None,
        metavar="N",
        help="with a set: line N (1-based) with its model, and its class on the song's model",
    )
    parser.add_argument(
        "--grid",
        action="store_true",
        help=f"one contact sheet of all seeds ({GRID_FILE}) instead of a PNG per seed; "
        "a conditional model without a class gets a row per class",
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


@dataclass(frozen=True, kw_only=True)
class Source:
    """What to draw: a model file and the class of it (None: unconditional, or every class)."""

    model: Path
    class_index: int | None


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)  # fail on a bad list before loading anything
    source = _source(args)
    device = pick_device(args.device)
    G = load_model_or_pickle(source.model, device=device)
    class_index = source.class_index
    if G.c_dim == 0 and class_index is not None:
        log.warning("--class %d ignored: %s is unconditional", class_index, source.model)
        class_index = None
    if G.c_dim > 0 and class_index is None and not args.grid:
        raise LyriscopeError(
            f"{source.model} is conditional ({G.c_dim} classes); pick one with "
            f"--class 0..{G.c_dim - 1} (or --grid for a row per class)"
        )
    class_labels(G.c_dim, class_index)  # a class the model lacks fails before any image
    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.grid:
        classes = [class_index] if class_index is not None or G.c_dim == 0 else range(G.c_dim)
        rows = [[pixels for _, pixels in _images(G, seeds, args, class_index=c)] for c in classes]
        columns = len(seeds) if len(rows) > 1 else None  # classes: one row each
        sheet = contact_sheet([image for row in rows for image in row], columns=columns)
        _save(sheet, args.outdir / GRID_FILE)
        per_class = f", a row for each of {len(rows)} classes" if len(rows) > 1 else ""
        print(f"wrote {args.outdir / GRID_FILE}: {len(seeds)} seed(s){per_class}")
        return 0
    images = _images(G, seeds, args, class_index=class_index)
    for seed, pixels in tqdm(images, total=len(seeds), desc="sample", unit="img"):
        _save(pixels, args.outdir / f"seed{seed:04d}.png")
    print(f"wrote {len(seeds)} image(s) to {args.outdir}")
    return 0


def _source(args: argparse.Namespace) -> Source:
    """The model file and class that the arguments name (a set's line, or a model)."""
    given = args.model
    is_set = given.is_dir() or given.name == SET_FILE
    if not is_set:
        if args.line is not None:
            raise LyriscopeError(
                f"--line {args.line} names a line of a set; give the set folder instead of "
                f"{given}, or --class N for a class of this model"
            )
        return Source(model=given, class_index=args.class_index)
    songset = load_set(given)
    if args.line is None:
        raise LyriscopeError(
            f"{songset.path} is a set; choose its line with --line N (1 to {len(songset.lines)})"
        )
    if not 1 <= args.line <= len(songset.lines):
        raise LyriscopeError(
            f"--line {args.line}: {songset.path} has lines 1 to {len(songset.lines)}"
        )
    line = songset.lines[args.line - 1]
    require_models(songset, [line.index])
    return Source(model=line.model, class_index=line.label)


def _images(G, seeds: list[int], args: argparse.Namespace, *, class_index: int | None):
    return seed_images(
        G, seeds, psi=args.trunc, class_index=class_index, noise_mode=args.noise_mode
    )


def _save(pixels: np.ndarray, path: Path) -> None:
    """uint8 [H, W, C] as a PNG, written atomically (greyscale stays one channel)."""
    image = (
        Image.fromarray(pixels[:, :, 0], "L")
        if pixels.shape[2] == 1
        else Image.fromarray(pixels, "RGB")
    )
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
