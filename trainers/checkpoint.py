"""Our checkpoint formats: a generator as .safetensors + JSON metadata, and training state for resume.

The inference file (`.safetensors`) holds G_ema's state dict (mapping.w_avg included) and,
in the header's string metadata, the constructor kwargs ("config", JSON), num_ws, the
training kimg, a dataset fingerprint and free-form "extra" JSON. Reading the config needs
only the header, so a set can be checked without loading weights. The header also gives
every tensor's dtype, shape and byte range: `check_model_file` holds the config to limits
and compares the shapes it makes (lyriscope.trainers.architecture_check, nothing allocated)
with the header's, and `load_model` does so before it builds anything, so a file's
metadata cannot make it allocate more than the file holds.

The training state (G, D, G_ema, optimizers, augmentation, RNG states, counters) is a
nested dict written with torch.save and read back with `torch.load(weights_only=True)`,
so a checkpoint is data and never code.

Example:
    >>> save_model("models/line-01.safetensors", G, kimg=1200.0)
    >>> read_model_config("models/line-01.safetensors")["img_resolution"]
    256
    >>> G = load_model("models/line-01.safetensors", device="cuda")
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lyriscope.atomic import atomic_path
from lyriscope.errors import CheckpointError
from lyriscope.torch_load_errors import load_failure
from lyriscope.trainers.architecture_check import (
    REQUIRED_KEYS,
    checked_kwargs,
    compare_shapes,
    meta_architecture,
)
from lyriscope.trainers.networks import Generator

FORMAT = "lyriscope.generator"
FORMAT_VERSION = 1
# Keys of read_model_config() that describe the file rather than construct the network.
INFO_KEYS = ("num_ws", "kimg", "dataset_fingerprint", "extra")
_MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit
_MAX_DIMS = 8  # a generator's tensors have at most 4
# Bytes per element of the safetensors dtypes.
_DTYPE_BYTES = MappingProxyType(
    {
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
        "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
    }
)  # fmt: skip
_NDARRAY = "__ndarray__"  # marks a numpy array encoded as bytes in a training state


def save_model(
    path: str | os.PathLike[str],
    G: torch.nn.Module,
    *,
    kimg: float = 0.0,
    dataset_fingerprint: str | None = None,
    extra: dict | None = None,
) -> None:
    """Write G's weights and constructor kwargs to `path` (.safetensors), atomically."""
    init_kwargs = getattr(G, "init_kwargs", None)
    if not isinstance(init_kwargs, Mapping):
        raise CheckpointError(
            f"cannot save {type(G).__name__} to {path}: it has no init_kwargs "
            f"(the constructor kwargs that rebuild it)"
        )
    try:
        config_json = json.dumps(dict(init_kwargs), sort_keys=True)
        extra_json = json.dumps(extra or {}, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"cannot save {path}: its config and extra must be JSON data ({exc})"
        ) from None
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": config_json,
        "num_ws": str(int(G.num_ws)),
        "kimg": repr(float(kimg)),
        "extra": extra_json,
    }
    if dataset_fingerprint is not None:
        metadata["dataset_fingerprint"] = str(dataset_fingerprint)
    # Own copies: safetensors refuses tensors that share memory or are not contiguous.
    tensors = {
        name: t.detach().to("cpu").contiguous().clone() for name, t in G.state_dict().items()
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The constructor kwargs and file info of a model, from its header only (no tensors read).

    Holds the Generator kwargs (z_dim, c_dim, w_dim, img_resolution, img_channels,
    mapping_kwargs, synthesis_kwargs, ...) plus num_ws, kimg, dataset_fingerprint (or None)
    and extra (a dict).
    """
    header = _read_header(Path(path))
    return _config_from_metadata(Path(path), header.get("__metadata__") or {})


def build_generator(
    config: Mapping[str, Any],
    *,
    source: str | os.PathLike[str] | None = None,
    tensor_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> torch.nn.Module:
    """A Generator with fresh weights from constructor kwargs (read_model_config's dict works too).

    The config is held to lyriscope.trainers.architecture_check's limits first; with
    `tensor_shapes` (the shapes a file holds) the architecture must have exactly those
    before anything is allocated.
    """
    where = f"{source}: " if source is not None else ""
    kwargs = checked_kwargs(config, where=where, info_keys=INFO_KEYS)
    architecture = meta_architecture(kwargs, where=where)
    if tensor_shapes is not None:
        compare_shapes(architecture.shapes, tensor_shapes, source=source or "the model")
    return Generator(**kwargs)


def load_state_checked(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: str | os.PathLike[str]
) -> None:
    """Load `state` into `module` strictly; a missing, extra or misshapen tensor is named."""
    compare_shapes(
        {name: tuple(t.shape) for name, t in module.state_dict().items()},
        {name: tuple(t.shape) for name, t in state.items()},
        source=source,
    )
    module.load_state_dict(dict(state), strict=True)


def load_model(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """The Generator saved in `path`, on `device`, in eval mode with requires_grad False."""
    path = Path(path)
    header = _read_header(path)  # checks the header and the file length
    config = _config_from_metadata(path, header.get("__metadata__") or {})
    G = build_generator(config, source=path, tensor_shapes=_header_shapes(path, header))
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{path}: cannot read the tensors ({exc})") from None
    load_state_checked(G, state, source=path)
    return G.to(device).eval().requires_grad_(False)


def check_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """read_model_config, after the config was checked against the header's tensors.

    Reads the header only and allocates no weights: the config must be within limits and
    make exactly the tensors (names and shapes) the header lists, each of a byte size that
    fits its dtype and shape. What `lyriscope check` runs on every model of a set.
    """
    path = Path(path)
    header = _read_header(path)
    config = _config_from_metadata(path, header.get("__metadata__") or {})
    kwargs = checked_kwargs(config, where=f"{path}: ", info_keys=INFO_KEYS)
    architecture = meta_architecture(kwargs, where=f"{path}: ")
    compare_shapes(architecture.shapes, _header_shapes(path, header), source=path)
    if config["num_ws"] != architecture.num_ws:
        raise CheckpointError(
            f"{path}: the metadata says num_ws {config['num_ws']}, but the config makes "
            f"{architecture.num_ws}; the file does not match its config"
        )
    return config


def save_training_state(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write a nested dict of tensors, numbers, strings, lists/tuples, numpy arrays and RNG states atomically."""
    encoded = _encode(state, where="state")
    with atomic_path(path) as tmp:
        torch.save(encoded, tmp)


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read what save_training_state wrote (weights-only: a file that holds code is refused)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such training checkpoint")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path}: not a readable training checkpoint ({load_failure(exc)})"
        ) from None
    if not isinstance(raw, dict):
        raise CheckpointError(
            f"{path}: a training checkpoint holds a dict, this one a {type(raw).__name__}"
        )
    return _decode(raw)


# -- helpers -----------------------------------------------------------------------------------


def _read_header(path: Path) -> dict[str, Any]:
    # safetensors: u64 little-endian header length, a JSON header, then the tensor bytes.
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    not_ours = (
        f"{path}: not a safetensors model file; lyriscope models are .safetensors "
        f"(convert an NVlabs .pkl with `lyriscope import`)"
    )
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise CheckpointError(not_ours)
        length = int.from_bytes(prefix, "little")
        if not 2 <= length <= _MAX_HEADER_BYTES:
            raise CheckpointError(not_ours)
        raw = f.read(length)
    if len(raw) < length:
        raise CheckpointError(
            f"{path}: the file is truncated (its header is cut off); save or copy it again"
        )
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # deep nesting: not ours
        raise CheckpointError(not_ours) from None
    if not isinstance(header, dict):
        raise CheckpointError(not_ours)
    data_end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            raise CheckpointError(f"{path}: tensor {name} has no data_offsets in the header")
        data_end = max(data_end, int(offsets[1]))
    if 8 + length + data_end > size:
        raise CheckpointError(
            f"{path}: the file is truncated ({size} bytes, the header "
            f"describes {8 + length + data_end}); save or copy it again"
        )
    return header


def _header_shapes(path: Path, header: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape from the header, once its dtype, shape and byte range agree."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = entry.get("dtype"), entry.get("shape")
        begin, end = entry["data_offsets"]  # present: _read_header checked
        if not (
            dtype in _DTYPE_BYTES
            and isinstance(shape, list)
            and len(shape) <= _MAX_DIMS
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
            and isinstance(begin, int)
            and isinstance(end, int)
            and 0 <= begin <= end
            and end - begin == math.prod(shape) * _DTYPE_BYTES[dtype]
        ):
            raise CheckpointError(
                f"{path}: the header's entry for tensor {name} does not add up (dtype, shape "
                f"and byte range disagree); the file is damaged or was not written by "
                f"safetensors"
            )
        shapes[name] = tuple(shape)
    return shapes


def _config_from_metadata(path: Path, metadata: Mapping[str, str]) -> dict[str, Any]:
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a safetensors file, but not a lyriscope model (no "
            f"{FORMAT!r} metadata); save models with save_model or "
            f"`lyriscope import`"
        )
    if int(metadata.get("format_version", "0")) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer lyriscope (format version "
            f"{metadata['format_version']}); upgrade lyriscope to read it"
        )
    try:
        config = json.loads(metadata["config"])
        config["num_ws"] = int(metadata["num_ws"])
        config["kimg"] = float(metadata.get("kimg", "0"))
        config["extra"] = json.loads(metadata.get("extra", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: the model metadata is damaged ({type(exc).__name__}: {exc})"
        ) from None
    config["dataset_fingerprint"] = metadata.get("dataset_fingerprint")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise CheckpointError(f"{path}: the model config lacks {', '.join(missing)}")
    return config


def _encode(value: Any, *, where: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise CheckpointError(f"{where}: a numpy array of objects cannot be saved as data")
        data = (
            torch.frombuffer(bytearray(value.tobytes()), dtype=torch.uint8)
            if value.size
            else torch.zeros(0, dtype=torch.uint8)
        )
        return {_NDARRAY: data, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str | bytes | torch.dtype):
        return value
    if isinstance(value, Mapping):
        return {k: _encode(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_encode(v, where=f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, list):
        return [_encode(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    raise CheckpointError(
        f"{where}: {type(value).__name__} objects cannot be saved in a "
        f"training state; save its state_dict() or tensors, numbers, strings, "
        f"lists, dicts and numpy arrays"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if _NDARRAY in value:
            raw = value[_NDARRAY].numpy().tobytes()
            return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_decode(v) for v in value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
