"""A private Xvfb display for window tests: started per test, skipped when Xvfb is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def private_display(
    monkeypatch: pytest.MonkeyPatch, *, screen: str = "1280x1024x24"
) -> Iterator[str]:
    """Start Xvfb on a free display, point DISPLAY at it, yield ":N"; stop it afterwards."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # Xvfb writes its display number once it is ready
        if not number:
            pytest.skip("Xvfb did not start")
        display = f":{number}"
        monkeypatch.setenv("DISPLAY", display)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        yield display
    finally:
        server.terminate()
        server.wait(timeout=10)
