"""Write one seamless loop video per line (no audio), as the paper cut them: first image = last."""

from __future__ import annotations

import argparse
from pathlib import Path

from lyriscope.engine.commands.options import add_fast_option, runtime_options
from lyriscope.engine.offline.loops import LoopOptions, check_line, render_loop
from lyriscope.engine.synth.runtime import Generator
from lyriscope.setmodel import frame_side, load_set, require_models
from lyriscope.timebase import Timebase


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", type=Path, help="the set folder (sets/NAME) or its set.toml")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="folder for line-NN.mp4 (default: sets/NAME/loops)",
    )
    parser.add_argument(
        "--line",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="only line N (1-based; repeatable)",
    )
    parser.add_argument(
        "--size", type=int, default=None, help="side in pixels (default [output] size)"
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="frames per second (default [output] fps)"
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    add_fast_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    songset = load_set(args.set)
    timebase = Timebase.from_set(songset, fps=args.fps, flag="--fps")
    size = None if args.size is None else frame_side(args.size, where="--size")
    lines = [n - 1 for n in args.line] if args.line else range(len(songset.lines))
    for line in lines:
        check_line(songset, line)
    require_models(songset, lines)  # only the models of the lines asked for
    out = args.out or songset.root / "loops"
    generator = Generator.from_set(songset, options=runtime_options(args), lines=lines)
    options = LoopOptions(
        size=size, timebase=timebase, device=args.device, progress=not args.no_progress
    )
    for line in lines:
        path = out / f"line-{line + 1:02d}.mp4"
        n = render_loop(songset, line, path, generator=generator, options=options)
        print(f"wrote {path}: {n} frames, loops seamlessly")
    return 0
