"""Bounds that keep reading a hostile network pickle proportional to the file, in time and memory.

A pickle is a program for a small stack machine, and its memo lets a few hundred bytes
describe a list holding two references to a list holding two references ... forty levels
deep: 2**40 values once walked as a tree. The same trick in a tuple used as a dict key makes
hashing take as long. So the readers of lyriscope.trainers.nvlabs_pickle and tf_pickle
  - unpickle with `BoundedUnpickler`, which takes only names and numbers as dict keys and
    set members (hashing them costs one step each; network pickles use nothing else),
  - convert settings with `plain_settings` and walk module trees under a `WorkBudget`,
    which counts every value visited (a shared one each time it is reached) and refuses
    past a limit instead of expanding the sharing.
Storages are checked against the bytes they come with in lyriscope.trainers.storage_bytes.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from lyriscope.errors import CheckpointError

MAX_SETTINGS_VALUES = 100_000  # values in one network's settings (a real one has ~100)
MAX_SETTINGS_DEPTH = 64  # nesting of settings (a real one nests 3 deep)
MAX_MODULES = 10_000  # modules in one network's tree (a 1024² StyleGAN2 G has ~150)
MAX_MODULE_DEPTH = 32  # nesting of modules (StyleGAN2: G.synthesis.b1024.conv0.affine)
_SCALARS = (str, bytes, int, float, bool, type(None))


class WorkBudget:
    """Counts the values a walk visits and refuses past `limit` values or `max_depth` levels.

    A shared value is counted each time the walk reaches it, so the count is the size the
    data would have as a tree: what converting it would cost.
    """

    def __init__(self, *, what: str, limit: int, max_depth: int, unit: str = "values") -> None:
        self.what = what  # for the message: "the network settings", "the network", ...
        self.unit = unit  # what is counted, plural: "values", "modules"
        self.limit = limit
        self.max_depth = max_depth
        self.used = 0

    def visit(self, depth: int) -> None:
        """Count one value `depth` levels down; CheckpointError past the limits."""
        self.used += 1
        if self.used > self.limit:
            raise CheckpointError(
                f"there are more than {self.limit:,} {self.unit} in {self.what} once shared "
                f"references are followed; a network pickle has far fewer, so this one was "
                f"refused"
            )
        if depth > self.max_depth:
            raise CheckpointError(
                f"the {self.unit} in {self.what} nest more than {self.max_depth} levels deep "
                f"(or contain themselves); a network pickle nests a few levels, so this one "
                f"was refused"
            )


def settings_budget(what: str = "the network's settings") -> WorkBudget:
    """A budget for converting one network's settings (kwargs, training set options)."""
    return WorkBudget(what=what, limit=MAX_SETTINGS_VALUES, max_depth=MAX_SETTINGS_DEPTH)


def module_budget(what: str = "the network") -> WorkBudget:
    """A budget for walking one network's modules."""
    return WorkBudget(what=what, limit=MAX_MODULES, max_depth=MAX_MODULE_DEPTH, unit="modules")


def plain_settings(value: Any, *, budget: WorkBudget, lenient: bool = False, depth: int = 0) -> Any:
    """`value` with mappings, lists and tuples as JSON-able dicts and lists, within `budget`.

    A value that is not plain data is a CheckpointError, or with lenient=True its type
    name in angle brackets (for informational settings that are never worth failing on).
    """
    budget.visit(depth)
    if isinstance(value, Mapping):
        return {
            str(k): plain_settings(v, budget=budget, lenient=lenient, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [plain_settings(v, budget=budget, lenient=lenient, depth=depth + 1) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if lenient:
        return f"<{type(value).__name__}>"
    raise CheckpointError(f"a network setting holds a {type(value).__name__}, not plain data")


def brief(value: Any) -> str:
    """A value from a hostile file, for a message: a short repr of a name or number, else its
    type (the repr of shared structure can take as long as expanding it)."""
    if isinstance(value, _SCALARS):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__}"


def check_key(key: Any) -> None:
    """Refuse a dict key or set member whose hashing could take more than one step per item."""
    if isinstance(key, _SCALARS):
        return
    if type(key) is tuple and all(isinstance(item, _SCALARS) for item in key):
        return
    raise CheckpointError(
        f"the pickle uses a {type(key).__name__} as a dictionary key or set member; "
        f"network pickles key their data by names and numbers"
    )


def check_members(items: Iterable[Any]) -> list[Any]:
    """`items` as a list after check_key on each: the members of a set about to be built."""
    members = list(items)
    for member in members:
        check_key(member)
    return members


def checked_set(items: Iterable[Any] = ()) -> set[Any]:
    """builtins.set as a pickle may call it, members checked."""
    return set(check_members(items))


def checked_frozenset(items: Iterable[Any] = ()) -> frozenset[Any]:
    """builtins.frozenset as a pickle may call it, members checked."""
    return frozenset(check_members(items))


def checked_dict(*args: Any) -> dict[Any, Any]:
    """builtins.dict as a pickle may call it, keys checked."""
    return dict(_checked_pairs(args))


def checked_ordered_dict(*args: Any) -> OrderedDict[Any, Any]:
    """collections.OrderedDict as a pickle may call it, keys checked."""
    return OrderedDict(_checked_pairs(args))


# The globals of a network pickle that hash what they are given, as the unpickler hands them out.
KEYED_GLOBALS: MappingProxyType[tuple[str, str], Callable[..., Any]] = MappingProxyType(
    {
        ("builtins", "set"): checked_set,
        ("builtins", "frozenset"): checked_frozenset,
        ("builtins", "dict"): checked_dict,
        ("collections", "OrderedDict"): checked_ordered_dict,
    }
)


def _checked_pairs(args: tuple[Any, ...]) -> list[tuple[Any, Any]]:
    if not args:
        return []
    if len(args) > 1:
        raise CheckpointError("a dictionary in the pickle is built from more than one argument")
    source = args[0]
    pairs = list(source.items()) if isinstance(source, Mapping) else list(source)
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise CheckpointError("a dictionary in the pickle is built from something not pairs")
        check_key(pair[0])
    return [(key, value) for key, value in pairs]


def _load_dict(self: pickle._Unpickler) -> None:
    items = self.pop_mark()
    keys = items[0::2]
    for key in keys:
        check_key(key)
    self.append(dict(zip(keys, items[1::2], strict=True)))


def _load_setitem(self: pickle._Unpickler) -> None:
    check_key(self.stack[-2])
    pickle._Unpickler.load_setitem(self)


def _load_setitems(self: pickle._Unpickler) -> None:
    items = self.pop_mark()
    for key in items[0::2]:
        check_key(key)
    target = self.stack[-1]
    for i in range(0, len(items), 2):
        target[items[i]] = items[i + 1]


def _load_additems(self: pickle._Unpickler) -> None:
    items = check_members(self.pop_mark())
    target = self.stack[-1]
    if isinstance(target, set):
        target.update(items)
    else:
        for item in items:
            target.add(item)


def _load_frozenset(self: pickle._Unpickler) -> None:
    self.append(frozenset(check_members(self.pop_mark())))


def _bounded_dispatch() -> MappingProxyType[int, Callable[..., None]]:
    table = dict(pickle._Unpickler.dispatch)
    table[pickle.DICT[0]] = _load_dict
    table[pickle.SETITEM[0]] = _load_setitem
    table[pickle.SETITEMS[0]] = _load_setitems
    table[pickle.ADDITEMS[0]] = _load_additems
    table[pickle.FROZENSET[0]] = _load_frozenset
    return MappingProxyType(table)


class BoundedUnpickler(pickle._Unpickler):
    """The pure-Python Unpickler with every dict key and set member checked before it is hashed.

    The C unpickler hashes keys where Python cannot step in; this one is as fast for network
    pickles, whose time goes into reading the tensors' bytes. Subclasses give find_class.
    """

    dispatch = _bounded_dispatch()
