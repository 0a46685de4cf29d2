"""Test modules whose packages load a system library skip, not error, where it is missing.

The GPU machine has no libasound.so.2 (python-rtmidi) and no PortAudio (sounddevice): its
`pytest -m gpu` must still collect every module. Stand-ins for the packages raise what a
missing library raises, and the modules that name them are collected with those first on
sys.path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# What importing each package raises when its library is missing (seen on the GPU machine
# for rtmidi; sounddevice's own message; glfw's when its bundled library cannot load).
MISSING = {
    "rtmidi": 'ImportError("libasound.so.2: cannot open shared object file: No such file")',
    "sounddevice": 'OSError("PortAudio library not found")',
    "glfw": 'ImportError("Failed to load GLFW3 shared library.")',
}


def test_modules_needing_a_missing_system_library_are_skipped_not_errors(tmp_path: Path):
    for name, error in MISSING.items():
        (tmp_path / f"{name}.py").write_text(f"raise {error}\n")
    names = re.compile(r"\b(" + "|".join(MISSING) + r")\b")
    modules = [
        str(path)
        for path in sorted(TESTS.rglob("test_*.py"))
        if path != Path(__file__).resolve() and names.search(path.read_text(encoding="utf-8"))
    ]
    path = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["-c", str(TESTS.parent / "pyproject.toml"), "--rootdir", str(TESTS.parent), *modules],
        cwd=tmp_path,  # not the repo root, whose lyriscope/ is the core alone
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out  # 2 where a module failed to collect
    assert "test_midi.py" in " ".join(modules)
    assert "SKIPPED" in out and "rtmidi unavailable (needs ALSA's libasound.so.2)" in out, out
