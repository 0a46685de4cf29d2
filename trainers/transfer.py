"""Transfer learning: the weights and architecture a line's training starts from (`--from`).

A base model is our .safetensors (G_ema only) or an NVlabs PyTorch pickle, whose D is taken
too when it can be read (same tensor names as ours); otherwise D starts fresh.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from lyriscope.errors import CheckpointError
from lyriscope.trainers import nvlabs_pickle
from lyriscope.trainers.model_or_pickle import load_model_or_pickle
from lyriscope.trainers.training_loop import BaseNetworks

log = logging.getLogger(__name__)


def load_base(path: Path, *, resolution: int) -> tuple[BaseNetworks, dict[str, Any]]:
    """(BaseNetworks, the TrainConfig fields of its architecture) from a model or NVlabs pickle."""
    if not path.is_file():
        raise CheckpointError(f"--from {path}: no such model file")
    G = load_model_or_pickle(path)
    kwargs = G.init_kwargs
    if kwargs["img_resolution"] != resolution:
        raise CheckpointError(
            f"--from {path}: the model makes {kwargs['img_resolution']}² "
            f"images but the dataset is {resolution}²; use a base model of "
            f"the dataset's resolution (or prepare the images at "
            f"{kwargs['img_resolution']}²)"
        )
    synthesis = kwargs.get("synthesis_kwargs", {})
    mapping = kwargs.get("mapping_kwargs", {})
    fields = dict(
        z_dim=kwargs["z_dim"],
        w_dim=kwargs["w_dim"],
        c_dim=kwargs["c_dim"],
        img_channels=kwargs["img_channels"],
        mapping_layers=mapping.get("num_layers", 8),
        channel_base=synthesis.get("channel_base", 32768),
        channel_max=synthesis.get("channel_max", 512),
        num_fp16_res=synthesis.get("num_fp16_res", 0),
        conv_clamp=synthesis.get("conv_clamp"),
        use_noise=synthesis.get("use_noise", True),
    )
    state = {k: v.detach().clone() for k, v in G.state_dict().items()}
    base = BaseNetworks(G_state=state, D_state=_pickle_discriminator(path), source=str(path))
    return base, fields


def _pickle_discriminator(path: Path) -> dict[str, torch.Tensor] | None:
    """D's weights from an NVlabs PyTorch pickle (same tensor names as ours), else None."""
    if path.suffix.lower() != ".pkl":
        return None  # our .safetensors holds G_ema only
    try:
        data = nvlabs_pickle.load_network_pickle(path)
        record = data.get("D") if isinstance(data, dict) else None
        if not isinstance(record, nvlabs_pickle.PersistentObject):
            return None
        return nvlabs_pickle.module_state_dict(record)
    except CheckpointError as exc:
        log.warning("%s: cannot read D (%s); D starts fresh", path, exc)
        return None
