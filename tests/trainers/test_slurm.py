"""The Slurm job array: one task per line, each resuming, each with every option of the config."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import subprocess
from pathlib import Path

from test_lines_config import CHANGED

from lyriscope.trainers.commands.train import config_from_args, configure
from lyriscope.trainers.slurm import SlurmOptions, sbatch_script, sbatch_song_script
from lyriscope.trainers.torchrun import TRAIN_MODULE


def _task_arguments(script: str, *, task: int) -> list[str]:
    """What array task `task` passes to `lyriscope train`."""
    (line,) = [line for line in script.splitlines() if TRAIN_MODULE in line]
    words = shlex.split(line.replace("$SLURM_ARRAY_TASK_ID", str(task)).removesuffix(" &"))
    return words[words.index(TRAIN_MODULE) + 1 :]


def test_every_task_trains_its_line_with_every_option(tmp_path: Path):
    config = dataclasses.replace(
        CHANGED, line=None, all_lines=True, data=None, output=None, resume=False
    )
    script = sbatch_script(
        config, lines=[1, 2, 4], options=SlurmOptions(time="1:00:00"), log_dir=tmp_path
    )
    assert "#SBATCH --array=1,2,4" in script and "#SBATCH --gres=gpu:2" in script
    assert "#SBATCH --time=1:00:00" in script and "#SBATCH --cpus-per-task=2" in script
    assert "--ops ref" in script  # once forgotten by a hand-made list of flags
    parser = argparse.ArgumentParser()
    configure(parser)
    got = config_from_args(parser.parse_args(_task_arguments(script, task=4)))
    assert got == dataclasses.replace(
        config, set_path=Path("sets/song").resolve(), line=4, all_lines=False, resume=True
    )
    (tmp_path / "train.sbatch").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "train.sbatch")], check=True)  # valid shell


def test_the_song_model_is_one_job_with_every_option(tmp_path: Path):
    config = dataclasses.replace(CHANGED, line=None, conditional=True, resume=False)
    script = sbatch_song_script(config, options=SlurmOptions(), log_dir=tmp_path)
    assert "--array" not in script and "$SLURM_ARRAY_TASK_ID" not in script
    assert "#SBATCH --gres=gpu:2" in script and f"#SBATCH --output={tmp_path}/song-%j.out" in script
    parser = argparse.ArgumentParser()
    configure(parser)
    got = config_from_args(parser.parse_args(_task_arguments(script, task=0)))
    assert got == dataclasses.replace(config, set_path=Path("sets/song").resolve(), resume=True)
    (tmp_path / "train-song.sbatch").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "train-song.sbatch")], check=True)


def test_a_resumed_config_passes_resume_once(tmp_path: Path):
    script = sbatch_script(CHANGED, lines=[3], options=SlurmOptions(), log_dir=tmp_path)
    assert _task_arguments(script, task=3).count("--resume") == 1
