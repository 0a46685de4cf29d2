"""Atomic writes: the old file or the whole new one, never a torn or private leftover."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lyriscope.atomic import atomic_open, atomic_path, write_text


def test_new_file_appears_whole_with_the_usual_mode(tmp_path: Path):
    target = tmp_path / "sub" / "out.txt"
    write_text(target, "hello")
    assert target.read_text(encoding="utf-8") == "hello"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_a_writer_that_recreates_the_file_still_gets_the_usual_mode(tmp_path: Path):
    target = tmp_path / "model.bin"
    with atomic_path(target) as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"data")
        os.close(fd)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write("half of the new")
        raise RuntimeError("stopped")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
