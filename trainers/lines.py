"""Training the lines of a set: one StyleGAN2-ADA model per lyric line, as a TrainLinesConfig says.

For each chosen line: the dataset (sets/NAME/data/line-NN.zip unless --data), the run
folder (runs/line-NN/), the model path (--output, the line's `model` in set.toml, else
models/line-NN.safetensors), the training config ('auto' defaults, a base model's
architecture with --from, a checkpoint's with --resume), augmentation and metrics; then
the training loop (fit). Several GPUs: in_process_group() starts torchrun when it is not
already running under it; a cluster: write_slurm_array() writes a job array, one task per
line. trainers.song trains the song's one conditional model with the same pieces.

Example:
    code = train_lines(TrainLinesConfig(set_path=Path("sets/song"), line=3, kimg=2000))
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lyriscope.errors import LyriscopeError, SetError
from lyriscope.setmodel import SongSet, load_set
from lyriscope.trainers import distributed, metrics
from lyriscope.trainers.augment import AdaController, AugmentPipe
from lyriscope.trainers.dataset import ImageDataset, make_loader
from lyriscope.trainers.devices import pick_device
from lyriscope.trainers.distributed import DistInfo
from lyriscope.trainers.feature_nets import FeatureNet, feature_net
from lyriscope.trainers.lines_config import TrainLinesConfig, train_arguments
from lyriscope.trainers.slurm import SlurmOptions, sbatch_script, write_sbatch
from lyriscope.trainers.train_config import TrainConfig, preset_config
from lyriscope.trainers.training_loop import (
    Augmentation,
    BaseNetworks,
    Evaluate,
    RunPaths,
    resumed_config,
    train,
)
from lyriscope.trainers.transfer import load_base


def train_lines(config: TrainLinesConfig, *, verbose: int = 0) -> int:
    """Train the chosen lines one after another; the exit code (0, or 128 + a stopping signal).

    With gpus > 1 outside torchrun this starts torchrun with `config` as arguments (and
    `verbose` times -v) and returns its exit code; each of its processes comes back here.
    """
    songset, lines = _set_and_lines(config)

    def each_line(dist: DistInfo, device: torch.device) -> int:
        for line in lines:
            code = train_line(config, line, songset=songset, dist=dist, device=device)
            if code:
                return code
        return 0

    return in_process_group(config, each_line, verbose=verbose)


def in_process_group(
    config: TrainLinesConfig,
    work: Callable[[DistInfo, torch.device], int],  # the training of this process; its exit code
    *,
    verbose: int = 0,
) -> int:
    """Run work in this process's place among config.gpus processes; its exit code.

    With gpus > 1 outside torchrun this starts torchrun with `config` as arguments (and
    `verbose` times -v) and returns torchrun's exit code instead.
    """
    if config.gpus > 1 and "WORLD_SIZE" not in os.environ:
        argv = [*train_arguments(config), *["-v"] * verbose]
        return distributed.launch_torchrun(argv, nproc=config.gpus)
    dist = distributed.env_dist_info()
    if dist.world_size != config.gpus and config.gpus != 1:
        raise LyriscopeError(
            f"--gpus {config.gpus} but torchrun started {dist.world_size} "
            f"processes; give the same number to both"
        )
    device = _training_device(config.device, dist)
    distributed.init_process_group(dist, device=device)
    try:
        return work(dist, device)
    finally:
        distributed.shutdown()


def train_line(
    config: TrainLinesConfig,
    line: int,  # 0-based
    *,
    songset: SongSet,
    dist: DistInfo,
    device: torch.device,
) -> int:
    """Train line `line` of `songset` in a joined process group; 0, or 128 + a stopping signal."""
    number = line + 1
    data = config.data or songset.root / "data" / f"line-{number:02d}.zip"
    dataset = ImageDataset(data, mirror=config.mirror)
    paths = RunPaths(
        run_dir=runs_dir(config, songset) / f"line-{number:02d}",
        model_path=config.output
        or songset.lines[line].model
        or songset.root / "models" / f"line-{number:02d}.safetensors",
    )
    base: BaseNetworks | None = None
    base_fields: dict[str, Any] | None = None
    if config.base is not None:
        base, base_fields = load_base(config.base, resolution=dataset.resolution)
    train_config = training_config(config, dataset, dist, base_fields=base_fields)
    if config.resume and paths.state_path.is_file():
        train_config, dataset = resumed(paths, run_control=train_config, dataset=dataset)
    return fit(
        config,
        train_config,
        dataset,
        name=f"line {number}",
        paths=paths,
        dist=dist,
        device=device,
        base=base,
        evaluate=(
            _evaluator(train_config, dataset, device, num_gen=config.metrics_gen)
            if train_config.metrics
            else None
        ),
    )


def resumed(
    paths: RunPaths, *, run_control: TrainConfig, dataset: ImageDataset
) -> tuple[TrainConfig, ImageDataset]:
    """The config of the run's checkpoint (how long: run_control's) and the dataset it needs.

    The checkpoint decides what is trained (its augmentation too); the command how long.
    """
    train_config = resumed_config(paths.state_path, run_control=run_control)
    shape = (train_config.resolution, train_config.img_channels)
    if shape != (dataset.resolution, dataset.num_channels):
        raise LyriscopeError(
            f"{paths.state_path} was trained on {train_config.resolution}² images with "
            f"{train_config.img_channels} channel(s), {dataset.path} holds {dataset.resolution}² "
            f"with {dataset.num_channels}; resume with the same data or use another --outdir"
        )
    if train_config.mirror != dataset.mirror:
        dataset = ImageDataset(
            dataset.path, mirror=train_config.mirror, use_labels=dataset.has_labels
        )
    return train_config, dataset


def fit(
    config: TrainLinesConfig,
    train_config: TrainConfig,
    dataset: ImageDataset,
    *,
    name: str,  # what the messages call the model: "line 3", "song model"
    paths: RunPaths,
    dist: DistInfo,
    device: torch.device,
    base: BaseNetworks | None,
    evaluate: Evaluate | None,
) -> int:
    """Train one model as train_config says, with progress and a closing message; 0 or 128 + signal."""
    if dist.is_main:
        print(
            f"{name}: {len(dataset)} images {dataset.resolution}² from {dataset.path}, "
            f"batch {train_config.batch}, gamma {train_config.r1_gamma:.4g}, "
            f"aug {train_config.aug}, {dist.world_size} process(es) on {device.type} "
            f"-> {paths.model_path}",
            file=sys.stderr,
        )
        if len(dataset) < train_config.batch:
            print(
                f"warning: {name}: {len(dataset)} images but {train_config.batch} a step: "
                f"every step shows each image about {train_config.batch / len(dataset):.1g} "
                f"times, and the model can only learn these few; a few hundred make a model "
                f"that varies",
                file=sys.stderr,
            )

    def batches(start: int):
        return make_loader(
            dataset,
            batch=train_config.batch_gpu,
            rank=dist.rank,
            num_replicas=dist.world_size,
            seed=train_config.seed,
            workers=train_config.workers,
            start=start,
        )

    result = train(
        train_config,
        batches=batches,
        paths=paths,
        device=device,
        dist=dist,
        augmentation=augmentation(train_config),
        base=base,
        evaluate=evaluate,
        fingerprint=dataset.fingerprint(),
        resume=config.resume,
        handle_signals=True,
        progress=True,
        ops=config.ops,
    )
    if dist.is_main:
        if result.stopped_by is not None:
            print(
                f"{name}: stopped at {result.kimg:g} kimg; checkpoint "
                f"{paths.state_path} (continue with --resume)",
                file=sys.stderr,
            )
        else:
            speed = (
                f", {result.seconds_per_kimg:.1f} s/kimg"
                if math.isfinite(result.seconds_per_kimg)
                else ""
            )
            if math.isfinite(result.startup_seconds):
                speed += f" after {result.startup_seconds:.1f} s of start-up"
            print(
                f"{name}: trained to {result.kimg:g} kimg{speed}; model {paths.model_path}",
                file=sys.stderr,
            )
    if result.stopped_by is not None:
        return 128 + int(result.stopped_by)
    return 0


def write_slurm_array(
    config: TrainLinesConfig, *, options: SlurmOptions
) -> tuple[Path, tuple[int, ...]]:
    """Write runs/train.sbatch, a job array training the chosen lines; (its path, the 1-based lines)."""
    songset, lines = _set_and_lines(config)
    numbers = tuple(line + 1 for line in lines)
    runs = runs_dir(config, songset)
    text = sbatch_script(config, lines=numbers, options=options, log_dir=runs)
    return write_sbatch(runs / "train.sbatch", text), numbers


def training_config(
    config: TrainLinesConfig,
    dataset: ImageDataset,
    dist: DistInfo,
    *,
    base_fields: dict[str, Any] | None = None,  # a base model's architecture (it wins)
) -> TrainConfig:
    """The TrainConfig of a new run: the preset (--cfg) for the data and GPUs, then the options."""
    overrides: dict[str, Any] = dict(
        img_channels=dataset.num_channels,
        c_dim=dataset.label_dim,
        total_kimg=config.kimg,
        tick_kimg=config.tick_kimg,
        snap=config.snap,
        aug=config.aug,
        ada_target=config.target,
        augment_p=config.p if config.p is not None else 0.0,
        mirror=config.mirror,
        freeze_d=config.freezed,
        seed=config.seed,
        workers=config.workers,
        metrics=config.metrics,
        inception=str(config.inception) if config.inception else None,
    )
    for field in ("channel_base", "channel_max", "mapping_layers"):
        if getattr(config, field) is not None:
            overrides[field] = getattr(config, field)
    if base_fields is not None:
        overrides.update(base_fields)
    return preset_config(
        config.cfg,
        dataset.resolution,
        gpus=dist.world_size,
        batch=config.batch,
        r1_gamma=config.gamma,
        **overrides,
    )


def augmentation(config: TrainConfig) -> Augmentation:
    """The augmentation pipe at p = augment_p and, for 'ada', the controller that adjusts p."""
    if config.aug == "none":
        return Augmentation()
    pipe = AugmentPipe()
    pipe.p.fill_(config.augment_p)
    ada = None
    if config.aug == "ada":
        ada = AdaController(
            target=config.ada_target,
            ada_kimg=config.ada_kimg,
            interval=config.ada_interval,
            batch=config.batch,
        )
    return Augmentation(pipe=pipe, ada=ada)


# -- pieces ------------------------------------------------------------------------------------


def _set_and_lines(config: TrainLinesConfig) -> tuple[SongSet, list[int]]:
    """The set and the 0-based lines the config chooses."""
    songset = load_set(config.set_path)
    count = len(songset.lines)
    if config.all_lines:
        lines = list(range(count))
    elif config.line is None:
        raise LyriscopeError(
            f"{songset.path}: choose a line with --line N (1 to {count}), train every line "
            f"with --all, or one model for the whole song with --conditional"
        )
    elif not 1 <= config.line <= count:
        raise SetError(f"--line {config.line}: {songset.path} has lines 1 to {count}")
    else:
        lines = [config.line - 1]
    if config.data is not None and len(lines) > 1:
        raise LyriscopeError("--data names one dataset; use it with --line N, not --all")
    return songset, lines


def runs_dir(config: TrainLinesConfig, songset: SongSet) -> Path:
    """The folder of the set's runs: --outdir, else the set's runs/."""
    return config.outdir or songset.root / "runs"


def _evaluator(
    config: TrainConfig, dataset: ImageDataset, device: torch.device, *, num_gen: int
) -> Evaluate:
    nets: list[FeatureNet] = []  # built at the first snapshot, then reused

    def evaluate(G: torch.nn.Module) -> dict[str, Any]:
        if not nets:
            nets.append(feature_net(config.inception, device=device))
        report = metrics.evaluate(
            G, dataset, net=nets[0], device=device, num_gen=num_gen, metrics=config.metrics
        )
        print(report.text(), file=sys.stderr)
        return report.as_dict()

    return evaluate


def _training_device(name: str, dist: DistInfo) -> torch.device:
    device = pick_device(name)
    if device.type != "cuda":
        return device
    # As published: fast convolutions, but no TF32 (it changes the results).
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    index = dist.local_rank if device.index is None else device.index  # torchrun: a GPU each
    torch.cuda.set_device(index)
    return torch.device("cuda", index)
