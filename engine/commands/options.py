"""Flags shared by the commands that synthesize (render, preview, loops, live), and their options."""

from __future__ import annotations

import argparse

from lyriscope.engine.synth.runtime import RuntimeOptions


def add_fast_option(parser: argparse.ArgumentParser) -> None:
    """--fast, the same for every command that synthesizes."""
    parser.add_argument(
        "--fast",
        action="store_true",
        help="precomputed synthesis plan; CUDA graphs and fp16 on a GPU; images "
        "within the bench tolerance of the reference",
    )


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The RuntimeOptions of a command's --device, --fast and --batch (absent: the defaults)."""
    return RuntimeOptions(
        device=getattr(args, "device", "auto"),
        fast=getattr(args, "fast", False),
        batch=getattr(args, "batch", 1),
    )
