"""Preview a line's loop while tuning a set: a short clip and a strip of its keyframes, re-rendered on save."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lyriscope.engine.commands.options import add_fast_option, runtime_options
from lyriscope.engine.file_watch import watch
from lyriscope.engine.offline.loops import LoopOptions, check_line, keyframe_strip, render_loop
from lyriscope.engine.synth.runtime import Generator
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import frame_side, load_set, require_models
from lyriscope.timebase import Timebase, positive_seconds

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", type=Path, help="the set folder (sets/NAME) or its set.toml")
    parser.add_argument("--line", type=int, required=True, metavar="N", help="the line (1-based)")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="folder for the clip and strip (default: sets/NAME/preview)",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="clip length (default: one whole loop)"
    )
    parser.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    parser.add_argument(
        "--fps", type=float, default=None, help="frames per second (default [output] fps)"
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="render again whenever set.toml changes (Ctrl-C to stop)",
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    add_fast_option(parser)


def run(args: argparse.Namespace) -> int:
    songset = load_set(args.set)
    frame_side(args.size, where="--size")  # the flags once, before any work (and any --watch)
    if args.seconds is not None:
        positive_seconds(args.seconds, where="--seconds")
    _preview(args)
    if args.watch:
        print(f"watching {songset.path}; Ctrl-C to stop")

        def again() -> None:
            try:
                _preview(args)
            except LyriscopeError as exc:  # keep watching: the next save may fix it
                print(f"lyriscope preview: {exc}")

        watch(songset.path, again)
    return 0


def _preview(args: argparse.Namespace) -> None:
    songset = load_set(args.set)
    timebase = Timebase.from_set(songset, fps=args.fps, flag="--fps")
    line = args.line - 1
    check_line(songset, line)
    require_models(songset, [line])  # only this line's model: the others may be in training
    out = args.out or songset.root / "preview"
    generator = Generator.from_set(songset, options=runtime_options(args), lines=[line])
    clip = out / f"line-{args.line:02d}.mp4"
    n = render_loop(
        songset,
        line,
        clip,
        generator=generator,
        options=LoopOptions(
            size=args.size, timebase=timebase, seconds=args.seconds, progress=False
        ),
    )
    strip = keyframe_strip(
        songset,
        line,
        out / f"line-{args.line:02d}-keyframes.png",
        generator=generator,
        timebase=timebase,
    )
    print(f"wrote {clip} ({n} frames) and {strip}")
