"""Loader of fused CUDA kernels: built with ninja on first use, or 'ref' with one warning.

Every op in this package has a pure-PyTorch reference path ('ref'). A fused CUDA kernel
('cuda') is only a speed-up: when it cannot be used (no CUDA, no sources, no compiler,
a build error) the op runs 'ref', and a failed build warns once per kernel.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from types import ModuleType

import torch

IMPLS = ("ref", "cuda")
SOURCE_DIR = Path(__file__).resolve().parent


def check_impl(impl: str) -> None:
    """Raise ValueError unless `impl` is one of IMPLS."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")


def choose_impl(impl: str, x: torch.Tensor, *, plugin: str, sources: tuple[str, ...]) -> str:
    """The implementation an op will run for `x`: 'cuda' only if asked, on CUDA, and built.

    `plugin` names the kernel, `sources` are its .cpp/.cu files inside this package.
    """
    check_impl(impl)
    if impl == "ref" or x.device.type != "cuda":
        return "ref"
    return "cuda" if load_plugin(plugin, sources) is not None else "ref"


@functools.cache
def load_plugin(name: str, sources: tuple[str, ...]) -> ModuleType | None:
    """Build (or load from torch's extension cache) the CUDA kernel `name`; None if it cannot.

    The result is cached per process, so a failure warns exactly once and later calls
    return None at once.
    """
    reason = _unavailable_reason(sources)
    if reason is None:
        try:
            from torch.utils import cpp_extension

            return cpp_extension.load(
                name=name,
                sources=[str(SOURCE_DIR / s) for s in sources],
                extra_cuda_cflags=["--use_fast_math"],
                verbose=False,
            )
        except Exception as exc:  # a compiler or linker failure must not stop training
            reason = f"its build failed: {type(exc).__name__}: {exc}"
    warnings.warn(
        f"fused CUDA op {name!r} is unavailable ({reason}); using the PyTorch reference path",
        RuntimeWarning,
        stacklevel=3,
    )
    return None


def _unavailable_reason(sources: tuple[str, ...]) -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device"
    missing = [s for s in sources if not (SOURCE_DIR / s).is_file()]
    if not sources or missing:
        return f"sources not shipped: {', '.join(missing) or 'none listed'}"
    try:
        from torch.utils import cpp_extension

        cpp_extension.verify_ninja_availability()
    except RuntimeError:
        return "ninja is not installed"
    return None
