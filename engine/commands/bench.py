"""Measure synthesis, live-loop, offline-render and training speed on this machine.

Example:
    lyriscope bench --size 1024 --json bench-h100.json
    lyriscope bench --device cpu --size 128 --channel-base 4096 --channel-max 128
    lyriscope bench --size 1024 --profile profile-h100.json  # allocations, syncs per frame
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from lyriscope.atomic import write_text
from lyriscope.engine.bench.suite import BenchOptions, format_report, run_bench, section_names
from lyriscope.engine.synth.fastpath import FastOptions
from lyriscope.engine.synth.runtime import pick_device
from lyriscope.errors import LyriscopeError
from lyriscope.trainers.network_options import add_network_options
from lyriscope.trainers.random_model import MAX_SIZE, MIN_SIZE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        type=int,
        default=1024,
        help="model and output side in pixels, a power of two (default 1024)",
    )
    parser.add_argument(
        "--batch", type=int, default=1, help="frames per synthesis call (default 1)"
    )
    parser.add_argument(
        "--device", default="auto", help="cuda, cuda:N or cpu (default: CUDA when present)"
    )
    parser.add_argument(
        "--frames", type=int, default=50, help="timed frames per measurement (default 50)"
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed frames before each measurement (default 5)"
    )
    add_network_options(
        parser, defaults="", channel_base=32768, channel_max=512, mapping_layers=8
    )  # the published networks' sizes
    parser.add_argument(
        "--fps",
        type=float,
        default=60.0,
        help="video rate of the live and offline loops (default 60)",
    )
    parser.add_argument(
        "--models",
        type=int,
        default=15,
        help="line models counted in the resident-memory figure (default 15)",
    )
    parser.add_argument(
        "--train-size", type=int, default=None, help="training resolution (default: --size)"
    )
    parser.add_argument(
        "--train-batch", type=int, default=4, help="images per timed training step (default 4)"
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=3,
        help="timed training steps per configuration (default 3)",
    )
    parser.add_argument(
        "--dtype",
        choices=("auto", "fp32", "fp16", "bf16"),
        default="auto",
        help="fast path precision (default: fp16 on CUDA, fp32 on CPU)",
    )
    parser.add_argument(
        "--no-cuda-graph",
        action="store_true",
        help="run the fast path eagerly instead of as a captured CUDA graph",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the fast path instead of capturing a CUDA graph",
    )
    parser.add_argument(
        "--subpixel",
        action="store_true",
        help="fast path: up-convs as a 3x3 conv + pixel shuffle (try on GPUs)",
    )
    parser.add_argument(
        "--pick",
        choices=("auto", "time", "off"),
        default="auto",
        help="fast path layer forms: auto (each layer shape timed once on CUDA, cached), "
        "time (also on the CPU), off (grouped convs, PyTorch epilogues everywhere)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of torch (default: torch's choice); 1 often wins on a busy machine",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write every number, the device and the command to FILE",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="also profile --frames frames of the fast and reference paths "
        "(allocations, host syncs, copies, launches and ops per frame, "
        "the top ops) and write it to FILE as JSON",
    )


def run(args: argparse.Namespace) -> int:
    if not MIN_SIZE <= args.size <= MAX_SIZE or args.size & (args.size - 1):
        raise LyriscopeError(
            f"--size {args.size}: must be a power of two from {MIN_SIZE} to "
            f"{MAX_SIZE} (e.g. 128, 1024)"
        )
    if args.train_size is not None and (
        not MIN_SIZE <= args.train_size <= MAX_SIZE or args.train_size & (args.train_size - 1)
    ):
        raise LyriscopeError(
            f"--train-size {args.train_size}: must be a power of two from {MIN_SIZE} to {MAX_SIZE}"
        )
    for option, path, example in (
        ("--json", args.json, "bench.json"),
        ("--profile", args.profile, "profile.json"),
    ):
        if path is not None and path.is_dir():
            raise LyriscopeError(
                f"{option} {path}: is a folder; give a file name such as {path / example}"
            )
    if args.threads is not None:
        if args.threads < 1:
            raise LyriscopeError(f"--threads {args.threads}: must be at least 1")

        torch.set_num_threads(args.threads)
    options = BenchOptions(
        size=args.size, batch=args.batch, device=args.device, frames=args.frames,
        warmup=args.warmup, channel_base=args.channel_base, channel_max=args.channel_max, mapping_layers=args.mapping_layers,
        fps=args.fps, models=args.models, train_size=args.train_size,
        train_batch=args.train_batch,
        train_steps=args.train_steps, profile=args.profile is not None,
        fast=FastOptions(dtype=args.dtype, cuda_graph=not args.no_cuda_graph,
                         compile=args.compile, subpixel=args.subpixel, pick=args.pick),
    )  # fmt: skip
    pick_device(args.device)  # a missing CUDA device is reported before any work starts
    command = "lyriscope " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    sections = section_names(options)
    with tqdm(
        total=len(sections), desc="bench", unit="section", file=sys.stderr, leave=False
    ) as bar:

        def progress(name: str) -> None:
            if name != sections[0]:
                bar.update(1)
            bar.set_postfix_str(name)

        result = run_bench(options, command=command, progress=progress)
        bar.update(1)
    print(format_report(result))
    if args.json is not None:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.profile is not None and "error" not in result["profile"]:
        profile = {"machine": result["machine"], "model": result["model"], **result["profile"]}
        write_text(args.profile, json.dumps(profile, indent=2) + "\n")
        print(f"wrote {args.profile}")
    elif args.profile is not None:  # no file rather than one without a profile in it
        print(
            f"lyriscope bench: the profile failed; {args.profile} was not written", file=sys.stderr
        )
    if result["failed"]:
        print(
            f"lyriscope bench: section(s) {', '.join(result['failed'])} failed (see the "
            f"report; -v shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0
