"""Verify a set's downloaded images and cluster each line's images with K-means, per query.

Writes sets/NAME/images/line-NN/verified.jsonl and sets/NAME/clusters/line-NN/ (contact
sheets and clusters.json) for `lyriscope curate`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lyriscope.dataset_tools.cluster import cluster_line, images_dir, select_lines
from lyriscope.dataset_tools.curation import load_curation
from lyriscope.dataset_tools.features import (
    DEFAULT_CLIP_MODEL,
    FEATURE_KINDS,
    FeatureOptions,
    load_clip_from,
)
from lyriscope.dataset_tools.verify import VerifyOptions, rejections_in_words
from lyriscope.errors import DatasetError
from lyriscope.setmodel import load_set

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", type=Path, help="the set folder (sets/NAME)")
    parser.add_argument(
        "--line", type=int, default=None, help="only this line (from 1); default all"
    )
    parser.add_argument(
        "--k",
        type=int,
        default=10,
        help="clusters per query (fewer when there are fewer images); default 10",
    )
    parser.add_argument(
        "--features",
        choices=FEATURE_KINDS,
        default="descriptor",
        help="image features: built-in colour/texture descriptor (default), "
        "VGG16 fc7 (needs --vgg16) or CLIP (needs open_clip and --clip)",
    )
    parser.add_argument(
        "--vgg16",
        type=Path,
        default=None,
        help="torchvision vgg16-397923af.pth (default $LYRISCOPE_VGG16)",
    )
    parser.add_argument(
        "--clip", type=Path, default=None, help="open_clip weight file (default $LYRISCOPE_CLIP)"
    )
    parser.add_argument(
        "--clip-model",
        default=DEFAULT_CLIP_MODEL,
        help=f"open_clip architecture of --clip; default {DEFAULT_CLIP_MODEL}",
    )
    parser.add_argument(
        "--describe",
        nargs="?",
        const="",
        default=None,
        metavar="TEXT",
        help="with --features clip: score images and clusters against TEXT "
        "(without TEXT: each line's lyric)",
    )
    parser.add_argument(
        "--min-side",
        type=int,
        default=256,
        help="reject images whose shorter side is below this many pixels; default 256",
    )
    parser.add_argument(
        "--near-bits",
        type=int,
        default=6,
        help="perceptual-hash distance (of 64 bits) for near duplicates; default 6",
    )
    parser.add_argument(
        "--background",
        choices=("white", "black"),
        default="white",
        help="what transparent pixels are composited on; default white",
    )


def run(args: argparse.Namespace) -> int | None:
    if args.k < 1:
        raise DatasetError(f"--k {args.k}: expected at least 1 cluster")
    if args.min_side < 1 or not 0 <= args.near_bits <= 64:
        raise DatasetError("--min-side must be at least 1 and --near-bits in 0..64")
    song_set = load_set(args.set)
    features = FeatureOptions(
        kind=args.features, vgg16=args.vgg16, clip=args.clip, clip_model=args.clip_model
    )
    verify = VerifyOptions(
        min_side=args.min_side, near_bits=args.near_bits, background=args.background
    )
    if args.describe is not None and args.features != "clip":
        raise DatasetError("--describe ranks images with CLIP: add --features clip")
    clip = load_clip_from(features) if args.features == "clip" else None  # once for all lines
    decided = load_curation(song_set.root)["lines"]
    done = 0
    for line in select_lines(len(song_set.lines), args.line, source=str(song_set.path)):
        if args.line is None and not images_dir(song_set.root, line).is_dir():
            log.warning("line %d has no images folder; skipped", line + 1)
            continue
        if str(line + 1) in decided:
            log.warning(
                "line %d: curation.json has decisions for the old clusters; check them "
                "again in `lyriscope curate` (cluster numbers may have changed)",
                line + 1,
            )
        describe = None
        if args.describe is not None:
            describe = args.describe or song_set.lines[line].text
        doc = cluster_line(
            song_set.root,
            line,
            k=args.k,
            features=features,
            verify=verify,
            describe=describe,
            clip=clip,
            progress=True,
        )
        merged = doc["groups"][0]
        kept = sum(c["count"] for c in merged["clusters"])
        rejected = rejections_in_words(doc["rejected"], min_side=verify.min_side)
        print(
            f"line {line + 1}: {kept} images in {len(merged['clusters'])} clusters "
            f"({len(doc['groups']) - 1 or 1} queries); rejected: {rejected}"
        )
        done += 1
    if not done:
        raise DatasetError(f"{song_set.root}: no line has images; run `lyriscope collect` first")
    return 0
