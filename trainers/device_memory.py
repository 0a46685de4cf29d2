"""Memory and syncs of a torch device, for the trainer's stats and the bench.

CUDA figures are bytes held by tensors (the caching allocator's max_memory_allocated, as
NVlabs' training log reports); a CPU has no such counter, so its figures are the process's
resident set (Linux /proc: VmRSS now, VmHWM the peak), which also counts Python, caches and
freed memory the C allocator kept: an upper bound, labelled as such wherever it is shown.
"""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path

import torch


def memory_kind(device: torch.device) -> str:
    """What the figures of this module mean on `device`, for labels."""
    return "CUDA allocated" if device.type == "cuda" else "CPU resident set"


def memory_now_mb(device: torch.device) -> float:
    """MiB held now: CUDA tensors, or the process's resident set."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    return _proc_status_mb("VmRSS:") or 0.0


def peak_memory_mb(device: torch.device) -> float:
    """MiB at the peak since the last reset_peak_memory (CPU without /proc: the process's life)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = _proc_status_mb("VmHWM:")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reset_peak_memory(device: torch.device) -> None:
    """Start the peak again from what is held now."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: VmHWM starts again from the current RSS


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_mb(key: str) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024  # kB
    return None
