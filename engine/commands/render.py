"""Render a set to an MP4 (H.264 + AAC, the song sample for sample) or a folder of PNG frames."""

from __future__ import annotations

import argparse
from pathlib import Path

from lyriscope.engine.commands.options import add_fast_option
from lyriscope.engine.offline.encoder import DEFAULT_PRESET, X264_PRESETS
from lyriscope.engine.offline.render import RenderOptions, render
from lyriscope.setmodel import frame_side, load_set
from lyriscope.timebase import Timebase


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", type=Path, help="the set folder (sets/NAME) or its set.toml")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output .mp4/.mov/.mkv, or a folder for PNG frames "
        "(default: sets/NAME/renders/NAME.mp4)",
    )
    parser.add_argument(
        "--start",
        type=float,
        default=0.0,
        metavar="S",
        help="song time of the first frame in seconds (default 0)",
    )
    parser.add_argument(
        "--end",
        type=float,
        default=None,
        metavar="S",
        help="song time to stop at in seconds (default: the song's end)",
    )
    parser.add_argument(
        "--size", type=int, default=None, help="output side in pixels (default: [output] size)"
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="frames per second (default: [output] fps)"
    )
    parser.add_argument(
        "--crf",
        type=int,
        default=None,
        help="H.264 quality, 0 best .. 51 worst, with any preset (default: [output] crf)",
    )
    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=X264_PRESETS,
        metavar="PRESET",
        help=f"x264 speed/quality trade-off, ultrafast .. veryslow (default {DEFAULT_PRESET}, "
        "for throughput: at the same --crf it took half of medium's encoder time on the demo, "
        "0.25 dB PSNR lower, file no larger; slower presets spend time for quality per bit)",
    )
    parser.add_argument(
        "--encoder-threads",
        type=int,
        default=None,
        metavar="N",
        help="x264 frame threads (default: one per CPU this process may use)",
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1")
    add_fast_option(parser)
    parser.add_argument("--batch", type=int, default=8, help="frames synthesized together")
    parser.add_argument(
        "--depth",
        type=int,
        default=2,
        metavar="N",
        help="batches synthesized ahead while earlier ones go through the post chain and the "
        "encoder (default 2); 0 renders one batch at a time (same frames, slower)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    songset = load_set(args.set, need_models=True)
    timebase = Timebase.from_set(songset, fps=args.fps, flag="--fps")
    size = None if args.size is None else frame_side(args.size, where="--size")
    out = args.out or songset.root / "renders" / f"{songset.name}.mp4"
    options = RenderOptions(
        start_s=args.start,
        end_s=args.end,
        size=size,
        timebase=timebase,
        crf=args.crf,
        preset=args.preset,
        device=args.device,
        batch=args.batch,
        progress=not args.no_progress,
        fast=args.fast,
        depth=args.depth,
        encoder_threads=args.encoder_threads,
    )
    result = render(songset, out, options=options)
    print(f"wrote {result.path}: {result.frames} frames at {result.fps:g} fps, {result.size}²")
    print(result.summary())
    return 0
