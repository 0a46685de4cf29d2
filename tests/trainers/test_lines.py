"""Orchestration of a set's lines: which lines a config chooses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from setfiles import write_set

from lyriscope.errors import LyriscopeError, SetError
from lyriscope.trainers.lines import train_lines
from lyriscope.trainers.lines_config import TrainLinesConfig


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
