"""Loader of fused CUDA kernels: built with ninja on first use, checked, or 'ref' with one warning.

Every op in this package has a pure-PyTorch reference path ('ref'). A fused CUDA kernel
('cuda') is only a speed-up: when it cannot be used (no CUDA, no sources, no compiler,
a build error, results that disagree with the reference) the op runs 'ref', and the
reason is warned once per kernel and process.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

import torch

IMPLS = ("ref", "cuda")
SOURCE_DIR = Path(__file__).resolve().parent

# Runs a freshly loaded plugin against the reference; returns what disagreed, or None.
SelfCheck = Callable[[ModuleType], "str | None"]

# Sources nvcc builds with --use_fast_math: the FIR filter's multiply-adds only. bias_act's
# activations need libm's precision: under the flag tanhf becomes tanh.approx.f32 (about 11
# bits: issue 17 saw its bias gradient miss the reference by 1.2e-4 on an H200), and expf and
# division turn approximate too, while an elementwise kernel is memory-bound and gains nothing.
FAST_MATH_SOURCES = frozenset({"upfirdn2d.cu"})


def cuda_flags(sources: Sequence[str]) -> list[str]:
    """nvcc's extra flags for a kernel built from `sources` (scripts/check_cuda_sources.py too)."""
    return ["--use_fast_math"] if FAST_MATH_SOURCES.intersection(sources) else []


def check_impl(impl: str) -> None:
    """Raise ValueError unless `impl` is one of IMPLS."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")


def wants_fused(impl: str, x: torch.Tensor) -> bool:
    """Whether an op should try its fused kernel for `x`: asked for ('cuda') and x on CUDA.

    The op then runs the kernel only once it has built and passed its self-check
    (load_checked_plugin).
    """
    check_impl(impl)
    return impl == "cuda" and x.device.type == "cuda"


@functools.cache
def load_checked_plugin(name: str, sources: tuple[str, ...], check: SelfCheck) -> ModuleType | None:
    """load_plugin(), then `check`: a kernel that builds but computes wrong is not used."""
    plugin = load_plugin(name, sources)
    if plugin is None:
        return None
    try:
        # The first use may come under no_grad or inference_mode (rendering): the check
        # differentiates, so it runs with autograd on.
        with exact_float32(), torch.inference_mode(False), torch.enable_grad():
            problem = check(plugin)
    except Exception as exc:  # a kernel that raises on the check is as unusable as a wrong one
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return plugin
    warnings.warn(
        f"fused CUDA op {name!r} disagrees with the reference path ({problem}); "
        "using the PyTorch reference path",
        RuntimeWarning,
        stacklevel=3,
    )
    return None


def first_difference(
    labels: Sequence[str],
    reference: Sequence[torch.Tensor],
    fused: Sequence[torch.Tensor],
    *,
    tol: float,
) -> str | None:
    """What a self-check reports: the first fused result off its reference, or None.

    Pairs are compared in float32 with rtol = atol = tol, after their shapes.
    """
    for label, ref, got in zip(labels, reference, fused, strict=True):
        if got.shape != ref.shape:
            return f"{label} has shape {list(got.shape)}, not {list(ref.shape)}"
        if not torch.allclose(got.float(), ref.float(), rtol=tol, atol=tol):
            return f"{label} differs by up to {(got.float() - ref.float()).abs().max().item():.3g}"
    return None


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """float32 convolutions and matmuls at full precision (no TF32) inside the block.

    The reference paths run on cuDNN, which uses TF32 on Ampere and later by default (about
    three decimal digits): comparing a float32 kernel with that would fail on rounding.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@functools.cache
def load_plugin(name: str, sources: tuple[str, ...]) -> ModuleType | None:
    """Build (or load from torch's extension cache) the CUDA kernel `name`; None if it cannot.

    The result is cached per process, so a failure warns exactly once and later calls
    return None at once.
    """
    reason = _unavailable_reason(sources)
    if reason is None:
        try:
            # Here, not at the top: it needs setuptools, and a failure must fall back, not stop.
            from torch.utils import cpp_extension

            # The first build takes a minute or two: say so rather than seem to hang.
            print(
                f"fused CUDA op {name}: building or loading from the cache...",
                end=" ",
                file=sys.stderr,
                flush=True,
            )
            start = time.monotonic()
            module = cpp_extension.load(
                name=name,
                sources=[str(SOURCE_DIR / s) for s in sources],
                extra_cuda_cflags=cuda_flags(sources),
                verbose=False,
            )
            print(f"ready in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
            return module
        except Exception as exc:  # a compiler or linker failure must not stop training
            print("failed", file=sys.stderr, flush=True)
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
        from torch.utils import cpp_extension  # needs setuptools: only where kernels may build
    except ImportError as exc:  # no setuptools in this environment: the reference path runs
        return f"torch's extension builder cannot load ({exc})"
    try:
        cpp_extension.verify_ninja_availability()
    except RuntimeError:
        return "ninja is not installed"
    return None
