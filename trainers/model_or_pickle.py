"""A generator from either kind of file: our .safetensors model or an NVlabs network pickle.

Told apart by the suffix and, for a pickle under another name, by its first bytes. Kept
apart from checkpoint.py (our format) and nvlabs_pickle.py (theirs), which both build on
checkpoint's generator construction.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lyriscope.trainers.checkpoint import load_model
from lyriscope.trainers.nvlabs_pickle import import_generator


def load_model_or_pickle(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """load_model for our .safetensors; an NVlabs .pkl is imported on the fly (its G_ema)."""
    path = Path(path)
    if path.suffix.lower() == ".pkl" or _starts_like_pickle(path):
        G = import_generator(path).G
        return G.to(device).eval().requires_grad_(False)
    return load_model(path, device=device)


def _starts_like_pickle(path: Path) -> bool:
    # Pickles (protocol 2+) start with PROTO 0x80 and the protocol number; a safetensors file
    # starts with its header length and has the header's "{" at byte 8.
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return (
        head[:1] == b"\x80"
        and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
        and head[8:9] != b"{"
    )
