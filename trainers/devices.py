"""Choosing the torch device from a command-line name ("auto", "cpu", "cuda", "cuda:1")."""

from __future__ import annotations

import torch

from lyriscope.errors import DeviceError


def pick_device(name: str = "auto") -> torch.device:
    """The torch device for `name`; "auto" prefers CUDA. DeviceError when CUDA is asked for but absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(
            f"--device {name}: not a torch device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: this torch has no CUDA device; use --device cpu")
    return device
