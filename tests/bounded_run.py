"""Run `lyriscope` in a child process with a deadline and report its peak memory.

Hostile files must be refused in bounded time and memory. A child process gives both
measures without risking the test session: a hang ends at the deadline, and the child's
own VmHWM (its peak resident memory, read from /proc/self/status as it exits) is its alone.
ru_maxrss is not used: on Linux a forked child starts with its parent's peak.

Example:
    >>> outcome = run_lyriscope(["import", "bomb.pkl", "-o", "m.safetensors"], timeout_s=60)
    >>> outcome.code, outcome.peak_mb, outcome.seconds
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# What a CLI run of a small command reaches on a CPU (Python, torch, numpy, PIL, av: about
# 300 MB), with room for the command's own work; a hostile file that expands in memory
# passes this within a second.
MAX_PEAK_MB = 700

_CHILD = """
import re, sys
from lyriscope.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print("peak_kb", re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1), flush=True)
sys.exit(code)
"""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    peak_mb: float  # the child's VmHWM
    seconds: float  # wall time of the whole child, Python start-up included


def run_lyriscope(args: list[str], *, timeout_s: float, cwd: Path | None = None) -> Outcome:
    """`lyriscope *args` in a child; AssertionError naming the deadline when it runs past it."""
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=cwd,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"lyriscope {' '.join(args)} still ran after {timeout_s} s") from None
    seconds = time.monotonic() - began
    lines = done.stdout.strip().splitlines()
    peak_kb = int(lines[-1].split()[1]) if lines and lines[-1].startswith("peak_kb") else -1
    stdout = "\n".join(lines[:-1]) if peak_kb >= 0 else done.stdout
    return Outcome(done.returncode, stdout, done.stderr, peak_kb / 1024, seconds)
