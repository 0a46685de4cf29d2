"""Hostile NVlabs pickles, each a few hundred bytes to a few kilobytes, built the way an attacker would.

They use only the names a real network pickle uses (so the restricted unpickler lets them
through) and the pickle memo to share references: a value referenced twice per level is
2**depth values once walked as a tree, but a few bytes per level in the file.
The pickles are written with the NVlabs-layout pickler of the importer's tests.
"""

from __future__ import annotations

import io
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from test_import import _Call, _EasyDict, _Persistent, dump

from lyriscope.trainers.networks import Generator


def shared_lists(depth: int) -> list:
    """A list of two references to a list of two references ... `depth` levels down."""
    value: list = []
    for _ in range(depth):
        value = [value, value]
    return value


def shared_tuples(depth: int) -> tuple:
    """As shared_lists, with tuples: hashable, and hashing one walks the whole tree."""
    value: tuple = ()
    for _ in range(depth):
        value = (value, value)
    return value


class PairsDict:
    """Pickles as a dict of `pairs` (EasyDict, then SETITEMS) without building one here, so the
    keys are never hashed on the writing side."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs

    def __reduce__(self):
        return (_EasyDict, (), None, None, iter(self.pairs))


def record(
    *,
    tensors: Mapping[str, torch.Tensor] | None = None,
    modules: Mapping[str, _Persistent] | None = None,
    init_kwargs: Any = None,
    class_name: str = "Generator",
) -> _Persistent:
    """An NVlabs network record holding `tensors` (by dotted names) and child `modules`."""
    own = {k: v for k, v in (tensors or {}).items() if "." not in k}
    children: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in (tensors or {}).items():
        if "." in name:
            head, rest = name.split(".", 1)
            children.setdefault(head, {})[rest] = tensor
    sub = {name: record(tensors=t, class_name="Module") for name, t in children.items()}
    state = {
        "_parameters": OrderedDict(own),
        "_buffers": OrderedDict(),
        "_modules": OrderedDict({**sub, **(modules or {})}),
        "_init_args": (),
        "_init_kwargs": init_kwargs if init_kwargs is not None else _EasyDict(),
    }
    meta = dict(type="class", version=6, module_src="", class_name=class_name, state=state)
    return _Persistent(meta)


def snapshot(G_ema: _Persistent, *, training_set_kwargs: Any = None) -> dict:
    """An NVlabs network-snapshot dict around one generator record."""
    return {
        "G": None,
        "D": None,
        "G_ema": G_ema,
        "augment_pipe": None,
        "training_set_kwargs": training_set_kwargs or _EasyDict(resolution=32),
    }


def shared_module_tree(depth: int) -> _Persistent:
    """A generator whose every module holds the same child twice, `depth` levels down."""
    child = record(tensors={"weight": torch.zeros(1)}, class_name="Module")
    for _ in range(depth):
        child = record(modules={"a": child, "b": child}, class_name="Module")
    return record(modules={"mapping": child})


def stretched_generator(config: Mapping[str, Any]) -> _Persistent:
    """A Generator record of `config` whose every tensor is one float seen through zero strides.

    Each weight has the shape the architecture needs, so a reader that trusts the shapes
    allocates the whole network from a file of a few kilobytes.
    """
    with torch.device("meta"):
        shapes = {name: t.shape for name, t in Generator(**config).state_dict().items()}
    one = torch.zeros(())  # 0-d: expands to any shape, scalars included
    return record(
        tensors={name: one.expand(shape) for name, shape in shapes.items()},
        init_kwargs=_EasyDict(config),
    )


def storage_declaring(elements: int) -> _Call:
    """A float32 storage, as NVlabs pickles hold them (_load_from_bytes of a legacy torch.save),
    whose record declares `elements` while 4 follow: torch allocates the declared size first."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage is what NVlabs pickles hold
        torch.save(torch.zeros(4).storage(), buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    held = b"K\x04N"  # the record's element count, BININT1 4, before its view metadata None
    assert data.count(held) == 1
    declared = b"J" + elements.to_bytes(4, "little") + b"N"
    return _Call(torch.storage._load_from_bytes, data.replace(held, declared))


def write(data: Any, path: Path) -> Path:
    """`data` as an NVlabs-layout pickle at `path` (protocol 4, as torch 2 writes)."""
    return dump(data, path, protocol=4)
