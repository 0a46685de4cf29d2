"""Serving a set's files: only regular files inside the set folder, with byte ranges for video.

A path from a request is joined to the set folder and resolved (symlinks followed); it is
served only when the result is still inside the resolved set folder. So `../`, absolute
paths and symlinks that lead out of the set all end in "not found".
"""

from __future__ import annotations

import re
from pathlib import Path

from lyriscope.studio.errors import StudioRequestError

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".lrc": "text/plain; charset=utf-8",
    ".toml": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".jsonl": "text/plain; charset=utf-8",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def file_in_set(set_root: Path, rel: str) -> Path | None:
    """The regular file `rel` names inside the set folder, or None (outside it, missing, a folder)."""
    if not rel or "\x00" in rel:
        return None
    root = Path(set_root).resolve()
    try:
        path = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def relative_to_set(set_root: Path, path: Path) -> str:
    """`path` as the files route names it: relative to the set folder, with forward slashes."""
    return Path(path).relative_to(Path(set_root).resolve()).as_posix()


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single-range Range header; None to send the whole file.

    Raises StudioRequestError 416 for a range that lies outside the file.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # several ranges or another unit: the whole file is a valid answer
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(size - 1, int(last)) if last else size - 1
    if size == 0 or start >= size or start > end:
        raise StudioRequestError(
            f"range {header!r} is outside the file of {size} bytes", status=416
        )
    return start, end
