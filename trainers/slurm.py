"""Slurm scripts: a job array that trains every line of a set (one task per line), or one job
that trains the song's conditional model.

Task i trains line i (1-based, as people count lines) with torchrun on the node's GPUs
and always passes --resume, so a preempted and requeued task continues from its last
checkpoint instead of starting over; the song's job does the same for its one model.

Example:
    lyriscope train sets/song --all --slurm --gpus 4   # writes sets/song/runs/train.sbatch
    sbatch sets/song/runs/train.sbatch
    lyriscope train sets/song --conditional --slurm --gpus 4   # runs/train-song.sbatch
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lyriscope.atomic import write_text
from lyriscope.errors import LyriscopeError
from lyriscope.trainers.lines_config import TrainLinesConfig, option_arguments
from lyriscope.trainers.torchrun import torchrun_command

_TASK_ID = "$SLURM_ARRAY_TASK_ID"  # left unquoted: the shell puts in the task's line


@dataclass(frozen=True, kw_only=True)
class SlurmOptions:
    """What each array task asks Slurm for, beyond the GPUs and workers of the training config."""

    time: str = "2-00:00:00"  # wall-time limit per task, Slurm's D-HH:MM:SS
    partition: str | None = None  # Slurm partition; None: the cluster's default
    job_name: str = "lyriscope-train"
    python: str = "python"  # the interpreter on the compute nodes (e.g. a venv's python)


def sbatch_script(
    config: TrainLinesConfig,
    *,
    lines: Sequence[int],
    options: SlurmOptions,
    log_dir: str | os.PathLike[str],
) -> str:
    """The text of a job-array script; `lines` are 1-based, every task trains as `config` says."""
    if not lines:
        raise LyriscopeError("the set has no lines to train")
    return _script(
        config,
        options=options,
        array=f"#SBATCH --array={_array_spec(lines)}",
        log=Path(log_dir) / "line-%a-%A.out",
        # The task's line and --resume first; the rest is the config's.
        train_args=["--line", _TASK_ID, "--resume"],
        comment="# One array task = one lyric line; --resume makes a requeued task continue.",
    )


def sbatch_song_script(
    config: TrainLinesConfig, *, options: SlurmOptions, log_dir: str | os.PathLike[str]
) -> str:
    """The text of one job training the song's conditional model as `config` says (no array)."""
    return _script(
        config,
        options=options,
        array=None,
        log=Path(log_dir) / "song-%j.out",
        train_args=["--conditional", "--resume"],
        comment="# One job = the song's conditional model; --resume makes a requeued job continue.",
    )


def _script(
    config: TrainLinesConfig,
    *,
    options: SlurmOptions,
    array: str | None,  # the #SBATCH --array line of a job array; None: one job
    log: Path,  # Slurm's --output pattern
    train_args: list[str],  # what to train (and --resume), before the config's options
    comment: str,
) -> str:
    if config.gpus < 1:
        raise LyriscopeError(f"--gpus {config.gpus}: must be at least 1")
    cpus_per_task = max(config.workers + 1, 2)  # the data-loading workers and the trainer
    header = [
        "#!/bin/bash",
        f"#SBATCH --job-name={options.job_name}",
        *([array] if array else []),
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gres=gpu:{config.gpus}",
        f"#SBATCH --cpus-per-task={cpus_per_task}",
        f"#SBATCH --time={options.time}",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:TERM@120",  # two minutes to write a checkpoint before the limit
        f"#SBATCH --output={log}",
    ]
    if options.partition:
        header.append(f"#SBATCH --partition={options.partition}")
    command = [
        *torchrun_command([], nproc=config.gpus, python=options.python),
        str(Path(config.set_path).resolve()),
        *train_args,
        *option_arguments(replace(config, resume=False)),
    ]
    quoted = " ".join(c if c == _TASK_ID else shlex.quote(c) for c in command)
    body = [
        "",
        comment,
        "set -euo pipefail",
        f"{quoted} &",
        "child=$!",
        "# Forward Slurm's TERM to torchrun so every process saves a checkpoint.",
        'trap \'kill -TERM "$child"; wait "$child"\' TERM',
        'wait "$child"',
        "",
    ]
    return "\n".join(header + body)


def write_sbatch(path: str | os.PathLike[str], text: str) -> Path:
    """Write the script atomically (executable) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text)
    path.chmod(0o755)
    return path


def _array_spec(lines: Sequence[int]) -> str:
    """Slurm's --array value: '1-15' for a run of lines, else '1,3,7'."""
    ordered = sorted(set(lines))
    if ordered[0] < 1:
        raise LyriscopeError(f"line {ordered[0]}: lines are counted from 1")
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(str(n) for n in ordered)
