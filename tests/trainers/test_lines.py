"""Orchestration of a set's lines: which lines, and the arguments torchrun's processes get."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from setfiles import write_set

from lyriscope.errors import LyriscopeError, SetError
from lyriscope.trainers import distributed
from lyriscope.trainers.commands.train import config_from_args, configure
from lyriscope.trainers.lines import train_lines
from lyriscope.trainers.lines_config import TrainLinesConfig
from lyriscope.trainers.song import train_song


@pytest.mark.parametrize("what", [dict(line=2), dict(conditional=True)], ids=["line", "song"])
def test_gpus_k_starts_torchrun_with_every_option(tmp_path: Path, monkeypatch, what: dict):
    root = write_set(tmp_path / "set")
    started: list[tuple[list[str], int]] = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(
        distributed, "launch_torchrun", lambda argv, *, nproc: started.append((argv, nproc)) or 7
    )
    config = TrainLinesConfig(
        set_path=root, gpus=3, ops="ref", metrics=(), kimg=12, mirror=True, **what
    )
    train = train_song if config.conditional else train_lines
    assert train(config, verbose=2) == 7  # torchrun's exit code
    (argv, nproc), *others = started
    assert nproc == 3 and not others
    assert argv[-2:] == ["-v", "-v"]
    parser = argparse.ArgumentParser()
    configure(parser)
    assert config_from_args(parser.parse_args(argv[:-2])) == config


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        (dict(), LyriscopeError, "choose a line with --line N"),
        (dict(line=3), SetError, "has lines 1 to 2"),
        (dict(all_lines=True, data=Path("x.zip")), LyriscopeError, "--data names one dataset"),
    ],
)
def test_the_line_choice_is_checked_against_the_set(
    tmp_path: Path, changes: dict, error: type, match: str
):
    config = dataclasses.replace(TrainLinesConfig(set_path=write_set(tmp_path / "s")), **changes)
    with pytest.raises(error, match=match):
        train_lines(config)
