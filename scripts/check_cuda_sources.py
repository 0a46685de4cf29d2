"""Compile the fused CUDA ops' sources to object files, to catch errors without a GPU.

The CPU torch wheel ships the ATen/c10 CUDA headers but cannot build or run extensions;
nvcc from NVIDIA's wheels (nvidia-cuda-nvcc, -crt and nvidia-nvvm 13.0.88,
nvidia-cuda-runtime 13.0.96, nvidia-cuda-cccl 13.0.85) can still compile them. This only type-checks and code-generates: the kernels' results
are checked on a GPU (`pytest -m gpu tests/trainers/test_fused_ops.py`).

    python scripts/check_cuda_sources.py [--nvcc PATH] [--arch sm_90]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

OPS = Path(__file__).resolve().parent.parent / "trainers" / "ops"


def find_nvcc() -> Path | None:
    """nvcc on PATH, else the one inside an installed nvidia-cuda-nvcc wheel."""
    found = shutil.which("nvcc")
    if found:
        return Path(found)
    try:
        import nvidia  # the namespace package of NVIDIA's CUDA wheels
    except ImportError:
        return None
    for root in map(Path, nvidia.__path__):
        for candidate in sorted(root.glob("*/bin/nvcc")):
            return candidate
    return None


def compile_commands(nvcc: Path, out_dir: Path, *, arch: str) -> list[list[str]]:
    """One nvcc or c++ command per source, with torch's include paths."""
    from torch.utils import cpp_extension

    from lyriscope.trainers.ops.custom_ops import cuda_flags  # the flags the real build uses

    includes = [*cpp_extension.include_paths(), sysconfig.get_paths()["include"]]
    shim = out_dir / "shim"
    # CPU wheels lack this generated header of CUDA builds; one define is all it holds.
    macros = shim / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    macros.parent.mkdir(parents=True, exist_ok=True)
    macros.write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    flags = [
        "-std=c++20",
        "-DTORCH_EXTENSION_NAME=lyriscope_check",
        f"-I{shim}",
        *[f"-I{path}" for path in includes],
    ]
    commands = []
    for source in sorted(OPS.glob("*.cu")):
        commands.append(
            [
                str(nvcc),
                "-c",
                str(source),
                "-o",
                str(out_dir / f"{source.name}.o"),
                f"-arch={arch}",
                *cuda_flags([source.name]),
                "-diag-suppress",
                "3306",
                *flags,
            ]
        )
    for source in sorted(OPS.glob("*.cpp")):
        commands.append(
            [
                "c++",
                "-c",
                str(source),
                "-o",
                str(out_dir / f"{source.name}.o"),
                "-fPIC",
                "-w",
                *flags,
            ]
        )
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nvcc", type=Path, help="nvcc to use (default: PATH, then the wheel)")
    parser.add_argument("--arch", default="sm_90", help="GPU architecture (default sm_90)")
    args = parser.parse_args(argv)
    nvcc = args.nvcc or find_nvcc()
    if nvcc is None:
        print(
            "no nvcc: pip install nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-crt "
            "nvidia-cuda-cccl nvidia-nvvm (matching versions), or pass --nvcc",
            file=sys.stderr,
        )
        return 2
    failed = 0
    with tempfile.TemporaryDirectory(prefix="lyriscope-nvcc-") as tmp:
        for command in compile_commands(nvcc, Path(tmp), arch=args.arch):
            source = Path(command[2]).name
            done = subprocess.run(command, capture_output=True, text=True)
            errors = [line for line in (done.stdout + done.stderr).splitlines() if "error" in line]
            print(f"{source}: {'ok' if done.returncode == 0 else 'FAILED'}")
            if done.returncode:
                failed += 1
                print("\n".join(errors or (done.stdout + done.stderr).splitlines()[-20:]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
