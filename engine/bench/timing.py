"""Timing helpers shared by the bench's sections: interleaved calls, device syncs."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import torch

from lyriscope.trainers.device_memory import synchronize


def device_sync(device: torch.device) -> Callable[[], None]:
    """A function that waits for `device`'s queued work (nothing to wait for off CUDA)."""
    return functools.partial(synchronize, device)


def interleaved_times(
    fns: dict[str, Callable[[], None]], *, iterations: int, warmup: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Seconds per call of each function, called in turn (so drift hits all alike) after
    `warmup` untimed rounds; `sync` runs before and after each call."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + iterations):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times
