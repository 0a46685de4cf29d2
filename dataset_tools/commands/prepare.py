"""Write each line's kept images as an NVlabs-compatible dataset zip of square PNGs.

sets/NAME/data/line-NN.zip (same-size square PNGs + dataset.json) and data/summary.json.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from lyriscope.dataset_tools.cluster import images_dir, select_lines
from lyriscope.dataset_tools.prepare import (
    BALANCE_MODES,
    PrepareOptions,
    prepare_line,
    prepare_song,
)
from lyriscope.dataset_tools.verify import rejections_in_words
from lyriscope.errors import DatasetError
from lyriscope.setmodel import SongSet, load_set

log = logging.getLogger(__name__)

FEW_IMAGES = 32  # the largest minibatch of StyleGAN2-ADA's 'auto' configuration on one GPU


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", type=Path, help="the set folder (sets/NAME)")
    parser.add_argument(
        "--line", type=int, default=None, help="only this line (from 1); default all"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="image side in pixels; default [output] size of set.toml",
    )
    parser.add_argument(
        "--square",
        choices=("crop", "pad"),
        default="crop",
        help="make images square by centre crop (default) or by padding",
    )
    parser.add_argument(
        "--conditional",
        action="store_true",
        help="one dataset for the whole song (data/song.zip), each image labelled with its "
        "line, to train one class-conditional model",
    )
    parser.add_argument(
        "--balance",
        choices=BALANCE_MODES,
        default="none",
        help="with --conditional: repeat images of smaller lines (oversample) or keep as many "
        "of each line as the smallest has (undersample), so every line weighs the same; "
        "default none",
    )
    parser.add_argument(
        "--background",
        choices=("white", "black"),
        default="white",
        help="what transparent pixels are composited on; default white",
    )


def run(args: argparse.Namespace) -> int | None:
    song_set = load_set(args.set)
    size = song_set.output.size if args.size is None else args.size
    if not 16 <= size <= 8192:
        raise DatasetError(f"--size {size}: expected a side of 16..8192 pixels")
    options = PrepareOptions(size=size, square=args.square, background=args.background)
    if args.conditional:
        return _prepare_song(song_set, args, options)
    if args.balance != "none":
        raise DatasetError("--balance: only with --conditional (one dataset for all lines)")
    summaries = []
    for line in select_lines(len(song_set.lines), args.line, source=str(song_set.path)):
        if args.line is None and not images_dir(song_set.root, line).is_dir():
            log.warning("line %d has no images folder; skipped", line + 1)
            continue
        summary = prepare_line(song_set.root, line, options=options, progress=True)
        dropped = rejections_in_words(summary["dropped"])
        print(
            f"line {summary['line']}: {summary['images']} images -> {summary['zip']}; "
            f"dropped: {dropped}"
        )
        if summary["images"] < FEW_IMAGES:
            print(
                f"warning: line {summary['line']} has only {summary['images']} images, fewer "
                f"than one training minibatch (StyleGAN2-ADA's auto configuration takes up to "
                f"{FEW_IMAGES} a step): every step repeats them; a few hundred make a model "
                f"that varies (collect more, or keep more clusters)"
            )
        summaries.append(summary)
    if not summaries:
        raise DatasetError(f"{song_set.root}: no line has images; run `lyriscope collect` first")
    log.info("summary: %s", json.dumps(summaries))
    return 0


def _prepare_song(song_set: SongSet, args: argparse.Namespace, options: PrepareOptions) -> int:
    lines = select_lines(len(song_set.lines), args.line, source=str(song_set.path))
    summary = prepare_song(
        song_set.root, lines, balance=args.balance, options=options, progress=True
    )
    for number, line in summary["lines"].items():
        repeated = "" if line["written"] == line["images"] else f" (written {line['written']})"
        print(f"line {number}: {line['images']} images{repeated}, label {int(number) - 1}")
    total = sum(line["written"] for line in summary["lines"].values())
    print(f"wrote {summary['zip']}: {total} images of {len(lines)} lines at {options.size}px")
    return 0
