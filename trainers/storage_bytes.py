"""Tensor storages of a network pickle: declared sizes checked against the bytes, then loaded.

An NVlabs pickle holds each storage as the bytes of a `torch.save` of it
(torch.storage._load_from_bytes), in one of two layouts:
  - legacy: five pickles (magic number, protocol, system info, the storage's record, its
    keys), then per storage an 8-byte element count and the data;
  - zipfile: data.pkl holding the record and one data/<key> entry per storage.
torch allocates what a record declares before it reads the data, so a few bytes could ask
for gigabytes. The records are read here first, with an unpickler that builds nothing and
knows only storage types; every declared size must fit in the bytes that come with it.
Only then does torch's weights-only loader rebuild the storage.

Example:
    >>> storage = load_storage(data)  # bytes of torch.save(storage)
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any

import torch

from lyriscope.errors import CheckpointError
from lyriscope.torch_load_errors import load_failure
from lyriscope.trainers.pickle_limits import BoundedUnpickler

_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_PICKLES_BEFORE_DATA = 5  # magic number, protocol, system info, record, keys
_COUNT_BYTES = 8  # the legacy layout writes each storage's element count before its data


@dataclass(frozen=True)
class DeclaredStorage:
    """What a storage record asks for: its key and its size in bytes."""

    key: str
    nbytes: int


@dataclass(frozen=True)
class _StorageType:
    """Stands for torch.FloatStorage, torch.UntypedStorage, ... while records are read."""

    name: str
    itemsize: int  # bytes per element


def load_storage(data: Any) -> torch.TypedStorage | torch.UntypedStorage:
    """The storage saved in `data`, after its declared sizes were checked against its bytes."""
    if not isinstance(data, bytes | bytearray):
        raise CheckpointError(f"a tensor storage is a {type(data).__name__}, not bytes")
    data = bytes(data)
    check_declared_sizes(data)
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign bytes
        raise CheckpointError(
            f"a tensor storage is not plain data and was refused ({load_failure(exc)})"
        ) from None
    if not isinstance(storage, torch.TypedStorage | torch.UntypedStorage):
        raise CheckpointError(f"a tensor storage holds a {type(storage).__name__}, not a storage")
    return storage


def check_declared_sizes(data: bytes) -> list[DeclaredStorage]:
    """The storages `data` declares; CheckpointError when one declares more than the bytes hold."""
    if data.startswith(_ZIP_MAGIC):
        return _check_zipfile(data)
    return _check_legacy(data)


def _check_legacy(data: bytes) -> list[DeclaredStorage]:
    stream = io.BytesIO(data)
    declared: list[DeclaredStorage] = []
    try:
        for _ in range(_LEGACY_PICKLES_BEFORE_DATA):
            _RecordReader(stream, declared=declared).load()
    except CheckpointError:
        raise
    except Exception:  # noqa: BLE001 - not this layout after all: torch.load will say what it is
        return declared
    unique = {d.key: d for d in declared}
    needed = sum(d.nbytes for d in unique.values())
    available = max(len(data) - stream.tell() - _COUNT_BYTES * len(unique), 0)
    if needed > available:
        raise CheckpointError(
            f"a tensor storage declares {needed:,} bytes but comes with {available:,}; the "
            f"pickle is damaged or crafted, so it was refused"
        )
    return list(unique.values())


def _check_zipfile(data: bytes) -> list[DeclaredStorage]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return []  # torch.load will say what it is
    with archive:
        for info in archive.infolist():
            # torch writes its archives uncompressed; a stored entry cannot hold more than the file.
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
                raise CheckpointError(
                    f"a tensor storage's entry {info.filename} declares {info.file_size:,} "
                    f"bytes{' compressed' if info.compress_type != zipfile.ZIP_STORED else ''} "
                    f"in {len(data):,}; the pickle is damaged or crafted, so it was refused"
                )
        records = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(records) != 1:
            return []  # not a torch archive: torch.load will say so
        prefix = records[0][: -len("data.pkl")]
        declared: list[DeclaredStorage] = []
        _RecordReader(io.BytesIO(archive.read(records[0])), declared=declared).load()
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        for storage in declared:
            have = sizes.get(f"{prefix}data/{storage.key}")
            if have is None or storage.nbytes > have:
                raise CheckpointError(
                    f"a tensor storage declares {storage.nbytes:,} bytes but comes with "
                    f"{have or 0:,}; the pickle is damaged or crafted, so it was refused"
                )
    return declared


class _RecordReader(BoundedUnpickler):
    """Reads a storage record: storage types become _StorageType, persistent ids are noted."""

    def __init__(self, file: Any, *, declared: list[DeclaredStorage]) -> None:
        super().__init__(file)
        self._declared = declared

    def find_class(self, module: str, name: str) -> Any:
        # torch.FloatStorage, ... (typed) or torch.storage.UntypedStorage, as torch.save names them
        storage_type = getattr(torch, name, None) if module in ("torch", "torch.storage") else None
        if not (name.endswith("Storage") and isinstance(storage_type, type)):
            raise CheckpointError(
                f"a tensor storage is not plain data and was refused (it asks for {module}.{name})"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # typed storages are deprecated
            dtype = getattr(storage_type, "dtype", torch.uint8)  # UntypedStorage counts bytes
        return _StorageType(name, dtype.itemsize if isinstance(dtype, torch.dtype) else 1)

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', type, key, location, numel[, view metadata]), as torch.save writes it.
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[4], int)
            and pid[4] >= 0
        ):
            raise CheckpointError("a tensor storage has a record torch.save does not write")
        self._declared.append(DeclaredStorage(key=str(pid[2]), nbytes=pid[4] * pid[1].itemsize))
        return None
