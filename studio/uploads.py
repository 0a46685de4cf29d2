"""Files the page uploads (a song, an LRC), kept in a private folder until a set is made of them.

The body is streamed to disk and counted; a declared length over the limit is refused before
a byte is read (413), and a body that turns out longer than declared is cut and refused too.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lyriscope.commands.new import AUDIO_SUFFIXES
from lyriscope.studio.errors import BadRequest, NotFound, TooLarge

LYRICS_SUFFIXES = (".lrc",)
CHUNK_BYTES = 256 * 1024
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,120}")
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class Upload:
    id: str
    name: str  # the file name the set will keep (create_set copies it under this name)
    path: Path
    size: int  # bytes

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "size": self.size}


class Uploads:
    """A temporary folder of uploaded files, removed by close()."""

    def __init__(self, *, max_audio_bytes: int, max_lyrics_bytes: int) -> None:
        self.limits = {"audio": max_audio_bytes, "lyrics": max_lyrics_bytes}
        self.folder = Path(tempfile.mkdtemp(prefix="lyriscope-studio-uploads-"))
        self._lock = threading.Lock()
        self._files: dict[str, Upload] = {}

    def limit_for(self, name: str) -> int:
        """The most bytes a file of this name may have; BadRequest for names not taken."""
        return self.limits[_kind_of(_checked_name(name))]

    def receive(self, name: str, body: BinaryIO, length: int) -> Upload:
        """Store `length` bytes of `body` as an upload called `name`."""
        name = _checked_name(name)
        limit = self.limits[_kind_of(name)]
        if length > limit:
            raise TooLarge(f"{name}: {length} bytes is more than the {limit} a file may have")
        upload_id = secrets.token_urlsafe(18)
        folder = self.folder / upload_id
        folder.mkdir()
        path = folder / name
        received = 0
        with open(path, "wb") as out:
            while received < length:
                chunk = body.read(min(CHUNK_BYTES, length - received))
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
        if received != length:
            shutil.rmtree(folder, ignore_errors=True)
            raise BadRequest(f"{name}: the upload ended after {received} of {length} bytes")
        upload = Upload(id=upload_id, name=name, path=path, size=received)
        with self._lock:
            self._files[upload_id] = upload
        return upload

    def get(self, upload_id: str) -> Upload:
        with self._lock:
            upload = self._files.get(upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
        if upload is None:
            raise NotFound(f"upload {upload_id!r:.40} is not here (the studio was restarted?)")
        return upload

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _checked_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    if not _SAFE_NAME.fullmatch(base) or base != name.strip():
        raise BadRequest(
            f"file name {name!r:.60}: expected a plain name of letters, digits, spaces and ._-()"
        )
    _kind_of(base)
    return base


def _kind_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in LYRICS_SUFFIXES:
        return "lyrics"
    raise BadRequest(
        f"{name}: expected a song ({', '.join(AUDIO_SUFFIXES)}) or lyrics ({', '.join(LYRICS_SUFFIXES)})"
    )
