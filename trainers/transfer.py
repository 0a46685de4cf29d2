"""Transfer learning: the weights and architecture a line's training starts from (`--from`).

A base model is our .safetensors (G_ema only) or an NVlabs PyTorch pickle, whose D is taken
too when it can be read (same tensor names as ours); otherwise D starts fresh. The song's
conditional model may start from an unconditional base: conditional_base() fits the base's
weights to the conditional networks and says what it took.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Transfer:
    """What a conditional run took from its base, per network, for the log."""

    network: str  # "G" or "D"
    taken: int  # tensors copied from the base as they are
    total: int  # tensors of the network
    fresh: tuple[str, ...]  # tensors that start as the network was built (absent or misshapen)
    widened: tuple[str, ...]  # tensors partly from the base (an unconditional fc0's z columns)

    def text(self) -> str:
        parts = [f"{self.network}: {self.taken} of {self.total} tensors from the base"]
        if self.widened:
            parts.append(f"z columns of {', '.join(self.widened)} (class columns start at 0)")
        if self.fresh:
            parts.append(f"new: {_names(self.fresh)}")
        return "; ".join(parts)


def conditional_base(
    base: BaseNetworks, *, G: torch.nn.Module, D: torch.nn.Module
) -> tuple[BaseNetworks, tuple[Transfer, ...]]:
    """The base's weights fitted to a conditional run's freshly built G and D.

    A tensor of the same name and shape is taken; one the base lacks (the class embedding
    mapping.embed, D's class mapping) or holds in another shape (D's b4.out, an embedding of
    another class count) starts as G and D were built. The first mapping layer of an
    unconditional G reads z only; a conditional one reads z and the class embedding side by
    side, so the base's weights become its z columns and the class columns start at zero.
    The z columns are scaled by sqrt(in_new / in_old) because the layer's run-time gain is
    1 / sqrt(in_features): z then passes exactly as in the base, so at the start every class
    draws what the base drew and training separates them.
    """
    G_state, G_report = _fit_state(base.G_state, G.state_dict(), network="G")
    D_state, D_report = None, None
    if base.D_state is not None:
        D_state, D_report = _fit_state(base.D_state, D.state_dict(), network="D")
    fitted = BaseNetworks(G_state=G_state, D_state=D_state, source=base.source)
    return fitted, tuple(r for r in (G_report, D_report) if r is not None)


def _fit_state(
    base: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], *, network: str
) -> tuple[dict[str, torch.Tensor], Transfer]:
    state: dict[str, torch.Tensor] = {}
    taken, fresh_names, widened = 0, [], []
    for name, built in fresh.items():
        have = base.get(name)
        if have is not None and have.shape == built.shape:
            state[name] = have.detach().clone().to(built.dtype)
            taken += 1
        elif have is not None and _widens(name, have, built):
            state[name] = _z_columns(have, built)
            widened.append(name)
        else:
            state[name] = built.detach().clone()
            fresh_names.append(name)
    report = Transfer(
        network=network,
        taken=taken,
        total=len(fresh),
        fresh=tuple(fresh_names),
        widened=tuple(widened),
    )
    return state, report


def _widens(name: str, have: torch.Tensor, built: torch.Tensor) -> bool:
    """An unconditional mapping.fc0.weight [out, z_dim] for a conditional one [out, z_dim + embed]."""
    return (
        name == "mapping.fc0.weight"
        and have.ndim == built.ndim == 2
        and have.shape[0] == built.shape[0]
        and have.shape[1] < built.shape[1]
    )


def _z_columns(have: torch.Tensor, built: torch.Tensor) -> torch.Tensor:
    """built's shape, the base's weights in the first (z) columns, zeros in the class columns."""
    z_dim, width = have.shape[1], built.shape[1]
    weight = torch.zeros_like(built)
    weight[:, :z_dim] = have.to(built.dtype) * math.sqrt(width / z_dim)  # same gain as before
    return weight


def _names(names: tuple[str, ...], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
