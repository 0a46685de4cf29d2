"""Fixtures of the studio tests: a sets folder with a tiny set, and a studio running on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from setfiles import write_set
from studio_harness import running_studio


@pytest.fixture
def sets_dir(tmp_path: Path) -> Path:
    """A sets folder holding set "tiny": two lines over a 4 s tone."""
    folder = tmp_path / "sets"
    write_set(folder / "tiny", audio="tone", seconds=4.0, lines=("first line", "second line"))
    return folder


@pytest.fixture
def studio(sets_dir: Path):
    with running_studio(sets_dir) as running:
        yield running
