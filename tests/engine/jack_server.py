"""A JACK server with the dummy driver for tests (no sound card needed), under a unique name.

Clients in this process find it once `server.env` is in os.environ (JACK_DEFAULT_SERVER);
subprocesses get it through `env={**os.environ, **server.env}`. Tests skip cleanly when
jackd is not installed or does not start.

Example (one server per test module):
    >>> @pytest.fixture(scope="module")
    ... def jack():
    ...     with start_jack() as server, pytest.MonkeyPatch.context() as mp:
    ...         for k, v in server.env.items():
    ...             mp.setenv(k, v)
    ...         yield server
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass(frozen=True)
class JackServer:
    name: str  # the server name clients connect to
    rate: int  # sample rate of the dummy driver, Hz
    period: int  # frames per period
    process: subprocess.Popen = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment for JACK clients: this server, and never auto-start another one."""
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def ports(self) -> list[str]:
        """The server's port names (jack_lsp)."""
        out = subprocess.run(
            ["jack_lsp", "-s", self.name], capture_output=True, text=True, timeout=10
        )
        return [p for p in out.stdout.splitlines() if p.strip()]


@contextlib.contextmanager
def start_jack(
    name: str | None = None,
    *,
    rate: int = 48000,
    period: int = 256,
    sync: bool = True,
    timeout_s: float = 10.0,
) -> Iterator[JackServer]:
    """Run `jackd --no-realtime -n NAME -d dummy` for the duration of the block; skip if impossible.

    sync: the server waits for every client each cycle (jackd -S). On a busy test machine a
    client without real-time scheduling is often late; asynchronous mode would then drop the
    MIDI events of that cycle, sync mode only delays them.
    """
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("jackd is not installed (Debian: apt-get install jackd2)")
    name = name or f"lyriscope-test-{uuid.uuid4().hex[:8]}"
    # jackd logs every xrun; a file (not a pipe nobody reads) can never block it.
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [
                jackd,
                "--no-realtime",
                *(["--sync"] if sync else []),
                "-n",
                name,
                "-d",
                "dummy",
                "-r",
                str(rate),
                "-p",
                str(period),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            if not _wait_ready(name, proc, timeout_s):
                _stop(proc)
                log.seek(0)
                last = log.read().strip().splitlines()[-1:] or ["no output"]
                pytest.skip(f"jackd did not start: {last[0]}")
            yield JackServer(name=name, rate=rate, period=period, process=proc)
        finally:
            _stop(proc)


def _wait_ready(name: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    if shutil.which("jack_wait") is None:
        return proc.poll() is None
    try:
        done = subprocess.run(
            ["jack_wait", "-s", name, "-w", "-t", str(max(1, round(timeout_s)))],
            capture_output=True,
            text=True,
            timeout=timeout_s + 5,
            env={**os.environ, "JACK_NO_START_SERVER": "1"},
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and proc.poll() is None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
