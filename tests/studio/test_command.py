"""`lyriscope studio`: the URL with its token, one-sentence errors, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from lyriscope.cli import main


def test_a_missing_sets_folder_or_a_set_elsewhere_is_one_sentence(
    sets_dir: Path, tmp_path: Path, capsys
) -> None:
    assert main(["studio", "--no-browser", "--sets-dir", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    assert main(["studio", str(sets_dir / "tiny"), "--sets-dir", str(other), "--no-browser"]) == 2
    assert "the set is not in --sets-dir" in capsys.readouterr().err


def test_the_studio_prints_its_url_serves_and_stops_on_sigterm(sets_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lyriscope", "studio", str(sets_dir / "tiny"), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("lyriscope studio: http://127.0.0.1:"), first + proc.stderr.read()
        url = first.split()[2]
        assert url.endswith("#/set/tiny")
        with urllib.request.urlopen(url.split("#")[0], timeout=10) as page:
            assert b"lyriscope studio" in page.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping" in err


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\nfrom lyriscope.cli import main\ntry:\n    main(['studio', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY:', *sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'sklearn', 'librosa', 'av', 'moderngl'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "--sets-dir" in done.stdout and done.stdout.splitlines()[-1] == "HEAVY:"
