"""engine.offline.pipeline: batches drawn ahead on a worker thread, in order, bounded, stoppable."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from lyriscope.engine.offline.pipeline import DrawnAhead, Fence, HostReadback


def _draw_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lyriscope-draw"]


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_results_come_in_job_order(depth: int):
    def draw(job: int) -> int:
        time.sleep(0.002 * (job % 3))  # uneven work must not reorder them
        return job * job

    with DrawnAhead(range(20), draw, depth=depth) as drawn:
        assert list(drawn) == [job * job for job in range(20)]
    assert not _draw_threads()


def test_depth_zero_draws_in_the_callers_thread_when_asked():
    drawn_on: list[str] = []

    def draw(job: int) -> None:
        drawn_on.append(threading.current_thread().name)

    with DrawnAhead(range(3), draw, depth=0) as it:
        assert drawn_on == []  # nothing drawn before it is asked for
        list(it)
    assert drawn_on == [threading.main_thread().name] * 3


@pytest.mark.timeout(30)
def test_the_worker_stays_at_most_depth_plus_one_jobs_ahead():
    started: list[int] = []

    def draw(job: int) -> int:
        started.append(job)
        return job

    with DrawnAhead(range(100), draw, depth=2) as drawn:
        for taken, job in enumerate(drawn):
            time.sleep(0.01)  # a slow consumer (the post chain, the encoder)
            # Taken: `taken` + 1; queued: at most 2; being drawn: at most 1.
            assert len(started) <= taken + 1 + 2 + 1
            assert job == taken


@pytest.mark.timeout(30)
@pytest.mark.parametrize("depth", [0, 2])
def test_an_error_while_drawing_is_raised_in_the_caller(depth: int):
    def draw(job: int) -> int:
        if job == 5:
            raise ValueError("bad batch 5")
        return job

    taken = []
    with pytest.raises(ValueError, match="bad batch 5"):
        with DrawnAhead(range(100), draw, depth=depth) as drawn:
            for job in drawn:
                taken.append(job)
    assert taken == [0, 1, 2, 3, 4]  # every batch before the failing one, in order
    assert not _draw_threads()


@pytest.mark.timeout(30)
def test_leaving_early_stops_and_joins_the_worker():
    drawn_jobs: list[int] = []

    def draw(job: int) -> int:
        drawn_jobs.append(job)
        return job

    with pytest.raises(KeyboardInterrupt):
        with DrawnAhead(range(10_000), draw, depth=2) as drawn:
            for job in drawn:
                if job == 3:
                    raise KeyboardInterrupt  # Ctrl-C in the post chain
    assert not _draw_threads()
    assert len(drawn_jobs) < 10  # it stopped, it did not draw the whole song


def test_a_negative_depth_is_refused():
    with pytest.raises(ValueError, match="depth must be at least 0"):
        DrawnAhead(range(3), lambda job: job, depth=-1)


def test_cpu_readback_is_the_generator_and_copies_device_buffers():
    class Fake:
        device = torch.device("cpu")

        def synthesize(self, index: int, ws: torch.Tensor) -> np.ndarray:
            return np.full((ws.shape[0], 4, 4, 3), index, np.uint8)

        def line(self, index: int) -> str:
            return f"line {index}"

    readback = HostReadback(Fake())
    assert not readback.cuda and readback.line(2) == "line 2"
    assert (
        readback.synthesize(7, torch.zeros(2, 3, 8)).tolist()
        == np.full((2, 4, 4, 3), 7, np.uint8).tolist()
    )
    buffer = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    host = readback.to_host(buffer)
    buffer += 9  # a static output buffer overwritten by the next call
    assert host.max() == 0
    fence = readback.fence()
    assert type(fence) is Fence
    fence.wait()  # nothing to wait for on the CPU


@pytest.mark.timeout(30)
def test_drawing_overlaps_the_callers_work():
    # Sleeps stand for the device and for the post chain + encoder: no CPU needed, so a busy
    # machine cannot blur the difference. Sequential: 8 x (30 + 30) ms; pipelined: about half.
    def draw(job: int) -> int:
        time.sleep(0.03)
        return job

    def run(depth: int) -> float:
        start = time.perf_counter()
        with DrawnAhead(range(8), draw, depth=depth) as drawn:
            for _ in drawn:
                time.sleep(0.03)
        return time.perf_counter() - start

    sequential, pipelined = run(0), run(2)
    assert sequential >= 0.48
    assert pipelined < 0.8 * sequential
