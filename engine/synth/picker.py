"""Which implementation each layer of the synthesis plan uses: timed once per shape, cached.

A layer of the fast plan can run its modulated conv in two forms and its epilogue by two
kernels, and the FIR after a transposed up-conv by the fused CUDA op or the PyTorch
reference. Which is fastest depends on the layer's shape, the batch and the GPU (cuDNN is
good at a shared-weight conv over a batch and poor at a grouped one; the fused FIR loses
to the reference at some shapes). So when a plan is built on CUDA, LayerPicker times the
candidates of each distinct layer shape once (after a warm-up, with CUDA events) and keeps
the fastest; the choices are cached in a JSON file keyed by GPU name, torch version and
shape, so the next build times nothing.

Example:
    >>> picker = LayerPicker(device=torch.device("cuda"))
    >>> choices = picker.pick({key: make_run})  # make_run(impl) -> a callable running the layer
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lyriscope.atomic import write_text
from lyriscope.numba_cache import user_cache_dir

CONV_FORMS = ("grouped", "scaled")
EPILOGUES = ("torch", "triton")
FIRS = ("cuda", "ref")
UP_FORMS = ("transposed", "subpixel")
KINDS = ("conv", "up", "subpixel", "torgb", "imgup")
CACHE_ENV = "LYRISCOPE_PLAN_CACHE"  # a file path that overrides the cache's place
CACHE_VERSION = 1


class PickerWarning(RuntimeWarning):
    """The choice cache could not be read or written, or a candidate failed; the build goes on."""


@dataclass(frozen=True)
class LayerImpl:
    """How one layer runs; every choice gives the same image up to rounding."""

    conv: str = "grouped"  # "grouped": styles and demodulation folded into per-sample
    #                        weights, one grouped conv; "scaled": x·styles, one shared-weight
    #                        conv over the batch, then ·demodulation in the epilogue
    epilogue: str = "torch"  # "torch": PyTorch ops (the reference); "triton": one fused kernel
    fir: str = "cuda"  # FIR after a transposed up-conv: "cuda" (fused where it builds) or "ref"
    up: str = "transposed"  # a 2x up-conv as transposed conv + FIR, or "subpixel": one 3x3
    #                         conv with 4x the outputs + pixel shuffle (FIR folded in)

    def __post_init__(self) -> None:
        allowed_sets = (
            ("conv", CONV_FORMS), ("epilogue", EPILOGUES), ("fir", FIRS), ("up", UP_FORMS)
        )  # fmt: skip
        for name, allowed in allowed_sets:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")

    def text(self, *, fir: bool = True) -> str:
        """In words, e.g. "scaled conv, triton epilogue, ref fir"."""
        words = f"{self.conv} conv, {self.epilogue} epilogue"
        if self.up == "subpixel":  # no FIR pass to name
            return f"{words}, subpixel"
        return f"{words}, {self.fir} fir" if fir else words


@dataclass(frozen=True)
class ShapeKey:
    """What a layer's speed depends on; layers with equal keys get the same choice."""

    kind: str  # one of KINDS: 3x3 conv, 2x up-conv (transposed + FIR), subpixel up-conv,
    #            toRGB, or the skip image's 2x upsampling (a FIR only)
    resolution: int  # output side in pixels
    c_in: int
    c_out: int
    up: int  # 1 or 2
    batch: int
    dtype: str  # "fp32", "fp16", "bf16"
    memory_format: str  # "nchw" or "nhwc"

    def text(self) -> str:
        return (
            f"{self.kind} {self.resolution}² {self.c_in}→{self.c_out} up{self.up} "
            f"b{self.batch} {self.dtype} {self.memory_format}"
        )


Timer = Callable[[Callable[[], Any], ShapeKey, LayerImpl], float]  # (run, key, impl) -> seconds
MakeRun = Callable[[LayerImpl], Callable[[], Any]]  # impl -> a call that runs the layer once


def candidates(
    key: ShapeKey, *, triton: bool, fused_fir: bool, subpixel: bool = False
) -> list[LayerImpl]:
    """The implementations worth timing for `key`; the first is the plan's default.

    subpixel: an up-conv may also run as one 3x3 conv + pixel shuffle (the plan builds its
    phase kernels for every up-conv whose geometry allows it).
    """
    firs = FIRS if fused_fir and key.kind in ("up", "imgup") else ("cuda",)
    if key.kind == "imgup":  # no conv, no epilogue: only the FIR is a choice
        return [LayerImpl(fir=fir) for fir in firs]
    epilogues = EPILOGUES if triton else ("torch",)
    options = [
        LayerImpl(conv=conv, epilogue=epilogue, fir=fir)
        for conv in CONV_FORMS
        for epilogue in epilogues
        for fir in firs
    ]
    if subpixel and key.kind == "up":  # the FIR is folded: only conv and epilogue vary
        options += [
            LayerImpl(conv=conv, epilogue=epilogue, up="subpixel")
            for conv in CONV_FORMS
            for epilogue in epilogues
        ]
    return options


def event_timer(device: torch.device, *, warmup: int = 3, iterations: int = 10) -> Timer:
    """Median seconds of `iterations` runs after `warmup`: CUDA events on CUDA, else wall time."""

    def time_cuda(run: Callable[[], Any], key: ShapeKey, impl: LayerImpl) -> float:
        for _ in range(warmup):  # cuDNN picks its algorithm, Triton compiles, caches fill
            run()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        for start, end in zip(starts, ends, strict=True):
            start.record()
            run()
            end.record()
        torch.cuda.synchronize(device)  # once, at build time
        ms = sorted(s.elapsed_time(e) for s, e in zip(starts, ends, strict=True))
        return ms[len(ms) // 2] / 1000

    def time_wall(run: Callable[[], Any], key: ShapeKey, impl: LayerImpl) -> float:
        for _ in range(warmup):
            run()
        seconds = []
        for _ in range(iterations):
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
        return sorted(seconds)[len(seconds) // 2]

    return time_cuda if device.type == "cuda" else time_wall


def default_cache_path(environ: Mapping[str, str] = os.environ) -> Path:
    """$LYRISCOPE_PLAN_CACHE, else synth-plans.json in lyriscope's user cache folder."""
    override = environ.get(CACHE_ENV)
    if override:
        return Path(override)
    return user_cache_dir(dict(environ)) / "synth-plans.json"


def device_name(device: torch.device) -> str:
    """The GPU's model name (what the choices depend on), or "cpu"."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def triton_usable(device: torch.device, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the Triton epilogue can run on `device`: triton imports, and CUDA or interpreter."""
    if device.type != "cuda" and environ.get("TRITON_INTERPRET", "0").lower() not in (
        "1",
        "true",
        "on",
    ):
        return False
    try:
        from lyriscope.engine.synth import triton_epilogue  # noqa: F401  (triton may be missing)
    except Exception:  # not installed, or installed without a usable backend
        return False
    return True


@dataclass
class LayerPicker:
    """Times each layer shape's candidates once, keeps the fastest, and caches the choice."""

    device: torch.device
    timer: Timer | None = None  # None: event_timer(device); tests pass a fake
    cache_path: Path | None = None  # None: default_cache_path()
    triton: bool | None = None  # Triton epilogue a candidate; None: when triton_usable(device)
    fused_fir: bool | None = None  # fused-FIR vs reference a choice; None: on CUDA only
    subpixel: bool | None = None  # subpixel up-convs a candidate; None: on CUDA only (4x the
    #                               MACs: slower on CPU)
    notes: list[str] = field(default_factory=list, compare=False)  # warnings given, for reports

    def pick(self, runs: Mapping[ShapeKey, MakeRun]) -> dict[ShapeKey, LayerImpl]:
        """The fastest candidate for each key: from the cache, else timed (and then cached)."""
        path = self.cache_path or default_cache_path()
        cache = self._load(path)
        prefix = f"{device_name(self.device)} | torch {torch.__version__}"
        triton = triton_usable(self.device) if self.triton is None else self.triton
        fused_fir = self.device.type == "cuda" if self.fused_fir is None else self.fused_fir
        subpixel = self.device.type == "cuda" if self.subpixel is None else self.subpixel
        chosen: dict[ShapeKey, LayerImpl] = {}
        timed = False
        for key, make_run in runs.items():
            options = candidates(key, triton=triton, fused_fir=fused_fir, subpixel=subpixel)
            entry = f"{prefix} | {key.text()}"
            cached = _impl_from(cache.get(entry))
            if cached in options:
                chosen[key] = cached
                continue
            if len(options) == 1:
                chosen[key] = options[0]
                continue
            impl, times = self._fastest(key, options, make_run)
            chosen[key] = impl
            cache[entry] = {**_impl_record(impl), "ms": times}
            timed = True
        if timed:
            self._save(path, cache)
        return chosen

    def _fastest(
        self, key: ShapeKey, options: list[LayerImpl], make_run: MakeRun
    ) -> tuple[LayerImpl, dict[str, float]]:
        timer = self.timer or event_timer(self.device)
        times: dict[str, float] = {}
        best, best_s = options[0], math.inf
        for impl in options:
            try:
                seconds = float(timer(make_run(impl), key, impl))
            except Exception as exc:  # a kernel that cannot run here is not a candidate
                self._warn(f"{key.text()}: {impl.text()} failed ({type(exc).__name__}: {exc})")
                continue
            times[impl.text()] = round(seconds * 1000, 4)
            if seconds < best_s:
                best, best_s = impl, seconds
        return best, times

    def _load(self, path: Path) -> MutableMapping[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self._warn(f"ignoring the layer choice cache {path} ({type(exc).__name__}: {exc})")
            return {}
        if (
            not isinstance(data, dict)
            or data.get("version") != CACHE_VERSION
            or not isinstance(data.get("choices"), dict)
        ):
            self._warn(
                f"ignoring the layer choice cache {path} (not a version {CACHE_VERSION} file)"
            )
            return {}
        return data["choices"]

    def _save(self, path: Path, cache: Mapping[str, Any]) -> None:
        text = json.dumps({"version": CACHE_VERSION, "choices": dict(cache)}, indent=1)
        try:
            write_text(path, text + "\n")  # atomic: two builds at once leave one whole file
        except OSError as exc:  # a read-only home must not stop synthesis
            self._warn(f"could not write the layer choice cache {path} ({exc})")

    def _warn(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(f"layer picker: {message}", PickerWarning, stacklevel=4)


def _impl_record(impl: LayerImpl) -> dict[str, str]:
    return {"conv": impl.conv, "epilogue": impl.epilogue, "fir": impl.fir, "up": impl.up}


def _impl_from(record: Any) -> LayerImpl | None:
    """A cached choice, or None when the record is missing or malformed (then it is re-timed).

    A record from before the up-conv form was a choice has no "up": it is re-timed too, since
    its timing never saw the subpixel candidate.
    """
    if not isinstance(record, dict):
        return None
    try:
        return LayerImpl(
            conv=record["conv"], epilogue=record["epilogue"], fir=record["fir"], up=record["up"]
        )
    except (KeyError, TypeError, ValueError):
        return None
