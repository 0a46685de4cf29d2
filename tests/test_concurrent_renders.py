"""Two renders started together on a fresh numba cache both finish (librosa compiles at once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

DEMO = Path(__file__).resolve().parent.parent / "sets" / "demo"


@pytest.mark.slow
def test_two_renders_started_together_both_finish(tmp_path):
    # A fresh per-user cache (as `lyriscope` picks when NUMBA_CACHE_DIR is unset): both
    # processes compile librosa's beat tracking into it at the same moment.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "NUMBA_CACHE_DIR": ""}
    outs = [tmp_path / f"render-{i}.mp4" for i in range(2)]
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lyriscope",
                "render",
                str(DEMO),
                "-o",
                str(out),
                "--start",
                "10",
                "--end",
                "11",
                "--size",
                "64",
                "--device",
                "cpu",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    assert any((tmp_path / "cache" / "lyriscope" / "numba").iterdir())  # the cache is ours
    for out in outs:
        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 30  # 1 s at the demo's 30 fps
