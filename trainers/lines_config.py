"""What `lyriscope train` is asked to do, as one frozen config, and that config as arguments again.

TrainLinesConfig holds every option of `lyriscope train` except the ones about where the
work runs instead of training (--slurm, --time). train_arguments() turns a config back into
the command's arguments; the processes torchrun starts and the tasks of a Slurm job array
get their options from it, so an option added here reaches them without a second list.

Each field is the option of its name with dashes (tick_kimg is --tick-kimg), except
set_path (the positional set), all_lines (--all) and base (--from, a Python keyword).
What is trained is one choice: --line N, --all, or --conditional (one model for every line).

This module stays light (no torch): `lyriscope train --help` imports it.

Example:
    >>> config = TrainLinesConfig(set_path=Path("sets/song"), line=3, kimg=2000, mirror=True)
    >>> train_arguments(config)[:5]
    ['sets/song', '--line', '3', '--kimg', '2000']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from lyriscope.errors import LyriscopeError
from lyriscope.trainers.train_config import AUG_MODES, METRIC_NAMES, PRESETS

OPS_CHOICES = ("cuda", "ref")  # fused CUDA kernels where they build, or pure PyTorch
# Fields whose option is not "--" + the field name with dashes.
_FLAG_OF_FIELD = (("base", "--from"),)
# Fields that are no "--name VALUE" option: the positional set and the choice of what to train.
_NOT_OPTIONS = ("set_path", "line", "all_lines", "conditional")


@dataclass(frozen=True, kw_only=True)
class TrainLinesConfig:
    """One `lyriscope train` run: which lines of which set, trained how, on what."""

    set_path: Path  # the set folder or its set.toml
    line: int | None = None  # the line to train, counted from 1 as people do; None: all_lines
    all_lines: bool = False  # train every line, one after another
    # One class-conditional model of every line (c = the line), from the set's data/song.zip,
    # instead of a model per line.
    conditional: bool = False
    data: Path | None = None  # dataset zip or folder; None: the set's data/line-NN.zip (song.zip)
    # The model file to write; None: the line's `model` (conditional: [song] model) in
    # set.toml, else models/line-NN.safetensors (models/song.safetensors).
    output: Path | None = None
    kimg: float = 25_000  # train until this many thousand real images were shown
    batch: int | None = None  # global minibatch; None: the 'auto' formula
    gamma: float | None = None  # R1 weight; None: 0.0002 * res² / batch
    aug: str = "ada"  # augmentation: "ada" (adaptive p), "fixed" (p stays) or "none"
    target: float = 0.6  # ADA target for E[sign(D(real))]
    p: float | None = None  # augmentation probability: the fixed p, or ADA's start (None: 0)
    mirror: bool = False  # add left-right flipped images
    base: Path | None = None  # start from this model (.safetensors or NVlabs .pkl); None: fresh
    freezed: int = 0  # freeze the first this many layers of D, counted from the input
    snap: int = 50  # checkpoint every this many ticks
    tick_kimg: float = 4.0  # thousand images per tick (one progress row)
    resume: bool = False  # continue the run from runs/line-NN/ (runs/song/) training-state.pt
    gpus: int = 1  # processes on this machine, one GPU each (more than 1 starts torchrun)
    outdir: Path | None = None  # folder for the runs; None: the set's runs/
    seed: int = 0  # seed of weights, latents and augmentation
    workers: int = 3  # data-loading processes (0: load in the main process)
    metrics: tuple[str, ...] = ("kid",)  # computed at snapshots; () for none
    metrics_gen: int = 5000  # generated images per metric evaluation
    inception: Path | None = None  # Inception weights for FID/KID; None: the built-in net
    cfg: str = "auto"  # a preset of sizes and rates (trainers.train_config.PRESETS)
    channel_base: int | None = None  # channels = min(channel_base / res, channel_max); None: cfg's
    channel_max: int | None = None  # most channels of any layer; None: the cfg's
    mapping_layers: int | None = None  # mapping network depth; None: the cfg's
    device: str = "auto"  # cpu, cuda, cuda:N or auto (CUDA when available)
    ops: str = "cuda"  # "cuda": fused CUDA kernels where they build; "ref": pure PyTorch

    def __post_init__(self) -> None:
        if self.line is not None and self.all_lines:
            raise LyriscopeError(f"--line {self.line} and --all: choose one")
        if self.conditional and (self.line is not None or self.all_lines):
            given = "--all" if self.all_lines else f"--line {self.line}"
            raise LyriscopeError(
                f"--conditional trains one model for every line; leave out {given} "
                f"(lines with a model of their own are trained without --conditional)"
            )
        if self.output is not None and self.all_lines:
            raise LyriscopeError(
                "--output names one model file; use it with --line N or --conditional, not --all"
            )
        if self.aug not in AUG_MODES:
            raise LyriscopeError(f"--aug {self.aug!r}: choose one of {', '.join(AUG_MODES)}")
        if self.aug == "fixed" and self.p is None:
            raise LyriscopeError("--aug fixed needs --p P (the augmentation probability)")
        unknown = [name for name in self.metrics if name not in METRIC_NAMES]
        if unknown:
            raise LyriscopeError(
                f"--metrics {unknown[0]!r}: choose from {', '.join(METRIC_NAMES)} or none"
            )
        if self.cfg not in PRESETS:
            raise LyriscopeError(f"--cfg {self.cfg!r}: choose one of {', '.join(PRESETS)}")
        if self.ops not in OPS_CHOICES:
            raise LyriscopeError(f"--ops {self.ops!r}: choose one of {', '.join(OPS_CHOICES)}")


def metrics_from_text(text: str) -> tuple[str, ...]:
    """--metrics as given ("kid", "kid,fid", "none") -> the metric names; the inverse of train_arguments."""
    if text.strip().lower() == "none":
        return ()
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    for name in names:
        if name not in METRIC_NAMES:
            raise LyriscopeError(
                f"--metrics {text!r}: {name!r} is not a metric; use kid, fid, kid,fid or none"
            )
    return names


def train_arguments(config: TrainLinesConfig) -> list[str]:
    """`lyriscope train` arguments that parse back to `config`: the set, what to train, options."""
    choice = ["--all"] if config.all_lines else []
    if config.line is not None:
        choice = ["--line", str(config.line)]
    if config.conditional:
        choice = ["--conditional"]
    return [str(config.set_path), *choice, *option_arguments(config)]


def option_arguments(config: TrainLinesConfig) -> list[str]:
    """Every option of `config` as `lyriscope train` arguments, without the set and what to train.

    Options at their defaults are written too, so a process started from these arguments
    trains the same way even where its lyriscope's defaults differ.
    """
    flags = dict(_FLAG_OF_FIELD)
    args: list[str] = []
    for field in dataclasses.fields(config):
        if field.name in _NOT_OPTIONS:
            continue
        flag = flags.get(field.name, "--" + field.name.replace("_", "-"))
        value = getattr(config, field.name)
        if value is None or value is False:
            continue  # the option's absence says it
        if value is True:
            args.append(flag)
        elif isinstance(value, tuple):
            args += [flag, ",".join(value) or "none"]
        else:
            args += [flag, str(value)]
    return args
