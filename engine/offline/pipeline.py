"""The offline render's stages overlapped: batches drawn ahead on a worker thread, in order.

The render has three stages: synthesis (walk + generator, on the device), the GL post chain
(on the thread that owns the GL context: the caller's), and the encoder (the writer's own
thread). `DrawnAhead` runs the first on a worker thread up to `depth` batches ahead of the
caller, so the device draws batch k+1 while the caller posts and encodes batch k; the
queues between the stages are bounded, so a long song never holds more than a few batches.
An error on the worker is raised in the caller at its next batch, and leaving the `with`
block (done, an error, Ctrl-C) stops the worker and joins it.

`HostReadback` (and `HostCopies` under it) brings a batch's images to host memory without
stalling the device: on CUDA each batch is copied into pinned memory on a copy stream
(non_blocking) and carries an event that the caller waits on before it reads the pixels;
on the CPU the images are already on the host.

Example:
    >>> readback = HostReadback(generator)
    >>> def draw_batch(frames):
    ...     return DrawnBatch(draw(..., generator=readback), readback.fence())
    >>> with DrawnAhead(batches, draw_batch, depth=2) as drawn:
    ...     for batch in drawn:
    ...         batch.ready.wait()  # the pixels are on the host now
    ...         show(batch.items)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

Job = TypeVar("Job")
Result = TypeVar("Result")

POLL_S = 0.1  # how often a blocked stage looks whether the other side has stopped


class Fence:
    """What a batch's host pixels wait for; this one is always ready (CPU)."""

    def wait(self) -> None:
        """Return once the batch's pixels may be read on the host."""


class CudaFence(Fence):
    """The end of a batch's copies to pinned host memory: an event on the copy stream."""

    def __init__(self, event: Any) -> None:
        self.event = event  # torch.cuda.Event, recorded after the batch's last copy

    def wait(self) -> None:
        self.event.synchronize()  # this batch's copies only, not the device's later work


@dataclass(frozen=True)
class DrawnBatch:
    """One drawn batch: its items (e.g. Pictures) and the fence their pixels wait for."""

    items: Sequence[Any]
    ready: Fence


class HostCopies:
    """Device images copied to host memory while the device goes on drawing.

    On CUDA `to_host` returns a pinned array that the copy stream fills asynchronously:
    call `fence()` after a batch and `wait()` on it before reading the arrays. Elsewhere
    it is a plain copy and the fence is always ready.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        # Copies on their own stream overlap the next batch's synthesis on the compute stream.
        self._stream = torch.cuda.Stream(device) if self.cuda else None

    def to_host(self, images: torch.Tensor) -> np.ndarray:
        """uint8 images [N, H, W, 3] -> a host array (on CUDA: filled by the next fence).

        The device images must not be written again (a fast path's static output buffer:
        clone it first); their memory may be freed, the copy stream keeps it until it is done.
        """
        if not self.cuda:
            return images.cpu().numpy().copy()  # the caller may reuse its buffer
        host = torch.empty(images.shape, dtype=torch.uint8, pin_memory=True)  # [N, H, W, 3]
        self._stream.wait_stream(torch.cuda.current_stream(images.device))  # images are done
        with torch.cuda.stream(self._stream):
            host.copy_(images, non_blocking=True)
        images.record_stream(self._stream)  # their memory is not reused before the copy ends
        return host.numpy()  # keeps `host` (and its pinned block) alive

    def fence(self) -> Fence:
        """The point after every copy started so far: wait() on it before reading them."""
        if not self.cuda:
            return Fence()
        event = torch.cuda.Event()
        event.record(self._stream)
        return CudaFence(event)


class HostReadback(HostCopies):
    """A Generator whose `synthesize` returns host images while the device goes on drawing.

    Duck-types what engine.compose uses (`line`, `synthesize`). On CUDA the arrays it returns
    are filled asynchronously (see HostCopies); on the CPU, or for a generator without a
    torch `device`, it is the generator itself.
    """

    def __init__(self, generator: Any) -> None:
        device = getattr(generator, "device", None)
        super().__init__(device if isinstance(device, torch.device) else torch.device("cpu"))
        self.generator = generator

    def line(self, index: int) -> Any:
        return self.generator.line(index)

    def synthesize(self, index: int, ws: torch.Tensor) -> np.ndarray:
        """ws [N, num_ws, w_dim] of line `index` -> uint8 [N, H, W, 3] on the host."""
        if not self.cuda:
            return self.generator.synthesize(index, ws)
        # LineModel.synthesize returns a fresh tensor (it clones a fast path's static buffer).
        return self.to_host(self.generator.line(index).synthesize(ws))


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()  # the worker drew every job


class DrawnAhead(Generic[Job, Result]):
    """draw(job) for each job, in order, computed on a worker thread up to `depth` jobs ahead.

    depth 0 draws each job in the caller's thread when it is asked for (the sequential
    reference: no thread, no queue). Use it as a context manager; iterate once.
    """

    def __init__(
        self,
        jobs: Iterable[Job],
        draw: Callable[[Job], Result],
        *,
        depth: int = 2,  # results waiting for the caller at most; 0: no worker thread
        name: str = "lyriscope-draw",
    ) -> None:
        if depth < 0:
            raise ValueError(f"depth must be at least 0, got {depth}")
        self.depth = depth
        self._jobs = jobs
        self._draw = draw
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread = (
            threading.Thread(target=self._work, name=name, daemon=True) if depth > 0 else None
        )

    def __enter__(self) -> DrawnAhead[Job, Result]:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Result]:
        if self._thread is None:
            for job in self._jobs:
                yield self._draw(job)
            return
        while True:
            item = self._get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the worker (after the job it is drawing) and join it; idempotent."""
        self._stop.set()
        if self._thread is None or self._thread.ident is None:  # no worker, or never started
            return
        while self._thread.is_alive():
            self._drain()  # a worker blocked on a full queue sees the stop sooner
            self._thread.join(POLL_S)
        self._drain()  # drop what it left: its batches' memory is freed now

    # --- worker side ------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            for job in self._jobs:
                if self._stop.is_set():
                    return
                self._put(self._draw(job))
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._put(_Failed(exc))

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    # --- caller side ------------------------------------------------------------------------

    def _get(self) -> Any:
        # With a timeout, so Ctrl-C (or SIGTERM) reaches the caller while it waits.
        while True:
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the drawing thread ended without a result") from None

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
