"""`lyriscope train`: train one StyleGAN2-ADA model per lyric line of a set, or one for the song.

Reads sets/NAME/data/line-NN.zip (`lyriscope prepare` writes it), writes the model to the
line's `model` path of set.toml (default models/line-NN.safetensors) and the run to
sets/NAME/runs/line-NN/ (training-state.pt, stats.jsonl, samples-KKKKKK.KKK.png). Defaults
follow StyleGAN2-ADA's 'auto' configuration for the resolution and GPU count.

--conditional trains one class-conditional model of every line instead (one run, not one
per line): from data/song.zip (`lyriscope prepare --conditional`; class = line), to
[song] model of set.toml (default models/song.safetensors, written into set.toml), with
the run in runs/song/ and KID per line at the snapshots.

Several GPUs: `--gpus K` starts torchrun itself; `torchrun --nproc_per_node K -m
lyriscope.trainers.commands.train ...` works too. A cluster: `--all --slurm` writes a job
array (one task per line), `--conditional --slurm` one job.

Exit codes: 0 done, 2 bad input, 130 stopped by Ctrl-C, 143 stopped by SIGTERM (both
after writing a checkpoint; `--resume` continues).

Example:
    lyriscope train sets/initiation --line 3 --kimg 2000 --mirror
    lyriscope train sets/initiation --line 3 --resume
    lyriscope train sets/initiation --line 3 --from base-256.pkl --freezed 4
    lyriscope train sets/initiation --conditional --from base-256.pkl --kimg 5000
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lyriscope.errors import LyriscopeError
from lyriscope.trainers.lines_config import (
    OPS_CHOICES,
    TrainLinesConfig,
    metrics_from_text,
)
from lyriscope.trainers.network_options import add_network_options
from lyriscope.trainers.slurm import SlurmOptions
from lyriscope.trainers.train_config import AUG_MODES, PRESETS


def configure(parser: argparse.ArgumentParser) -> None:
    # Defaults are TrainLinesConfig's, so the command and the library cannot disagree.
    default = TrainLinesConfig
    parser.add_argument("set", type=Path, help="the set folder (or its set.toml)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--line", type=int, help="the line to train, counted from 1")
    which.add_argument("--all", action="store_true", help="train every line, one after another")
    which.add_argument(
        "--conditional",
        action="store_true",
        help="train one class-conditional model of every line (class = line) from "
        "data/song.zip, for [song] model",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="dataset zip or folder (default: the set's data/line-NN.zip, or data/song.zip)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="model file to write (default: the line's model in set.toml, or [song] model; "
        "else models/line-NN.safetensors, or models/song.safetensors)",
    )
    parser.add_argument(
        "--kimg",
        type=float,
        default=default.kimg,
        help="train until this many thousand real images were shown (default %(default)s)",
    )
    parser.add_argument("--batch", type=int, help="global minibatch (default: 'auto' formula)")
    parser.add_argument("--gamma", type=float, help="R1 weight (default: 0.0002 * res² / batch)")
    parser.add_argument(
        "--aug",
        choices=AUG_MODES,
        default=default.aug,
        help="augmentation: adaptive p, fixed p, or none (default %(default)s)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=default.target,
        help="ADA target for E[sign(D(real))] (default %(default)s)",
    )
    parser.add_argument(
        "--p",
        type=float,
        help="augmentation probability: the fixed p, or ADA's start (default 0)",
    )
    parser.add_argument("--mirror", action="store_true", help="add left-right flipped images")
    parser.add_argument(
        "--from",
        dest="base",
        type=Path,
        help="start from this model (.safetensors or NVlabs .pkl) of the same "
        "resolution (transfer learning)",
    )
    parser.add_argument(
        "--freezed",
        type=int,
        default=default.freezed,
        help="freeze the first K layers of D, counted from the input (default %(default)s)",
    )
    parser.add_argument(
        "--snap",
        type=int,
        default=default.snap,
        help="checkpoint every this many ticks (default %(default)s)",
    )
    parser.add_argument(
        "--tick-kimg",
        type=float,
        default=default.tick_kimg,
        help="thousand images per tick (progress row; default %(default)s)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run from runs/line-NN/ (runs/song/) training-state.pt",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        default=default.gpus,
        help="GPUs on this machine (K > 1 starts torchrun; default %(default)s)",
    )
    parser.add_argument(
        "--outdir", type=Path, help="folder for the runs (default: the set's runs/)"
    )
    parser.add_argument(
        "--slurm",
        action="store_true",
        help="write runs/train.sbatch (a Slurm job array; with --conditional one job, "
        "runs/train-song.sbatch) instead of training",
    )
    parser.add_argument(
        "--time",
        default=SlurmOptions.time,
        help="Slurm time limit per line, or of the song's job (with --slurm; default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=default.seed, help="random seed (default %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default.workers,
        help="data-loading processes (default %(default)s; 0 loads in the main process)",
    )
    parser.add_argument(
        "--metrics",
        default=",".join(default.metrics) or "none",
        help="metrics at snapshots: kid, fid, kid,fid or none (default %(default)s)",
    )
    parser.add_argument(
        "--metrics-gen",
        type=int,
        default=default.metrics_gen,
        help="generated images per metric evaluation (default %(default)s)",
    )
    parser.add_argument(
        "--inception",
        type=Path,
        help="Inception feature network for FID/KID (default: the built-in net)",
    )
    parser.add_argument(
        "--cfg",
        choices=tuple(PRESETS),
        default=default.cfg,
        metavar="NAME",
        help="a preset of network sizes and rates (default %(default)s): "
        + "; ".join(f"{p.name}: {p.help}" for p in PRESETS.values()),
    )
    add_network_options(parser, defaults="the --cfg's")
    parser.add_argument(
        "--device",
        default=default.device,
        help="cpu, cuda or auto (default %(default)s: CUDA when available)",
    )
    parser.add_argument(
        "--ops",
        choices=OPS_CHOICES,
        default=default.ops,
        help="'cuda': fused CUDA kernels where they build (default); "
        "'ref': pure PyTorch everywhere",
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # The library loads torch; `lyriscope train --help` imports this module and stays light.
    from lyriscope.trainers import lines, song

    verbose = getattr(args, "verbose", 0)
    slurm = SlurmOptions(time=args.time, python=sys.executable)
    if config.conditional and args.slurm:
        path = song.write_slurm_job(config, options=slurm)
        print(f"wrote {path}: one job, {config.gpus} GPU(s); submit it with\n  sbatch {path}")
    elif config.conditional:
        return song.train_song(config, verbose=verbose)
    elif args.slurm:
        path, numbers = lines.write_slurm_array(config, options=slurm)
        print(
            f"wrote {path}: a job array of {len(numbers)} line(s), {config.gpus} GPU(s) each; "
            f"submit it with\n  sbatch {path}"
        )
    else:
        return lines.train_lines(config, verbose=verbose)
    return 0


def config_from_args(args: argparse.Namespace) -> TrainLinesConfig:
    """The options of `lyriscope train` as a TrainLinesConfig (train_arguments is the inverse)."""
    return TrainLinesConfig(
        set_path=args.set,
        line=args.line,
        all_lines=args.all,
        conditional=args.conditional,
        data=args.data,
        output=args.output,
        kimg=args.kimg,
        batch=args.batch,
        gamma=args.gamma,
        aug=args.aug,
        target=args.target,
        p=args.p,
        mirror=args.mirror,
        base=args.base,
        freezed=args.freezed,
        snap=args.snap,
        tick_kimg=args.tick_kimg,
        resume=args.resume,
        gpus=args.gpus,
        outdir=args.outdir,
        seed=args.seed,
        workers=args.workers,
        metrics=metrics_from_text(args.metrics),
        metrics_gen=args.metrics_gen,
        inception=args.inception,
        cfg=args.cfg,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        mapping_layers=args.mapping_layers,
        device=args.device,
        ops=args.ops,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m lyriscope.trainers.commands.train` (what torchrun starts)."""
    parser = argparse.ArgumentParser(prog="lyriscope train", description=__doc__.splitlines()[0])
    configure(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    try:
        return run(args) or 0
    except LyriscopeError as exc:
        print(f"lyriscope train: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
