"""Latest frame wins: the live show's synthesis thread and its one-slot hand-overs.

The display loop puts a FrameRequest for each frame it shows; the worker always takes the
newest one and leaves the newest finished images. Both hand-overs are one-slot mailboxes,
not queues, so a slow frame is dropped and latency cannot build up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from lyriscope.engine.audio.features import Features
from lyriscope.engine.compose import LineImage, Morph, Walks, synthesize
from lyriscope.engine.shots import Shot

log = logging.getLogger(__name__)

T = TypeVar("T")


class Mailbox(Generic[T]):
    """A one-slot, thread-safe hand-over: `put` replaces what was not taken yet (latest wins)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.dropped = 0  # items replaced before anyone took them

    def put(self, item: T) -> bool:
        """Leave item for the taker; True when it replaced one nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._full
            self.dropped += replaced
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to timeout seconds (0: don't wait); None if none or closed."""
        with self._cond:
            if timeout != 0:
                self._cond.wait_for(lambda: self._full or self._closed, timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake every waiting taker; later takes return what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


@dataclass(frozen=True)
class FrameRequest:
    """The image(s) of one moment: the shot, the line images it needs and the walks to draw them."""

    t: float  # clock seconds this frame shows
    shot: Shot
    # compose.shot_images: the line's, then the fading line's; or one Morph of the two
    images: tuple[LineImage | Morph, ...]
    walks: Walks  # the lines' walks when asked (a hot reload replaces the show's)
    features: Features | None  # the audio's features, or None for a silent walk
    word_times: tuple[float, ...] = ()  # seconds each sung word starts (the word pulse)
    # time.perf_counter() when the clock was read for it: its latency runs from here
    taken_s: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class FrameResult:
    request: FrameRequest
    image: np.ndarray  # uint8 [H, W, 3] of shot.line
    prev_image: np.ndarray | None  # uint8 [H, W, 3] of shot.prev, when crossfading
    synth_s: float  # seconds the worker took


class SynthesisWorker:
    """A thread that turns the newest FrameRequest into images (on CUDA, on its own stream)."""

    def __init__(self, generator: Any, *, on_error: Callable[[str], None]) -> None:
        self.generator = generator
        self.requests: Mailbox[FrameRequest] = Mailbox()
        self.results: Mailbox[FrameResult] = Mailbox()
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name="lyriscope-synthesis", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self.requests.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        device = getattr(self.generator, "device", None)
        stream = None
        if device is not None and getattr(device, "type", "") == "cuda":
            stream = torch.cuda.Stream(device=device)  # synthesis overlaps the display's copies
        while True:
            request = self.requests.take(timeout=None)
            if request is None:
                return  # closed
            began = time.perf_counter()
            try:
                if stream is not None:
                    # Walk keyframes are made on the default stream (at start, on reload).
                    stream.wait_stream(torch.cuda.default_stream(device))
                    with torch.cuda.stream(stream):
                        image, prev_image = self._draw(request)
                else:
                    image, prev_image = self._draw(request)
            except Exception as exc:  # noqa: BLE001 - the show goes on; the HUD says why
                log.exception("synthesis failed")
                self._on_error(f"synthesis failed: {exc}")
                continue
            self.results.put(FrameResult(request, image, prev_image, time.perf_counter() - began))

    def _draw(self, r: FrameRequest) -> tuple[np.ndarray, np.ndarray | None]:
        images = synthesize(
            r.images,
            walks=r.walks,
            generator=self.generator,
            features=r.features,
            word_times=r.word_times,
        )
        return images[0], images[1] if len(images) > 1 else None


__all__ = ["FrameRequest", "FrameResult", "Mailbox", "SynthesisWorker"]
