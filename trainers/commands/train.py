"""`lyriscope train`: train one StyleGAN2-ADA model per lyric line of a set.

Reads sets/NAME/data/line-NN.zip (`lyriscope prepare` writes it), writes the model to the
line's `model` path of set.toml (default models/line-NN.safetensors) and the run to
sets/NAME/runs/line-NN/ (training-state.pt, stats.jsonl, samples-KKKKKK.png). Defaults
follow StyleGAN2-ADA's 'auto' configuration for the resolution and GPU count.

Several GPUs: `--gpus K` starts torchrun itself; `torchrun --nproc_per_node K -m
lyriscope.trainers.commands.train ...` works too. A cluster: `--all --slurm` writes a job array.

Exit codes: 0 done, 2 bad input, 130 stopped by Ctrl-C, 143 stopped by SIGTERM (both
after writing a checkpoint; `--resume` continues).

Example:
    lyriscope train sets/initiation --line 3 --kimg 2000 --mirror
    lyriscope train sets/initiation --line 3 --resume
    lyriscope train sets/initiation --line 3 --from base-256.pkl --freezed 4
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from lyriscope.errors import LyriscopeError, SetError

log = logging.getLogger(__name__)

AUG_CHOICES = ("ada", "fixed", "none")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", type=Path, help="the set folder (or its set.toml)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--line", type=int, help="the line to train, counted from 1")
    which.add_argument("--all", action="store_true", help="train every line, one after another")
    parser.add_argument(
        "--data", type=Path, help="dataset zip or folder (default: the set's data/line-NN.zip)"
    )
    parser.add_argument(
        "--kimg",
        type=float,
        default=25000,
        help="train until this many thousand real images were shown (default 25000)",
    )
    parser.add_argument("--batch", type=int, help="global minibatch (default: 'auto' formula)")
    parser.add_argument("--gamma", type=float, help="R1 weight (default: 0.0002 * res² / batch)")
    parser.add_argument(
        "--aug",
        choices=AUG_CHOICES,
        default="ada",
        help="augmentation: adaptive p, fixed p, or none (default ada)",
    )
    parser.add_argument(
        "--target", type=float, default=0.6, help="ADA target for E[sign(D(real))] (default 0.6)"
    )
    parser.add_argument(
        "--p",
        type=float,
        default=None,
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
        default=0,
        help="freeze the first K layers of D, counted from the input (default 0)",
    )
    parser.add_argument(
        "--snap", type=int, default=50, help="checkpoint every this many ticks (default 50)"
    )
    parser.add_argument(
        "--tick-kimg",
        type=float,
        default=4.0,
        help="thousand images per tick (progress row; default 4)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the line's run from runs/line-NN/training-state.pt",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="GPUs on this machine (K > 1 starts torchrun; default 1)",
    )
    parser.add_argument(
        "--outdir", type=Path, help="folder for the runs (default: the set's runs/)"
    )
    parser.add_argument(
        "--slurm",
        action="store_true",
        help="write runs/train.sbatch (a Slurm job array) instead of training",
    )
    parser.add_argument(
        "--time",
        default="2-00:00:00",
        help="Slurm time limit per line (with --slurm; default 2-00:00:00)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers",
        type=int,
        default=3,
        help="data-loading processes (default 3; 0 loads in the main process)",
    )
    parser.add_argument(
        "--metrics",
        default="kid",
        help="metrics at snapshots: kid, fid, kid,fid or none (default kid)",
    )
    parser.add_argument(
        "--metrics-gen",
        type=int,
        default=5000,
        help="generated images per metric evaluation (default 5000)",
    )
    parser.add_argument(
        "--inception",
        type=Path,
        help="Inception feature network for FID/KID (default: the built-in net)",
    )
    parser.add_argument(
        "--cbase",
        type=int,
        help="channel_base of G and D (default: 'auto', 16384 below 512², else 32768)",
    )
    parser.add_argument("--cmax", type=int, help="most channels of any layer (default 512)")
    parser.add_argument("--map-depth", type=int, help="mapping network layers (default 2)")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda or auto (default: CUDA when available)"
    )
    parser.add_argument(
        "--ops",
        choices=("cuda", "ref"),
        default="cuda",
        help="'cuda': fused CUDA kernels where they build (default); "
        "'ref': pure PyTorch everywhere",
    )


def run(args: argparse.Namespace) -> int:
    from lyriscope.setmodel import load_set

    songset = load_set(args.set)
    lines = _chosen_lines(songset, args)
    if args.data is not None and len(lines) > 1:
        raise LyriscopeError("--data names one dataset; use it with --line N, not --all")
    if args.slurm:
        return _write_slurm(songset, lines, args)
    if args.gpus > 1 and "WORLD_SIZE" not in os.environ:
        from lyriscope.trainers.distributed import launch_torchrun

        return launch_torchrun(getattr(args, "argv", None) or _train_argv(), nproc=args.gpus)
    from lyriscope.trainers import distributed

    dist = distributed.env_dist_info()
    if dist.world_size != args.gpus and args.gpus != 1:
        raise LyriscopeError(
            f"--gpus {args.gpus} but torchrun started {dist.world_size} "
            f"processes; give the same number to both"
        )
    device = _device(args.device, dist)
    distributed.init_process_group(dist, device=device)
    try:
        for line in lines:
            code = train_line(songset, line, args, dist=dist, device=device)
            if code:
                return code
    finally:
        distributed.shutdown()
    return 0


def train_line(songset: Any, line: int, args: argparse.Namespace, *, dist: Any, device: Any) -> int:
    """Train line `line` (0-based) of `songset` as `args` say, in a joined process group."""
    from lyriscope.trainers.dataset import ImageDataset, make_loader
    from lyriscope.trainers.training_loop import RunPaths, resumed_config, train

    number = line + 1
    data = args.data or songset.root / "data" / f"line-{number:02d}.zip"
    dataset = ImageDataset(data, mirror=args.mirror)
    paths = RunPaths(
        run_dir=(args.outdir or songset.root / "runs") / f"line-{number:02d}",
        model_path=songset.lines[line].model
        or songset.root / "models" / f"line-{number:02d}.safetensors",
    )
    base = _load_base(args.base, resolution=dataset.resolution) if args.base else None
    config = _config(args, dataset, dist, base_config=base[1] if base else None)
    if args.resume and paths.state_path.is_file():
        config = resumed_config(paths.state_path, run_control=config)  # its augmentation too
        if (config.resolution, config.img_channels) != (dataset.resolution, dataset.num_channels):
            raise LyriscopeError(
                f"{paths.state_path} was trained on {config.resolution}² images with "
                f"{config.img_channels} channel(s), {data} holds {dataset.resolution}² with "
                f"{dataset.num_channels}; resume with the same data or use another --outdir"
            )
        if config.mirror != dataset.mirror:
            dataset = ImageDataset(data, mirror=config.mirror)
    if dist.is_main:
        print(
            f"line {number}: {len(dataset)} images {dataset.resolution}² from {data}, "
            f"batch {config.batch}, gamma {config.r1_gamma:.4g}, aug {config.aug}, "
            f"{dist.world_size} process(es) on {device.type} -> {paths.model_path}",
            file=sys.stderr,
        )

    def batches(start: int):
        return make_loader(
            dataset,
            batch=config.batch_gpu,
            rank=dist.rank,
            num_replicas=dist.world_size,
            seed=config.seed,
            workers=config.workers,
            start=start,
        )

    result = train(
        config,
        batches=batches,
        paths=paths,
        device=device,
        dist=dist,
        augmentation=_augmentation(config),
        base=base[0] if base else None,
        evaluate=(
            _evaluator(config, dataset, device, num_gen=args.metrics_gen)
            if config.metrics
            else None
        ),
        fingerprint=dataset.fingerprint(),
        resume=args.resume,
        handle_signals=True,
        progress=True,
        ops=args.ops,
    )
    if dist.is_main:
        speed = (
            f", {result.seconds_per_kimg:.1f} s/kimg"
            if math.isfinite(result.seconds_per_kimg)
            else ""
        )
        state = paths.state_path
        if result.stopped_by is not None:
            print(
                f"line {number}: stopped at {result.kimg:g} kimg; checkpoint {state} "
                f"(continue with --resume)",
                file=sys.stderr,
            )
        else:
            print(
                f"line {number}: trained to {result.kimg:g} kimg{speed}; model {paths.model_path}",
                file=sys.stderr,
            )
    if result.stopped_by is not None:
        return 128 + int(result.stopped_by)
    return 0


# -- pieces ------------------------------------------------------------------------------------


def _chosen_lines(songset: Any, args: argparse.Namespace) -> list[int]:
    count = len(songset.lines)
    if args.all:
        return list(range(count))
    if args.line is None:
        raise LyriscopeError(
            f"{songset.path}: choose a line with --line N (1 to {count}) or "
            f"train every line with --all"
        )
    if not 1 <= args.line <= count:
        raise SetError(f"--line {args.line}: {songset.path} has lines 1 to {count}")
    return [args.line - 1]


def _metrics(text: str) -> tuple[str, ...]:
    if text.strip().lower() == "none":
        return ()
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    for name in names:
        if name not in ("kid", "fid"):
            raise LyriscopeError(
                f"--metrics {text!r}: {name!r} is not a metric; use kid, fid, kid,fid or none"
            )
    return names


def _config(
    args: argparse.Namespace, dataset: Any, dist: Any, *, base_config: dict[str, Any] | None
) -> Any:
    from lyriscope.trainers.train_config import auto_config

    overrides: dict[str, Any] = dict(
        img_channels=dataset.num_channels,
        c_dim=dataset.label_dim,
        total_kimg=args.kimg,
        tick_kimg=args.tick_kimg,
        snap=args.snap,
        aug=args.aug,
        ada_target=args.target,
        augment_p=args.p if args.p is not None else 0.0,
        mirror=args.mirror,
        freeze_d=args.freezed,
        seed=args.seed,
        workers=args.workers,
        metrics=_metrics(args.metrics),
        inception=str(args.inception) if args.inception else None,
    )
    for flag, field in (
        ("cbase", "channel_base"),
        ("cmax", "channel_max"),
        ("map_depth", "mapping_layers"),
    ):
        if getattr(args, flag) is not None:
            overrides[field] = getattr(args, flag)
    if args.aug == "fixed" and args.p is None:
        raise LyriscopeError("--aug fixed needs --p P (the augmentation probability)")
    if base_config is not None:
        overrides.update(base_config)
    return auto_config(
        dataset.resolution, gpus=dist.world_size, batch=args.batch, r1_gamma=args.gamma, **overrides
    )


def _load_base(path: Path, *, resolution: int) -> tuple[Any, dict[str, Any]]:
    """(BaseNetworks, the TrainConfig fields of its architecture) from a model or NVlabs pickle."""
    from lyriscope.errors import CheckpointError
    from lyriscope.trainers.checkpoint import load_model_or_pickle
    from lyriscope.trainers.training_loop import BaseNetworks

    if not path.is_file():
        raise CheckpointError(f"--from {path}: no such model file")
    G = load_model_or_pickle(path)
    kwargs = G.init_kwargs
    if kwargs["img_resolution"] != resolution:
        raise CheckpointError(
            f"--from {path}: the model makes {kwargs['img_resolution']}² "
            f"images but the dataset is {resolution}²; use a base model of "
            f"the dataset's resolution (or prepare the images at "
            f"{kwargs['img_resolution']}²)"
        )
    synthesis = kwargs.get("synthesis_kwargs", {})
    mapping = kwargs.get("mapping_kwargs", {})
    fields = dict(
        z_dim=kwargs["z_dim"],
        w_dim=kwargs["w_dim"],
        c_dim=kwargs["c_dim"],
        img_channels=kwargs["img_channels"],
        mapping_layers=mapping.get("num_layers", 8),
        channel_base=synthesis.get("channel_base", 32768),
        channel_max=synthesis.get("channel_max", 512),
        num_fp16_res=synthesis.get("num_fp16_res", 0),
        conv_clamp=synthesis.get("conv_clamp"),
        use_noise=synthesis.get("use_noise", True),
    )
    state = {k: v.detach().clone() for k, v in G.state_dict().items()}
    return BaseNetworks(
        G_state=state, D_state=_pickle_discriminator(path), source=str(path)
    ), fields


def _pickle_discriminator(path: Path) -> dict[str, Any] | None:
    """D's weights from an NVlabs PyTorch pickle (same tensor names as ours), else None."""
    from lyriscope.errors import CheckpointError
    from lyriscope.trainers import nvlabs_pickle

    if path.suffix.lower() != ".pkl":
        return None  # our .safetensors holds G_ema only
    try:
        data = nvlabs_pickle.load_network_pickle(path)
        record = data.get("D") if isinstance(data, dict) else None
        if not isinstance(record, nvlabs_pickle.PersistentObject):
            return None
        return nvlabs_pickle.module_state_dict(record)
    except CheckpointError as exc:
        log.warning("%s: cannot read D (%s); D starts fresh", path, exc)
        return None


def _augmentation(config: Any) -> Any:
    from lyriscope.trainers.training_loop import Augmentation

    if config.aug == "none":
        return Augmentation()
    from lyriscope.trainers.augment import AdaController, AugmentPipe

    pipe = AugmentPipe()
    pipe.p.fill_(config.augment_p)
    ada = (
        AdaController(
            target=config.ada_target,
            ada_kimg=config.ada_kimg,
            interval=config.ada_interval,
            batch=config.batch,
        )
        if config.aug == "ada"
        else None
    )
    return Augmentation(pipe=pipe, ada=ada)


def _evaluator(config: Any, dataset: Any, device: Any, *, num_gen: int) -> Any:
    from lyriscope.trainers import metrics
    from lyriscope.trainers.feature_nets import feature_net

    nets: list[Any] = []  # built at the first snapshot, then reused

    def evaluate(G: Any) -> dict[str, Any]:
        if not nets:
            nets.append(feature_net(config.inception, device=device))
        report = metrics.evaluate(
            G, dataset, net=nets[0], device=device, num_gen=num_gen, metrics=config.metrics
        )
        print(report.text(), file=sys.stderr)
        return report.as_dict()

    return evaluate


def _device(name: str, dist: Any) -> Any:
    import torch

    from lyriscope.trainers.devices import pick_device

    device = pick_device(name)
    if device.type != "cuda":
        return device
    # As published: fast convolutions, but no TF32 (it changes the results).
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    index = (
        dist.local_rank if device.index is None else device.index
    )  # torchrun: one GPU per process
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _train_argv() -> list[str]:
    """This command's own arguments, to hand to torchrun."""
    argv = sys.argv[1:]
    return argv[argv.index("train") + 1 :] if "train" in argv else argv


def _write_slurm(songset: Any, lines: list[int], args: argparse.Namespace) -> int:
    from lyriscope.trainers.slurm import SlurmOptions, sbatch_script, write_sbatch

    passed = []
    for flag in (
        "--kimg",
        "--batch",
        "--gamma",
        "--target",
        "--p",
        "--snap",
        "--tick-kimg",
        "--seed",
        "--workers",
        "--metrics",
        "--metrics-gen",
        "--inception",
        "--freezed",
        "--from",
        "--outdir",
        "--cbase",
        "--cmax",
        "--map-depth",
    ):
        value = getattr(args, "base" if flag == "--from" else flag[2:].replace("-", "_"))
        if value is not None:
            passed += [flag, str(value)]
    passed += ["--aug", args.aug, "--gpus", str(args.gpus)]
    if args.mirror:
        passed.append("--mirror")
    runs = args.outdir or songset.root / "runs"
    text = sbatch_script(
        songset.root,
        lines=[n + 1 for n in lines],
        train_args=passed,
        options=SlurmOptions(
            gpus=args.gpus,
            cpus_per_task=max(args.workers + 1, 2),
            time=args.time,
            python=sys.executable,
        ),
        log_dir=runs,
    )
    path = write_sbatch(runs / "train.sbatch", text)
    print(
        f"wrote {path}: a job array of {len(lines)} line(s), {args.gpus} GPU(s) each; "
        f"submit it with\n  sbatch {path}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m lyriscope.trainers.commands.train` (what torchrun starts)."""
    parser = argparse.ArgumentParser(prog="lyriscope train", description=__doc__.splitlines()[0])
    configure(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what torchrun gets for --gpus K
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
