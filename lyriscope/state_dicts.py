"""Published weight files (torchvision-style state dicts) read as data and checked against a model.

A file is .safetensors or a torch.save'd .pth; .pth files are read with weights_only=True,
which refuses pickles that would build anything but tensors, so loading never runs code
from the file. Errors name the file, the network and the key that does not fit.

Example:
    state = read_state_dict(path, net="VGG16", example="torchvision's vgg16-397923af.pth")
    load_checked(VGG16(), state, path=path, net="VGG16")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

from lyriscope.errors import CheckpointError
from lyriscope.torch_load_errors import load_failure


def read_state_dict(path: Path, *, net: str, example: str) -> dict[str, torch.Tensor]:
    """The tensors of a weight file; `net` names the network and `example` the file people want.

    A {"state_dict": {...}} wrapper, as some training scripts save, is unwrapped.
    """
    try:
        if path.suffix.lower() == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not a usable file"
        raise CheckpointError(
            f"{path}: cannot read {net} weights as a state dict "
            f"({type(exc).__name__}: {load_failure(exc)})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors ({example} layout)")
    return state


def load_checked(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, path: Path, net: str
) -> None:
    """Load `state` into `model` once its keys and shapes match; values take the model's dtypes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = f"key {missing[0]!r} is missing" if missing else f"unexpected key {unexpected[0]!r}"
        raise CheckpointError(
            f"{path}: does not hold {net}'s weights in torchvision's layout: {what} "
            f"({len(missing)} missing, {len(unexpected)} unexpected)"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: {key} has shape {list(state[key].shape)}, expected "
                f"{list(tensor.shape)} for {net}"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
