"""The studio's job queue: long work runs as `lyriscope` commands in child processes.

Two lanes, each running one job at a time: "gpu" (train, preview, render: they share the
accelerator) and "cpu" (collect, cluster, prepare), so an image collection runs beside a
training. A job is the command line the CLI would run, so the page and a terminal do the
same work with the same checks and messages. Children run in their own session: they keep
going when the browser closes, and a Ctrl-C in the studio's terminal reaches them only as
the studio passes it on.

Cancelling a running job sends SIGINT to its process group, as Ctrl-C in a terminal would
(collect keeps what it stored, train writes a checkpoint that --resume continues), then
SIGTERM after a grace and SIGKILL after another.
"""

from __future__ import annotations

import codecs
import itertools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lyriscope.studio.errors import Conflict, NotFound
from lyriscope.studio.progress import OutputTracker

log = logging.getLogger(__name__)

LANES = ("gpu", "cpu")
ACTIVE = ("queued", "running")
LOG_LINES_SENT = 40  # of a job's log, the last lines the page gets


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """One piece of work: a `lyriscope` command line and what it is for."""

    kind: str  # collect, cluster, prepare, train, preview or render
    lane: str  # "gpu" or "cpu": one job at a time in each
    set_name: str
    argv: tuple[str, ...]  # the command's arguments after `lyriscope`
    title: str  # for people: "collect line 2"
    line: int | None = None  # 1-based; None: the whole set
    results: tuple[str, ...] = ()  # files or folders it writes, relative to the set folder
    key: str = ""  # jobs with the same key do not run or wait twice (e.g. "train:demo:2")


@dataclass(kw_only=True)
class Job:
    """A job's state; changed only by the queue, under its lock."""

    id: int
    spec: JobSpec
    state: str = "queued"  # queued, running, done, failed or cancelled
    tracker: OutputTracker = field(default_factory=OutputTracker)
    returncode: int | None = None
    error: str | None = None  # the command's one-line message when it failed
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    cancel_requested: bool = False
    process: subprocess.Popen | None = None

    def as_json(self) -> dict:
        t = self.tracker
        return {
            "id": self.id,
            "kind": self.spec.kind,
            "set": self.spec.set_name,
            "line": self.spec.line,
            "title": self.spec.title,
            "lane": self.spec.lane,
            "state": self.state,
            "progress": t.fraction,
            "eta_s": t.eta_s,
            "counters": dict(t.counters),
            "refused": dict(t.refused),
            "message": t.last_line(),
            "log": list(t.lines)[-LOG_LINES_SENT:],
            "error": self.error,
            "returncode": self.returncode,
            "results": list(self.spec.results),
            "created": self.created,
            "started": self.started,
            "ended": self.ended,
            "cancelling": self.cancel_requested and self.state == "running",
        }


class JobQueue:
    """Runs JobSpecs as child processes, one per lane at a time; thread-safe."""

    def __init__(
        self,
        *,
        command: Sequence[str],  # the program and its first arguments: `lyriscope` (studio.child)
        cwd: Path,
        stop_grace_s: float = 30.0,  # SIGINT -> SIGTERM
        kill_grace_s: float = 60.0,  # SIGTERM -> SIGKILL
        on_finish: Callable[[Job], None] | None = None,  # called after a job ends, outside the lock
    ) -> None:
        self.command = tuple(command)
        self.cwd = Path(cwd)
        self.stop_grace_s = stop_grace_s
        self.kill_grace_s = kill_grace_s
        self.on_finish = on_finish
        self._changed = threading.Condition()
        self._version = 0
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._workers = [
            threading.Thread(target=self._work, args=(lane,), name=f"studio-{lane}", daemon=True)
            for lane in LANES
        ]
        for worker in self._workers:
            worker.start()

    # -- the page's side -------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> dict:
        """Queue a job; Conflict when the same work is already queued or running."""
        if spec.lane not in LANES:
            raise ValueError(f"lane {spec.lane!r}: expected one of {LANES}")
        with self._changed:
            if self._closing:
                raise Conflict("the studio is stopping; no new jobs")
            for job in self._jobs.values():
                if spec.key and job.spec.key == spec.key and job.state in ACTIVE:
                    raise Conflict(f"{job.spec.title}: already {job.state} (job {job.id})")
            job = Job(id=next(self._ids), spec=spec)
            self._jobs[job.id] = job
            self._bump()
            return job.as_json()

    def jobs(self) -> list[dict]:
        with self._changed:
            return [job.as_json() for job in self._jobs.values()]

    def job(self, job_id: int) -> dict:
        with self._changed:
            return self._get(job_id).as_json()

    def cancel(self, job_id: int) -> dict:
        """Cancel a queued job at once; ask a running one to stop (SIGINT, then harder)."""
        with self._changed:
            job = self._get(job_id)
            if job.state == "queued":
                job.state, job.ended = "cancelled", time.time()
            elif job.state == "running" and not job.cancel_requested:
                job.cancel_requested = True
                threading.Thread(
                    target=self._stop, args=(job,), name=f"studio-stop-{job.id}", daemon=True
                ).start()
            self._bump()
            return job.as_json()

    def wait(self, version: int, *, timeout: float) -> int:
        """Block until the jobs change from `version` (or timeout); the version now."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._version != version or self._closing, timeout=timeout
            )
            return self._version

    @property
    def version(self) -> int:
        with self._changed:
            return self._version

    def close(self, *, wait_s: float | None = None) -> list[int]:
        """Stop taking jobs, cancel the queued ones, ask the running ones to stop, wait for them.

        Returns the ids of the jobs that were running. wait_s: how long to wait for them in
        all (None: until the grace periods are spent and they are gone).
        """
        with self._changed:
            self._closing = True
            running = [job for job in self._jobs.values() if job.state == "running"]
            for job in self._jobs.values():
                if job.state == "queued":
                    job.state, job.ended = "cancelled", time.time()
            self._bump()
        for job in running:
            self.cancel(job.id)
        deadline = None if wait_s is None else time.monotonic() + wait_s
        for worker in self._workers:
            worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return [job.id for job in running]

    # -- the lanes' side -------------------------------------------------------------------

    def _work(self, lane: str) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closing or self._next(lane) is not None)
                if self._closing:
                    return
                job = self._next(lane)
                job.state, job.started = "running", time.time()
                self._bump()
            self._run(job)
            if self.on_finish is not None:
                try:
                    self.on_finish(job)
                except Exception:  # noqa: BLE001 - a hook must not stop the lane
                    log.exception("after job %d", job.id)

    def _next(self, lane: str) -> Job | None:
        return next(
            (j for j in self._jobs.values() if j.state == "queued" and j.spec.lane == lane), None
        )

    def _run(self, job: Job) -> None:
        try:
            process = subprocess.Popen(
                [*self.command, *job.spec.argv],
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signalled as one, by us only
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as exc:
            with self._changed:
                job.state, job.error, job.ended = "failed", f"could not start: {exc}", time.time()
                self._bump()
            return
        with self._changed:
            job.process = process
            cancelled_early = job.cancel_requested
        if cancelled_early:  # cancel() came before there was a process to signal
            threading.Thread(target=self._stop, args=(job,), daemon=True).start()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = process.stdout.fileno()
        while chunk := os.read(fd, 8192):
            text = decoder.decode(chunk)
            with self._changed:
                job.tracker.feed(text)
                self._bump()
        process.stdout.close()
        code = process.wait()
        with self._changed:
            job.tracker.feed(decoder.decode(b"", final=True))
            job.tracker.finish()
            job.returncode, job.ended = code, time.time()
            if code == 0:
                job.state = "done"
            elif job.cancel_requested:
                job.state = "cancelled"
            else:
                job.state, job.error = "failed", job.tracker.error_line() or f"exit code {code}"
            self._bump()

    def _stop(self, job: Job) -> None:
        """SIGINT, then SIGTERM after the grace, then SIGKILL: the child's own process group."""
        process = job.process
        if process is None:  # not started yet: _run signals it as soon as it is
            return
        for sig, wait_s in (
            (signal.SIGINT, self.stop_grace_s),
            (signal.SIGTERM, self.kill_grace_s),
            (signal.SIGKILL, None),
        ):
            if process.poll() is not None:
                return
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            if wait_s is None:
                return
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                log.warning("job %d did not stop after signal %d; escalating", job.id, sig)

    def _get(self, job_id: int) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"there is no job {job_id}")
        return job

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()
