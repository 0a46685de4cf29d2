"""NVlabs network pickles read as data: a restricted unpickler that rebuilds tensors and never runs code.

An NVlabs stylegan2-ada-pytorch snapshot is one `pickle.dump` of a dict (`G`, `D`, `G_ema`,
`augment_pipe`, `training_set_kwargs`). Each network reduces to
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where meta carries the source
of its module (which NVlabs' loader executes) and the instance `__dict__`. Here every
global the pickle names is looked up in a fixed table of stand-ins: a network becomes a
`PersistentObject` record, tensors are rebuilt from their storage bytes with
`torch.load(weights_only=True)` once their declared sizes fit their bytes, and anything
else (os.system, eval, ...) is refused before it is called. The record's module tree gives
the state dict and `_init_kwargs` the constructor kwargs of our Generator. The work stays
proportional to the file (lyriscope.trainers.pickle_limits): shared references are counted,
not expanded, and a tensor must fit in the storage it is built on.

TensorFlow-era pickles (dnnlib.tflib.network.Network) load through the same unpickler
into `TFNetwork` records; lyriscope.trainers.tf_pickle converts them.

Example:
    >>> imported = import_generator("network-snapshot-001200.pkl")
    >>> imported.G.img_resolution, imported.kimg
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lyriscope.errors import CheckpointError
from lyriscope.trainers.checkpoint import build_generator, load_state_checked
from lyriscope.trainers.networks import Generator
from lyriscope.trainers.pickle_limits import (
    KEYED_GLOBALS,
    BoundedUnpickler,
    WorkBudget,
    brief,
    check_members,
    checked_dict,
    module_budget,
    plain_settings,
    settings_budget,
)
from lyriscope.trainers.storage_bytes import load_storage
from lyriscope.trainers.tf_pickle import TFNetwork, generator_from_tf

NETWORK_NAMES = ("G_ema", "G")  # which generator of a snapshot can be imported
_SNAPSHOT_KIMG = re.compile(r"network-snapshot-(\d+)\.pkl$")
_RUN_TIME_OPTIONS = ("fused_modconv_default",)  # choose a code path; no weights depend on them


@dataclass(frozen=True)
class PersistentObject:
    """One network object of an NVlabs pickle, as data: its class name and instance __dict__."""

    class_name: str
    state: dict[str, Any]  # _parameters, _buffers, _modules, _init_args, _init_kwargs, ...
    version: int = 6  # torch_utils.persistence format version


class _EasyDict(dict):
    """dnnlib.util.EasyDict read as a plain dict (it pickles as a dict subclass)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(checked_dict(*args))  # keys checked before they are hashed


@dataclass(frozen=True)
class ImportedGenerator:
    """A generator imported from a published pickle and what the pickle said about it."""

    G: torch.nn.Module
    kimg: float  # training progress from the snapshot's file name; 0 when unknown
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able: source, network, training set


# -- the stand-ins that the unpickler hands out instead of the pickle's globals ----------------


def _record_persistent(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointError("a persistent network record is not a dict of type 'class'")
    class_name = meta.get("class_name")
    if not isinstance(class_name, str):
        raise CheckpointError(f"a network's class name is {brief(class_name)}, not a name")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"network {class_name!r} has no instance state")
    return PersistentObject(class_name=class_name, state=state, version=int(meta.get("version", 0)))


def _rebuild_tensor(
    storage: Any,
    storage_offset: int,
    size: Any,
    stride: Any,
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(storage, torch.TypedStorage | torch.UntypedStorage):
        raise CheckpointError(f"a tensor is built on a {type(storage).__name__}, not a storage")
    _check_fits(storage, int(storage_offset), tuple(size))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # TypedStorage is deprecated; it is what pickles hold
        return torch._utils._rebuild_tensor_v2(
            storage, int(storage_offset), tuple(size), tuple(stride), False, OrderedDict()
        )


def _check_fits(storage: Any, offset: int, size: tuple[Any, ...]) -> None:
    # A network's tensors never overlap themselves, so one fits in what its storage holds;
    # a view with zero strides could otherwise stretch one number into gigabytes of weights.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage is deprecated
        itemsize = storage.dtype.itemsize if isinstance(storage, torch.TypedStorage) else 1
        held = storage.nbytes() // itemsize
    if not all(isinstance(n, int) and n >= 0 for n in size) or offset < 0:
        raise CheckpointError(f"a tensor has the shape {list(size)} at offset {offset}")
    if math.prod(size) > held - offset:
        raise CheckpointError(
            f"a tensor of shape {list(size)} needs {math.prod(size):,} values but its storage "
            f"holds {max(held - offset, 0):,} from offset {offset}; the pickle is damaged or "
            f"crafted, so it was refused"
        )


def _rebuild_parameter(
    data: Any, requires_grad: bool = False, backward_hooks: Any = None, state: Any = None
) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise CheckpointError(f"a parameter holds a {type(data).__name__}, not a tensor")
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
    if func not in (_rebuild_tensor, _rebuild_parameter):
        raise CheckpointError("a tensor subclass is rebuilt by an unexpected function")
    return func(*args)


def _numpy_scalar(dtype: Any, data: Any = None) -> int | float | bool | complex:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not isinstance(data, bytes):
        raise CheckpointError(f"a numpy scalar of type {brief(dtype)} is not a plain number")
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


def _numpy_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise CheckpointError(f"an array of class {brief(cls)} is not a plain numpy array")
    return np.empty(0, dtype=np.uint8)  # filled in by ndarray.__setstate__ (pickle BUILD)


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise CheckpointError(f"an array of type {brief(dtype)} is not plain numbers")
    return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape, order=order).copy()


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    # Pickles name a dtype by its code ('f4', 'i8'); numpy's own error for anything else
    # quotes it, which for shared structure takes as long as expanding it.
    if not isinstance(spec, str) or len(spec) > 16:
        raise CheckpointError(f"a numpy dtype is {brief(spec)}, not a type code such as 'f4'")
    return np.dtype(spec, align=bool(align), copy=bool(copy))


def _codecs_encode(text: Any, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles write bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("a bytes value is encoded in an unexpected way")
    return text.encode("latin1")


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # Protocol 0/1 pickles rebuild objects this way; only our own records may be built.
    if cls is TFNetwork and base is object:
        return TFNetwork()
    if cls is _EasyDict and base in (dict, checked_dict):
        return _EasyDict(state or {})
    raise CheckpointError(f"the pickle rebuilds an object of {brief(cls)}, which is not a network")


_TENSOR_TYPE = object()  # stands for torch.Tensor / Parameter as _rebuild_from_type's new_type


def _allowed_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _record_persistent,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        ("torch._tensor", "Tensor"): _TENSOR_TYPE,
        ("torch", "Tensor"): _TENSOR_TYPE,
        ("torch.nn.parameter", "Parameter"): _TENSOR_TYPE,
        ("torch.storage", "_load_from_bytes"): load_storage,
        ("_codecs", "encode"): _codecs_encode,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
        ("builtins", "object"): object,
        **KEYED_GLOBALS,  # set, frozenset, dict, OrderedDict: keys checked before hashing
        ("numpy", "dtype"): _numpy_dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("dnnlib", "EasyDict"): _EasyDict,
        ("dnnlib.tflib.network", "Network"): TFNetwork,
    }
    for numpy_core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x spell it differently
        table[(f"{numpy_core}.multiarray", "scalar")] = _numpy_scalar
        table[(f"{numpy_core}.multiarray", "_reconstruct")] = _numpy_reconstruct
        table[(f"{numpy_core}.numeric", "_frombuffer")] = _numpy_frombuffer
    for name in dir(torch):
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype) or (name.endswith("Storage") and isinstance(value, type)):
            table[("torch", name)] = value
    return table


class NetworkUnpickler(BoundedUnpickler):
    """An unpickler that only knows the names a StyleGAN2 network pickle uses."""

    def __init__(self, file: Any, *, source: str | Path) -> None:
        super().__init__(file)
        self._source = source
        self._globals = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self._source}: refused to load: the pickle asks for {module}.{name}, which is "
                f"not part of a StyleGAN2 network pickle (pickles can run code, so lyriscope "
                f"accepts only the names NVlabs networks use)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(
            f"{self._source}: refused to load: the pickle refers to external objects "
            f"({brief(pid)}); a network pickle holds everything inline"
        )


def load_network_pickle(path: str | Path) -> Any:
    """Unpickle `path` with `NetworkUnpickler`: networks become records, tensors are rebuilt."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return NetworkUnpickler(f, source=path).load()
    except CheckpointError as exc:
        message = str(exc)
        raise CheckpointError(message if str(path) in message else f"{path}: {message}") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file; give the path of a network pickle") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder; give the path of a network pickle") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file is one clear error
        raise CheckpointError(
            f"{path}: not a readable network pickle ({type(exc).__name__}: {_first_line(exc)}); "
            f"is it a complete NVlabs network-snapshot .pkl?"
        ) from None


# -- from records to our Generator -------------------------------------------------------------


def module_state_dict(
    obj: PersistentObject, *, prefix: str = "", budget: WorkBudget | None = None
) -> dict[str, torch.Tensor]:
    """The state dict of a recorded module tree: own parameters, own buffers, then children.

    The walk counts modules (a module reached twice counts twice) within `budget`
    (default: lyriscope.trainers.pickle_limits.module_budget()).
    """
    budget = budget if budget is not None else module_budget()
    budget.visit(prefix.count("."))
    state = obj.state
    tensors: dict[str, torch.Tensor] = {}
    non_persistent = set(check_members(state.get("_non_persistent_buffers_set") or ()))
    for group in ("_parameters", "_buffers"):
        for name, tensor in _entries(state, group, prefix):
            if tensor is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(tensor, torch.Tensor):
                raise CheckpointError(f"{prefix}{name} is a {type(tensor).__name__}, not a tensor")
            tensors[prefix + name] = tensor
    for name, child in _entries(state, "_modules", prefix):
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise CheckpointError(
                f"module {prefix}{name} is a {type(child).__name__}, not a network"
            )
        tensors.update(module_state_dict(child, prefix=f"{prefix}{name}.", budget=budget))
    return tensors


def _entries(state: dict[str, Any], group: str, prefix: str) -> list[tuple[str, Any]]:
    entries = state.get(group) or {}
    if not isinstance(entries, Mapping):
        raise CheckpointError(
            f"{group} of module {prefix or '(top)'} is a {type(entries).__name__}, not a dict"
        )
    return [(str(name), value) for name, value in entries.items()]


def constructor_kwargs(obj: PersistentObject, signature: inspect.Signature) -> dict[str, Any]:
    """The recorded `_init_args` and `_init_kwargs` of a network as one JSON-able kwargs dict."""
    budget = settings_budget(f"the settings of {obj.class_name}")
    args = plain_settings(obj.state.get("_init_args") or [], budget=budget)
    kwargs = plain_settings(obj.state.get("_init_kwargs") or {}, budget=budget)
    names = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(args) > len(names):
        raise CheckpointError(
            f"{obj.class_name} was built with {len(args)} positional "
            f"arguments; ours takes at most {len(names)}"
        )
    kwargs.update(zip(names, args, strict=False))
    return kwargs


def fold_synthesis_kwargs(kwargs: dict[str, Any], signature: inspect.Signature) -> dict[str, Any]:
    """Top-level options that our Generator lacks moved into synthesis_kwargs.

    The StyleGAN3 repository's StyleGAN2 takes its synthesis options as **kwargs
    (Generator(..., channel_base=..., fused_modconv_default=...)); stylegan2-ada-pytorch nests
    them in synthesis_kwargs. fused_modconv_default only picks a code path, so it is dropped.
    """
    known = set(signature.parameters)
    loose = {k: v for k, v in kwargs.items() if k not in known}
    if not loose:
        return kwargs
    folded = {k: v for k, v in kwargs.items() if k in known}
    synthesis = dict(folded.get("synthesis_kwargs") or {})
    synthesis.update({k: v for k, v in loose.items() if k not in _RUN_TIME_OPTIONS})
    folded["synthesis_kwargs"] = synthesis
    return folded


def generator_from_record(obj: PersistentObject, *, source: str | Path) -> torch.nn.Module:
    """Our Generator built from a recorded NVlabs Generator's kwargs and loaded strictly with its tensors."""
    if obj.class_name != "Generator":
        raise CheckpointError(
            f"{source}: the network is a {obj.class_name!r}, not a StyleGAN2 Generator"
        )
    tensors = module_state_dict(obj)
    if any(name.startswith("synthesis.input.") for name in tensors):
        raise CheckpointError(
            f"{source}: this is a StyleGAN3 (alias-free) generator; lyriscope "
            f"runs StyleGAN2 generators (stylegan2-ada-pytorch, or stylegan3's "
            f"--cfg=stylegan2)"
        )
    signature = inspect.signature(Generator)
    kwargs = fold_synthesis_kwargs(constructor_kwargs(obj, signature), signature)
    # The settings must make exactly the recorded tensors before the generator is allocated.
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    G = build_generator(kwargs, source=source, tensor_shapes=shapes)
    load_state_checked(G, tensors, source=source)
    return G.eval().requires_grad_(False)


def snapshot_kimg(path: str | Path) -> float:
    """Training progress in kimg from an NVlabs snapshot name (network-snapshot-001200.pkl -> 1200)."""
    match = _SNAPSHOT_KIMG.search(Path(path).name)
    return float(match.group(1)) if match else 0.0


def import_generator(path: str | Path, *, which: str = "G_ema") -> ImportedGenerator:
    """Our Generator from an NVlabs pickle (PyTorch or TensorFlow era), without running its code."""
    if which not in NETWORK_NAMES:
        raise CheckpointError(f"--which {which!r}: choose one of {', '.join(NETWORK_NAMES)}")
    data = load_network_pickle(path)
    try:
        return _generator_from_pickle_data(data, path=Path(path), which=which)
    except CheckpointError as exc:
        message = str(exc)
        raise CheckpointError(message if str(path) in message else f"{path}: {message}") from None
    except RecursionError:  # only a crafted file nests its settings in a loop
        raise CheckpointError(f"{path}: the network settings refer to themselves") from None


def _generator_from_pickle_data(data: Any, *, path: Path, which: str) -> ImportedGenerator:
    info: dict[str, Any] = {"source": path.name, "network": which}
    if _is_tf_pickle(data):
        networks = data if isinstance(data, tuple) else (None, None, data)
        tf_net = networks[2] if which == "G_ema" else networks[0]
        if tf_net is None:
            raise CheckpointError(
                f"{path}: this TensorFlow pickle holds only Gs; use --which G_ema"
            )
        info["format"] = "tensorflow"
        return ImportedGenerator(
            G=generator_from_tf(tf_net, source=path), kimg=snapshot_kimg(path), info=info
        )
    if not isinstance(data, dict) or which not in data:
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path}: no {which!r} network in the pickle (found {found}); "
            f"is it an NVlabs network snapshot?"
        )
    record = data[which]
    if not isinstance(record, PersistentObject):
        raise CheckpointError(f"{path}: {which} is a {type(record).__name__}, not a network")
    info["format"] = "pytorch"
    training_set = data.get("training_set_kwargs")
    if isinstance(training_set, Mapping):
        # Informational: settings that are not plain data are named, never fatal.
        info["training_set_kwargs"] = plain_settings(
            training_set, budget=settings_budget("the training set settings"), lenient=True
        )
    return ImportedGenerator(
        G=generator_from_record(record, source=path), kimg=snapshot_kimg(path), info=info
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_tf_pickle(data: Any) -> bool:
    if isinstance(data, TFNetwork):
        return True
    return (
        isinstance(data, tuple)
        and len(data) == 3
        and all(isinstance(net, TFNetwork) for net in data)
    )
