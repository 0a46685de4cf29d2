"""Atomic file writes: a reader sees the old file or the whole new one, never a torn write.

A write goes to a temporary `.NAME.XXXXXXXX.part` beside its target (a file, or a folder
for `atomic_folder`) and is renamed over the target when it succeeds. While it is being
written, the writer holds an advisory lock on it; a part nobody holds was left by a writer
that was killed (SIGKILL, a power cut) and `remove_stale_parts` removes it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so stale parts are left alone there
    fcntl = None  # type: ignore[assignment]

PART_SUFFIX = ".part"
_NEW_FILE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # as mkstemp opens


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed over `path`.

    On any exception the temporary file is removed and `path` is left as it was.
    Use it for writers that want a file name (PyAV, safetensors, zipfile).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = None
    tmp = _part_name(target)
    try:  # named before it exists: a Ctrl-C at any point from here on removes it
        fd = os.open(tmp, _NEW_FILE, 0o600)
        _lock(fd)  # held until the end: this part belongs to a live writer
        yield tmp
        # The part is created private (0600), and some writers (safetensors) recreate it so;
        # a result file gets the usual umask-based mode.
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        if _ours(exc, fd):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` as a whole.

    An existing folder at `path` is swapped out and removed (callers decide beforehand
    whether it may be: see PngSequenceWriter). On any exception the temporary folder is
    removed and `path` is left as it was. The writer fsyncs the files it puts inside.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = None
    tmp = _part_name(target)
    try:  # named before it exists: a Ctrl-C at any point from here on removes it
        os.mkdir(tmp, 0o700)
        fd = os.open(tmp, os.O_RDONLY)
        _lock(fd)
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # created private (0700) while it is written
        _fsync_dir(tmp)
        if target.exists():
            # Two renames with the old folder aside: a crash between them leaves parts that
            # remove_stale_parts takes away, never a half-replaced folder.
            old = tmp.with_name(tmp.name[: -len(PART_SUFFIX)] + ".old" + PART_SUFFIX)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        if _ours(exc, fd):
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if fd is not None:
            os.close(fd)


def remove_stale_parts(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary parts that killed writers of `path` left beside it; returns them.

    A part whose writer is alive is locked and stays. Without advisory locks (Windows)
    nothing is removed.
    """
    if fcntl is None:
        return []
    target = Path(path)
    removed = []
    for part in target.parent.glob(f".{glob.escape(target.name)}.*{PART_SUFFIX}"):
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue  # gone already, or not ours to read
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live writer holds it
        else:
            if part.is_dir() and not part.is_symlink():
                shutil.rmtree(part, ignore_errors=True)
            else:
                part.unlink(missing_ok=True)
            removed.append(part)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; it replaces `path` only on success."""
    if not any(m in mode for m in "wx"):
        raise ValueError(f"atomic_open writes whole files; mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        if "b" not in mode:
            kwargs.setdefault("encoding", "utf-8")
        with open(tmp, mode.replace("x", "w"), **kwargs) as f:
            yield f
            f.flush()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def _part_name(target: Path) -> Path:
    """A temporary name beside target no other writer has: .NAME.<64 random bits>.part.

    Named before the part exists, so that an interrupt landing just after the part appears
    cannot leave it behind: the writer's cleanup removes it by that name.
    """
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}{PART_SUFFIX}")


def _ours(exc: BaseException, fd: int | None) -> bool:
    # The one failure after which the part is not ours: creating it found the name taken.
    return fd is not None or not isinstance(exc, FileExistsError)


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and private: never contended


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is flushed (POSIX); Windows has no dir fds.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
