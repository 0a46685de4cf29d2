"""The job queue: child processes per lane, their output followed, cancelled with SIGINT then harder."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from lyriscope.studio.errors import Conflict, NotFound
from lyriscope.studio.jobs import JobQueue, JobSpec

# A stand-in for `python -m lyriscope`: what it does is its first argument.
CHILD = r"""
import signal, sys, time
mode = sys.argv[1]
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, whatever the parent ignores
if mode == "ok":
    print("working", flush=True)
    for i in range(3):
        sys.stderr.write(f"\rthing: {(i + 1) * 33}%|###| {i + 1}/3 [00:00<00:0{2 - i}, stored={i + 1}]")
        sys.stderr.flush()
        time.sleep(0.05)
    sys.stderr.write("\n")
    print("all done")
elif mode == "fail":
    print("half way", flush=True)
    print("lyriscope thing: line 2 has no images", file=sys.stderr)
    sys.exit(2)
elif mode == "wait":
    print("ready", flush=True)
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        print("stopped: checkpoint written", flush=True)
        sys.exit(130)
elif mode == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(60)
elif mode == "sleep":
    time.sleep(float(sys.argv[2]))
"""


def spec(mode: str, *args: str, lane: str = "cpu", key: str = "", kind: str = "collect") -> JobSpec:
    return JobSpec(
        kind=kind, lane=lane, set_name="s", argv=(mode, *args), title=f"{mode} job", key=key
    )


@pytest.fixture
def queue(tmp_path: Path):
    q = JobQueue(
        command=(sys.executable, "-c", CHILD), cwd=tmp_path, stop_grace_s=0.5, kill_grace_s=2
    )
    yield q
    q.close(wait_s=10)


def wait_state(queue: JobQueue, job_id: int, states: tuple[str, ...], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    version = -1
    while time.monotonic() < deadline:
        job = queue.job(job_id)
        if job["state"] in states:
            return job
        version = queue.wait(version, timeout=0.5)
    raise AssertionError(f"job {job_id} stayed {queue.job(job_id)['state']}")


def wait_log(queue: JobQueue, job_id: int, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in "\n".join(queue.job(job_id)["log"]):
        assert time.monotonic() < deadline, queue.job(job_id)
        time.sleep(0.02)


def test_a_job_runs_to_done_with_its_progress_and_log(queue: JobQueue) -> None:
    job = queue.submit(spec("ok"))
    assert job["state"] in ("queued", "running") and job["id"] == 1
    done = wait_state(queue, job["id"], ("done",))
    assert done["returncode"] == 0 and done["progress"] == 1.0
    assert done["counters"] == {"stored": 3}
    assert done["log"][0] == "working" and done["log"][-1] == "all done"
    assert done["started"] <= done["ended"]
    assert [j["id"] for j in queue.jobs()] == [1]  # the table keeps it for a page reload


def test_a_failed_job_shows_the_commands_one_sentence(queue: JobQueue) -> None:
    job = wait_state(queue, queue.submit(spec("fail"))["id"], ("failed",))
    assert job["returncode"] == 2
    assert job["error"] == "lyriscope thing: line 2 has no images"


def test_one_job_at_a_time_per_lane_and_lanes_side_by_side(queue: JobQueue) -> None:
    gpu1 = queue.submit(spec("wait", lane="gpu", key="a"))["id"]
    gpu2 = queue.submit(spec("ok", lane="gpu", key="b"))["id"]
    cpu = queue.submit(spec("ok", lane="cpu"))["id"]
    wait_log(queue, gpu1, "ready")
    assert wait_state(queue, cpu, ("done",))["state"] == "done"  # beside the running gpu job
    assert queue.job(gpu2)["state"] == "queued"  # behind it
    queue.cancel(gpu1)
    assert wait_state(queue, gpu2, ("done",))["state"] == "done"


def test_the_same_work_is_not_queued_twice(queue: JobQueue) -> None:
    first = queue.submit(spec("wait", key="train:s:1"))
    with pytest.raises(Conflict, match=r"wait job: already (queued|running) \(job 1\)"):
        queue.submit(spec("ok", key="train:s:1"))
    queue.cancel(first["id"])
    wait_state(queue, first["id"], ("cancelled",))
    assert queue.submit(spec("ok", key="train:s:1"))["id"] == 2  # free again once it ended


def test_cancel_sends_sigint_and_the_command_stops_its_own_way(queue: JobQueue) -> None:
    job_id = queue.submit(spec("wait"))["id"]
    wait_log(queue, job_id, "ready")
    assert queue.cancel(job_id)["cancelling"] is True
    job = wait_state(queue, job_id, ("cancelled",))
    assert job["returncode"] == 130
    assert job["log"][-1] == "stopped: checkpoint written"  # it had its say: no SIGTERM came


def test_a_child_that_ignores_sigint_gets_sigterm_after_the_grace(queue: JobQueue) -> None:
    job_id = queue.submit(spec("stubborn"))["id"]
    wait_log(queue, job_id, "ready")
    started = time.monotonic()
    queue.cancel(job_id)
    job = wait_state(queue, job_id, ("cancelled",))
    assert job["returncode"] == -15  # SIGTERM
    assert time.monotonic() - started >= 0.5  # not before the grace


def test_a_queued_job_is_cancelled_at_once_and_unknown_ids_are_not_found(queue: JobQueue) -> None:
    blocker = queue.submit(spec("wait", lane="gpu", key="a"))["id"]
    waiting = queue.submit(spec("ok", lane="gpu", key="b"))["id"]
    assert queue.cancel(waiting)["state"] == "cancelled"
    with pytest.raises(NotFound, match="no job 99"):
        queue.cancel(99)
    queue.cancel(blocker)
    wait_state(queue, blocker, ("cancelled",))
    assert queue.job(waiting)["started"] is None  # it never ran


def test_close_stops_running_jobs_and_takes_no_more(tmp_path: Path) -> None:
    queue = JobQueue(command=(sys.executable, "-c", CHILD), cwd=tmp_path, stop_grace_s=5)
    running = queue.submit(spec("wait"))["id"]
    queued = queue.submit(spec("ok", lane="cpu", key="x"))["id"]
    wait_log(queue, running, "ready")
    assert queue.close(wait_s=20) == [running]
    assert queue.job(running)["state"] == "cancelled"
    assert queue.job(queued)["state"] == "cancelled"
    with pytest.raises(Conflict, match="stopping"):
        queue.submit(spec("ok"))
