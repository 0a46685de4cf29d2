"""A generator's config checked before anything is allocated: limits, then shapes on the meta device.

A model file's metadata (or a pickle's settings) says how big the generator is; building
it allocates that much before a single tensor of the file is compared, so a header with
z_dim = 200000 asked for 160 GB. Here the config is first held to sane limits, then the
Generator is built on torch's meta device, which gives every tensor's shape and allocates
nothing, and those shapes are compared with the ones the file holds. Only a config that
fits the file's own tensors is built for real, so memory follows the file's size.

Example:
    >>> kwargs = checked_kwargs(config, where="line-01.safetensors: ")
    >>> architecture = meta_architecture(kwargs, where="line-01.safetensors: ")
    >>> compare_shapes(architecture.shapes, header_shapes, source="line-01.safetensors")
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from lyriscope.errors import CheckpointError
from lyriscope.trainers.networks import Generator

REQUIRED_KEYS = ("z_dim", "c_dim", "w_dim", "img_resolution")
# (smallest, largest) of the constructor's integer sizes: 8x the published 512 for the
# latents, a class per line of even a long song, the 8192 of [output] size for images.
SIZE_LIMITS = MappingProxyType(
    {
        "z_dim": (1, 4096),
        "w_dim": (1, 4096),
        "c_dim": (0, 4096),
        "img_resolution": (4, 8192),
        "img_channels": (1, 4),
    }
)
MAX_MAPPING_LAYERS = 64  # NVlabs uses 8 (2 for "auto")
MAX_GENERATOR_VALUES = 2**29  # weights and buffers: 2 GiB of float32, 17x the published 1024² G


@dataclass(frozen=True)
class Architecture:
    """What a config builds, found on the meta device: state-dict shapes and num_ws."""

    shapes: Mapping[str, tuple[int, ...]]
    num_ws: int

    @property
    def values(self) -> int:
        """Numbers in the state dict (weights and buffers)."""
        return sum(math.prod(shape) for shape in self.shapes.values())


def checked_kwargs(
    config: Mapping[str, Any], *, where: str, info_keys: Collection[str] = ()
) -> dict[str, Any]:
    """The Generator kwargs of `config` (info keys dropped) once they are within SIZE_LIMITS.

    `where` starts the message ("path: " or ""); CheckpointError names the key and its range.
    """
    kwargs = {k: v for k, v in config.items() if k not in info_keys}
    missing = [k for k in REQUIRED_KEYS if k not in kwargs]
    if missing:
        raise CheckpointError(
            f"{where}the model config lacks {', '.join(missing)}; it needs "
            f"{', '.join(REQUIRED_KEYS)}"
        )
    for key, (lo, hi) in SIZE_LIMITS.items():
        if key in kwargs:
            _check_int(kwargs[key], f"{where}the model config's {key}", lo, hi)
    res = kwargs["img_resolution"]
    if res & (res - 1):
        raise CheckpointError(
            f"{where}the model config's img_resolution is {res}; expected a power of two "
            f"such as 256 or 1024"
        )
    for group in ("mapping_kwargs", "synthesis_kwargs"):
        if kwargs.get(group) is not None and not isinstance(kwargs[group], Mapping):
            raise CheckpointError(
                f"{where}the model config's {group} is a {type(kwargs[group]).__name__}, "
                f"not a table of options"
            )
    layers = (kwargs.get("mapping_kwargs") or {}).get("num_layers")
    if layers is not None:
        _check_int(layers, f"{where}the model config's mapping num_layers", 1, MAX_MAPPING_LAYERS)
    return kwargs


def meta_architecture(kwargs: Mapping[str, Any], *, where: str) -> Architecture:
    """The shapes and num_ws of Generator(**kwargs), built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            G = Generator(**kwargs)
    except TypeError as exc:  # an argument our Generator does not have
        raise CheckpointError(
            f"{where}the model config does not fit lyriscope's Generator ({exc})"
        ) from None
    except (ValueError, ArithmeticError, RuntimeError, KeyError) as exc:
        raise CheckpointError(
            f"{where}the model config does not make a StyleGAN2 generator "
            f"({type(exc).__name__}: {exc})"
        ) from None
    architecture = Architecture(
        shapes={name: tuple(t.shape) for name, t in G.state_dict().items()}, num_ws=G.num_ws
    )
    if architecture.values > MAX_GENERATOR_VALUES:
        raise CheckpointError(
            f"{where}the model config makes a generator of {architecture.values:,} numbers; "
            f"lyriscope loads at most {MAX_GENERATOR_VALUES:,} (the published 1024² one has "
            f"about 30 million)"
        )
    return architecture


def compare_shapes(
    expected: Mapping[str, tuple[int, ...]],
    found: Mapping[str, tuple[int, ...]],
    *,
    source: str | os.PathLike[str],
) -> None:
    """CheckpointError naming the first tensor missing from `found`, extra in it, or misshapen."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    if missing:
        raise CheckpointError(
            f"{source}: tensor {missing[0]} is missing"
            f"{_more(missing)}; the file does not match its architecture"
        )
    if unexpected:
        raise CheckpointError(
            f"{source}: tensor {unexpected[0]} is not part of the architecture"
            f"{_more(unexpected)}; the file does not match its config"
        )
    for name, want in expected.items():
        got = tuple(found[name])
        if got != tuple(want):
            raise CheckpointError(
                f"{source}: tensor {name} has shape {list(got)}, but the "
                f"architecture needs {list(want)}"
            )


def _check_int(value: Any, what: str, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        shown = repr(value) if isinstance(value, int | float | str | None) else type(value).__name__
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise CheckpointError(f"{what} is {shown}; lyriscope takes a whole number in {lo}..{hi}")


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""
