"""Training the song's one class-conditional model: every line a class, one run instead of one per line.

The data is sets/NAME/data/song.zip (`lyriscope prepare --conditional`: every line's
images, labelled with the line, 0-based); the model goes to [song] model of set.toml
(default models/song.safetensors), whose path is written into set.toml when the run ends
or stops, so the lines without a model of their own are drawn as its classes; the run is
runs/song/. Resume, presets, torchrun and Slurm work as for the lines (trainers.lines);
--from may name an unconditional base (its weights are fitted by
transfer.conditional_base, the class embedding starts fresh). The metrics add KID per
class at each snapshot: each line's images against the model's samples of that line.

Example:
    code = train_song(TrainLinesConfig(set_path=Path("sets/song"), conditional=True, kimg=5000))
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from lyriscope.errors import DatasetError, LyriscopeError, SetError
from lyriscope.setmodel import SongSet, edit_set, load_set
from lyriscope.trainers import metrics
from lyriscope.trainers.dataset import ImageDataset
from lyriscope.trainers.distributed import DistInfo
from lyriscope.trainers.feature_nets import FeatureNet, feature_net
from lyriscope.trainers.lines import fit, in_process_group, resumed, runs_dir, training_config
from lyriscope.trainers.lines_config import TrainLinesConfig
from lyriscope.trainers.networks import Discriminator, Generator
from lyriscope.trainers.slurm import SlurmOptions, sbatch_song_script, write_sbatch
from lyriscope.trainers.train_config import TrainConfig
from lyriscope.trainers.training_loop import BaseNetworks, Evaluate, RunPaths
from lyriscope.trainers.transfer import conditional_base, load_base

SONG_DATA = "song.zip"  # in the set's data/, as `lyriscope prepare --conditional` writes it
SONG_MODEL = "models/song.safetensors"  # in the set, when set.toml names no [song] model
SONG_RUN = "song"  # the run's folder in runs/


def train_song(config: TrainLinesConfig, *, verbose: int = 0) -> int:
    """Train the song's conditional model; the exit code (0, or 128 + a stopping signal).

    With gpus > 1 outside torchrun this starts torchrun with `config` as arguments.
    """
    songset = _song_set(config)
    song_paths(config, songset)  # a model path outside the set fails before any work

    def work(dist: DistInfo, device: torch.device) -> int:
        return train_song_model(config, songset=songset, dist=dist, device=device)

    return in_process_group(config, work, verbose=verbose)


def song_paths(config: TrainLinesConfig, songset: SongSet) -> tuple[Path, RunPaths]:
    """(the dataset, where the run and the model go) of the song's model."""
    model = config.output or songset.song.model or songset.root / SONG_MODEL
    model = Path(os.path.abspath(model))
    if not model.is_relative_to(songset.root):
        raise SetError(
            f"--output {config.output}: the song's model is named in set.toml ([song] model), "
            f"and set.toml names files inside the set; write it under {songset.root}"
        )
    data = config.data or songset.root / "data" / SONG_DATA
    return data, RunPaths(run_dir=runs_dir(config, songset) / SONG_RUN, model_path=model)


def train_song_model(
    config: TrainLinesConfig, *, songset: SongSet, dist: DistInfo, device: torch.device
) -> int:
    """Train the song's model in a joined process group; 0, or 128 + a stopping signal."""
    data, paths = song_paths(config, songset)
    dataset = ImageDataset(data, mirror=config.mirror, use_labels=True)
    if not dataset.has_labels:
        raise DatasetError(
            f"{data}: its images have no class labels; write the song's dataset with "
            f"`lyriscope prepare {songset.root} --conditional`"
        )
    if dist.is_main:
        for warning in class_warnings(songset, classes=dataset.label_dim, data=data):
            print(f"warning: {warning}", file=sys.stderr)
    base: BaseNetworks | None = None
    base_fields: dict[str, Any] | None = None
    if config.base is not None:
        base, base_fields = load_base(config.base, resolution=dataset.resolution)
        base_fields = {**base_fields, "c_dim": dataset.label_dim}  # the classes are the data's
    train_config = training_config(config, dataset, dist, base_fields=base_fields)
    if config.resume and paths.state_path.is_file():
        train_config, dataset = resumed(paths, run_control=train_config, dataset=dataset)
        if train_config.c_dim != dataset.label_dim:
            raise LyriscopeError(
                f"{paths.state_path} was trained with {train_config.c_dim} classes, {data} has "
                f"{dataset.label_dim}; resume with the same data or use another --outdir"
            )
    elif base is not None:
        base = _fitted_base(base, train_config, is_main=dist.is_main)
    code = fit(
        config,
        train_config,
        dataset,
        name="song model",
        paths=paths,
        dist=dist,
        device=device,
        base=base,
        evaluate=(
            _evaluator(train_config, dataset, device, paths=paths, num_gen=config.metrics_gen)
            if train_config.metrics
            else None
        ),
    )
    if dist.is_main and paths.model_path.is_file():
        name_song_model(songset, paths.model_path, classes=train_config.c_dim)
    return code


def name_song_model(songset: SongSet, model: Path, *, classes: int) -> None:
    """Write `model` into set.toml as [song] model (comments kept), and let it draw its lines.

    A line whose own `model` was never trained (a placeholder, as `lyriscope new` writes
    one for every line) and whose class the model has loses that key, so the song's model
    draws it; a line with a trained model of its own keeps it (a set may mix both).
    """
    relative = Path(os.path.relpath(model, songset.root)).as_posix()
    placeholders = [
        line.index
        for line in songset.lines
        if line.label is None
        and line.model is not None
        and not line.model.is_file()
        and line.index < classes
    ]
    if songset.song.model == model.resolve() and not placeholders:
        return

    def change(doc: Any) -> None:
        doc["song"]["model"] = relative
        for index in placeholders:
            del doc["line"][index]["model"]

    edit_set(songset.path, change)
    print(
        f"{songset.path}: [song] model = {relative!r}; lines without a model of their own "
        f"are drawn as its classes",
        file=sys.stderr,
    )
    if placeholders:
        numbers = ", ".join(str(i + 1) for i in placeholders)
        print(
            f"{songset.path}: line(s) {numbers} named a model that was never trained; "
            f"their `model` keys are removed, so the song's model draws them",
            file=sys.stderr,
        )


def class_warnings(songset: SongSet, *, classes: int, data: Path) -> list[str]:
    """What will not play: lines drawn by the song's model whose class the data does not have."""
    out = []
    for line in songset.lines:
        own_model = line.label is None and line.model is not None
        if own_model:
            continue
        label = line.index if line.label is None else line.label
        if label >= classes:
            out.append(
                f"line {line.index + 1} is class {label} of the song's model, but {data} has "
                f"classes 0 to {classes - 1}; give the line its own model or prepare the "
                f"song's data with every line"
            )
    return out


def write_slurm_job(config: TrainLinesConfig, *, options: SlurmOptions) -> Path:
    """Write runs/train-song.sbatch, one job training the song's model; its path."""
    songset = _song_set(config)
    song_paths(config, songset)
    runs = runs_dir(config, songset)
    text = sbatch_song_script(config, options=options, log_dir=runs)
    return write_sbatch(runs / "train-song.sbatch", text)


# -- pieces ------------------------------------------------------------------------------------


def _song_set(config: TrainLinesConfig) -> SongSet:
    if not config.conditional:
        raise LyriscopeError("the song's model is trained with --conditional")
    return load_set(config.set_path)


def _fitted_base(base: BaseNetworks, config: TrainConfig, *, is_main: bool) -> BaseNetworks:
    """The base fitted to this run's conditional networks, built as the trainer builds them."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the trainer's own fresh weights, for what is new
        G = Generator(**config.generator_kwargs())
        D = Discriminator(**config.discriminator_kwargs())
    fitted, report = conditional_base(base, G=G, D=D)
    if is_main:
        for transfer in report:
            print(f"song model from {base.source}: {transfer.text()}", file=sys.stderr)
        if fitted.D_state is None:
            print(f"song model from {base.source}: D starts fresh", file=sys.stderr)
    return fitted


def _evaluator(
    config: TrainConfig,
    dataset: ImageDataset,
    device: torch.device,
    *,
    paths: RunPaths,
    num_gen: int,
) -> Evaluate:
    """The snapshot metrics of the whole model, then KID per class (per line)."""
    nets: list[FeatureNet] = []  # built at the first snapshot, then reused
    cache = paths.run_dir / "metrics-cache"  # the real images' features, once per dataset
    per_class = max(2, math.ceil(num_gen / max(config.c_dim, 1)))

    def evaluate(G: torch.nn.Module) -> dict[str, Any]:
        if not nets:
            nets.append(feature_net(config.inception, device=device))
        report = metrics.evaluate(
            G,
            dataset,
            net=nets[0],
            device=device,
            num_gen=num_gen,
            metrics=config.metrics,
            cache_dir=cache,
        )
        print(report.text(), file=sys.stderr)
        result = report.as_dict()
        if "kid" in config.metrics:
            kids = metrics.class_kid(
                G, dataset, net=nets[0], device=device, num_gen=per_class, cache_dir=cache
            )
            print(class_kid_text(kids), file=sys.stderr)
            result["kid_per_class"] = {str(c): value for c, value in kids.items()}
        return result

    return evaluate


def class_kid_text(kids: dict[int, float | None]) -> str:
    """One line: 'KID per line: 1 0.01234  2 0.04567  3 -' (class c is line c + 1)."""
    parts = [f"{c + 1} {'-' if v is None else f'{v:.5f}'}" for c, v in sorted(kids.items())]
    return "KID per line: " + "  ".join(parts)
