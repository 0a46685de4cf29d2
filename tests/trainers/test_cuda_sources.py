"""The fused ops' CUDA sources compile (nvcc, object files only): a check that needs no GPU.

Slow (minutes) and skipped without an nvcc: on PATH, or from NVIDIA's pip wheels
(nvidia-cuda-nvcc, -runtime, -crt, -cccl, nvidia-nvvm) in this Python.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_cuda_sources.py"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_cuda_sources_compile():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    if done.returncode == 2 and "no nvcc" in done.stderr:
        pytest.skip("no nvcc here")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": ok") == len(list(SCRIPT.parents[1].glob("trainers/ops/*.c*")))
