"""`lyriscope train --gpus K` passes a SIGTERM on to torchrun, so its workers can save and stop.

torchrun is replaced by a small process that says when it is ready and writes down the
signal it gets; the launcher runs under the CLI's SIGTERM handling in a child process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

TORCHRUN = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    def note(signum, frame):
        out.write_text(signal.Signals(signum).name)
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    out.with_suffix(".ready").write_text("")
    time.sleep(60)
    """
)

LAUNCHER = textwrap.dedent(
    """
    import sys
    from lyriscope.termination import Terminated, sigterm_raises
    from lyriscope.trainers import distributed
    distributed.torchrun_command = lambda args, nproc: [sys.executable, "-c", sys.argv[1], sys.argv[2]]
    try:
        with sigterm_raises():
            distributed.launch_torchrun([], nproc=2)
    except Terminated:
        sys.exit(143)
    """
)


def test_sigterm_is_passed_on_to_torchrun(tmp_path: Path):
    note = tmp_path / "torchrun.txt"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, TORCHRUN, str(note)])
    try:
        deadline = time.monotonic() + 60
        while not note.with_suffix(".ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert note.with_suffix(".ready").exists()
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 143
    finally:
        launcher.kill()
    assert note.read_text() == "SIGTERM"
