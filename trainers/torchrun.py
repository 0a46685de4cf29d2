"""The command line that runs `lyriscope train` in several processes under torchrun.

Kept apart from the process-group code so the Slurm writer can use it without torch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

TRAIN_MODULE = "lyriscope.trainers.commands.train"  # has main(), what torchrun starts


def torchrun_command(
    train_args: Sequence[str], *, nproc: int, python: str | None = None
) -> list[str]:
    """`python -m torch.distributed.run ... -m lyriscope.trainers.commands.train ARGS`, nproc processes."""
    return [
        python or sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        TRAIN_MODULE,
        *train_args,
    ]
