"""preview and loops load only the models of the lines they show; render still needs every one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from setfiles import write_model, write_set

from lyriscope.cli import main

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(os.environ.get("LYRISCOPE_NO_GL") == "1", reason="GL disabled"),
]
WALK = {"loop_seconds": 1.0, "seeds": 2}
SMALL = ["--size", "32", "--fps", "4", "--device", "cpu"]


@pytest.fixture
def half_trained(tmp_path: Path) -> Path:
    """Line 1 has its model; line 2's is still in training (its file does not exist yet)."""
    root = write_set(tmp_path / "set", walk=WALK, models=True, audio="tone")
    (root / "models" / "line-02.safetensors").unlink()
    return root


def test_preview_and_loops_of_a_trained_line_do_not_wait_for_the_others(half_trained, tmp_path):
    out = tmp_path / "out"
    assert main(["preview", str(half_trained), "--line", "1", "-o", str(out), *SMALL]) == 0
    assert (out / "line-01.mp4").is_file() and (out / "line-01-keyframes.png").is_file()
    loops = ["loops", str(half_trained), "--line", "1", "-o", str(out), "--no-progress", *SMALL]
    assert main(loops) == 0
    assert (out / "line-01.mp4").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["preview", "--line", "2"],
        ["loops", "--line", "2", "--no-progress"],
        ["loops", "--no-progress"],  # every line
        ["render", "--no-progress"],
    ],
    ids=["preview", "loops-line", "loops-all", "render"],
)
def test_a_line_without_its_model_is_one_clear_error(half_trained, tmp_path, argv, capsys):
    command, *options = argv
    out = tmp_path / ("v.mp4" if command == "render" else "out")
    small = [o for o in SMALL if command != "render" or o not in ("--size", "32")]
    assert main([command, str(half_trained), *options, "-o", str(out), *small]) == 2
    err = capsys.readouterr().err.strip()
    assert "line-02.safetensors does not exist" in err and len(err.splitlines()) == 1
    assert "lyriscope train" in err


def test_preview_of_a_line_on_the_song_model(tmp_path: Path):
    root = tmp_path / "song"
    write_model(root / "models" / "song.safetensors", c_dim=2, seed=7)
    write_set(root, song={"model": "models/song.safetensors"}, walk=WALK, audio="tone")
    out = tmp_path / "out"
    assert main(["preview", str(root), "--line", "2", "-o", str(out), *SMALL]) == 0
    assert (out / "line-02.mp4").is_file()
