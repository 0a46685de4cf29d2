"""The fused CUDA ops against their PyTorch references, at the shapes a 1024² G meets.

Each case times forward + backward of one op both ways (interleaved, after a warm-up) and
reports the ratio; off CUDA, or where a kernel did not build or pass its self-check, the
case says so instead of timing the reference against itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lyriscope.engine.bench.timing import device_sync, interleaved_times
from lyriscope.trainers.ops import bias_act as bias_act_module
from lyriscope.trainers.ops import upfirdn2d as upfirdn2d_module
from lyriscope.trainers.ops.bias_act import bias_act
from lyriscope.trainers.ops.upfirdn2d import setup_filter, upfirdn2d


@dataclass(frozen=True)
class OpCase:
    """One op call at one shape: run(x, impl) -> output."""

    name: str
    shape: tuple[int, ...]  # x [N, C, H, W]
    run: Callable[[torch.Tensor, str], torch.Tensor]
    plugin: str  # "bias_act" or "upfirdn2d"


def op_cases(size: int, device: torch.device) -> list[OpCase]:
    """The ops at the top block of a `size`² generator (channels as the published 1024² G)."""
    half = size // 2
    f = setup_filter([1, 3, 3, 1]).to(device)
    b = torch.randn([32], device=device)
    return [
        OpCase(
            "bias_act lrelu+clamp",
            (1, 32, size, size),
            lambda x, impl: bias_act(x, b, act="lrelu", clamp=256, impl=impl),
            "bias_act",
        ),
        OpCase(
            "upsample2d (4-tap)",
            (1, 64, half, half),
            lambda x, impl: upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl=impl),
            "upfirdn2d",
        ),
        OpCase(
            "filter2d after up-conv (4-tap)",
            (1, 32, size + 1, size + 1),
            lambda x, impl: upfirdn2d(x, f, padding=1, gain=4, impl=impl),
            "upfirdn2d",
        ),
        OpCase(
            "downsample2d (D, 4-tap)",
            (1, 3, size, size),
            lambda x, impl: upfirdn2d(x, f, down=2, padding=1, impl=impl),
            "upfirdn2d",
        ),
    ]


def bench_ops(
    *, size: int, device: torch.device, iterations: int = 20, warmup: int = 3
) -> dict[str, Any]:
    """ms of forward + backward per case, PyTorch reference vs fused kernel, and the ratio."""
    if device.type != "cuda":
        return {"available": False, "reason": "the fused ops run on CUDA only", "cases": []}
    built = {
        "bias_act": bias_act_module.fused_plugin() is not None,
        "upfirdn2d": upfirdn2d_module.fused_plugin() is not None,
    }
    cases = []
    for case in op_cases(size, device):
        row: dict[str, Any] = {"name": case.name, "shape": list(case.shape)}
        if not built[case.plugin]:
            row["error"] = f"the {case.plugin} kernel is unavailable (see the warning)"
            cases.append(row)
            continue
        x = torch.randn(case.shape, device=device, requires_grad=True)
        steps = {impl: _step(case, x, impl) for impl in ("ref", "cuda")}
        times = interleaved_times(
            steps, iterations=iterations, warmup=warmup, sync=device_sync(device)
        )
        row.update({impl: float(np.median(t)) * 1000 for impl, t in times.items()})
        row["speedup"] = row["ref"] / row["cuda"]
        cases.append(row)
    return {
        "available": all(built.values()),
        "built": built,
        "cases": cases,
        "what": "median ms of forward + backward, fp32",
    }


def op_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for the bench report."""
    if not result["cases"]:
        return [("fused ops", result.get("reason", "not measured"))]
    rows = []
    for case in result["cases"]:
        if "error" in case:
            rows.append((case["name"], case["error"]))
        else:
            rows.append(
                (
                    case["name"],
                    f"reference {case['ref']:.3f} ms  fused {case['cuda']:.3f} "
                    f"ms  {case['speedup']:.2f}x",
                )
            )
    return rows


def _step(case: OpCase, x: torch.Tensor, impl: str) -> Callable[[], None]:
    def step() -> None:
        y = case.run(x, impl)
        (grad,) = torch.autograd.grad(y.sum(), [x])
        del grad

    return step
