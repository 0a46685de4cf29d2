"""Render a set to an MP4 (H.264 + AAC, the song sample for sample) or a folder of PNG frames."""

from __future__ import annotations

import argparse
from pathlib import Path

from lyriscope.engine.commands.options import add_fast_option
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
        help="H.264 quality, 0 best .. 51 worst (default: [output] crf)",
    )
    parser.add_argument("--preset", default="medium", help="x264 preset (default medium)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1")
    add_fast_option(parser)
    parser.add_argument("--batch", type=int, default=8, help="frames synthesized together")
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
    )
    result = render(songset, out, options=options)
    print(
        f"wrote {result.path}: {result.frames} frames at {result.fps:g} fps, "
        f"{result.size}x{result.size}, in {result.seconds:.1f} s "
        f"({result.frames_per_second:.1f} frames/s)"
    )
    return 0
