"""The generator runtime: every line's model loaded once and kept on the device; w -> uint8 frames."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lyriscope.engine.synth.fastpath import FastOptions, FastSynthesis
from lyriscope.errors import CheckpointError, SetError
from lyriscope.trainers.checkpoint import load_model
from lyriscope.trainers.devices import pick_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    fp16: bool | None = None  # None: fp16 synthesis on CUDA, fp32 on CPU
    noise_mode: str = "const"  # "const" keeps frames deterministic; "random" flickers
    fast: bool = False  # engine.fastpath: a precomputed plan (+ CUDA graph, fp16 on CUDA)
    batch: int = 1  # frames per synthesis call; the fast path's CUDA graph is for this batch


class LineModel:
    """One loaded generator and what the walk needs from it."""

    def __init__(
        self,
        G: torch.nn.Module,
        *,
        path: Path,
        device: torch.device,
        fp16: bool,
        noise_mode: str,
        fast: bool = False,
        batch: int = 1,
        graph_pool: Any = None,
    ) -> None:
        self.G = G
        self.path = path
        self.device = device
        self.fp16 = fp16
        self.noise_mode = noise_mode
        self.z_dim: int = G.z_dim
        self.w_dim: int = G.w_dim
        self.num_ws: int = G.num_ws
        self.resolution: int = G.img_resolution
        self.w_avg: torch.Tensor = G.mapping.w_avg.detach().float()  # [w_dim]
        self.fast = None
        if fast and noise_mode not in ("const", "none"):
            log.warning(
                "%s: noise_mode %r: the fast path replays fixed noise only; using the "
                "reference path for this model",
                path.name,
                noise_mode,
            )
        elif fast:
            options = FastOptions(dtype="fp16" if fp16 else "fp32", noise_mode=noise_mode)
            self.fast = FastSynthesis(G, batch=batch, options=options, graph_pool=graph_pool)

    @torch.no_grad()
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], untruncated (the walk truncates)."""
        z = z.to(self.device, torch.float32)
        c = torch.zeros(z.shape[0], self.G.c_dim, device=self.device)
        return self.G.mapping(z, c, truncation_psi=1.0).float()

    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images uint8 [N, H, W, 3] on the device (NVlabs' conversion)."""
        ws = ws.to(self.device, torch.float32)
        if self.fast is not None:
            return self.fast(ws).clone()  # the fast path reuses its output buffer
        img = self.G.synthesis(
            ws, noise_mode=self.noise_mode, force_fp32=not self.fp16
        )  # [N,C,H,W]
        img = (img.permute(0, 2, 3, 1).float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        if img.shape[-1] == 1:  # greyscale models
            img = img.expand(-1, -1, -1, 3)
        return img


class Generator:
    """Every line's model, loaded once (shared when lines name the same file), on one device.

    Example:
        >>> gen = Generator.from_set(load_set("sets/demo"))
        >>> frames = gen.synthesize(0, ws)  # uint8 [N, H, W, 3] numpy
    """

    def __init__(
        self,
        model_paths: Sequence[Path],
        *,
        options: RuntimeOptions = RuntimeOptions(),
        noise_modes: Sequence[str] | None = None,
    ) -> None:
        """noise_modes: per line ("const", "random", "none"); None: options.noise_mode for all."""
        self.device = pick_device(options.device)
        fp16 = options.fp16 if options.fp16 is not None else self.device.type == "cuda"
        if noise_modes is not None and len(noise_modes) != len(model_paths):
            raise ValueError("noise_modes needs one entry per model path")
        networks: dict[Path, torch.nn.Module] = {}  # one copy of the weights per file
        loaded: dict[tuple[Path, str], LineModel] = {}
        # Line models take turns on one stream and keep their inputs and outputs outside the
        # pool, so their CUDA graphs can share scratch memory in any replay order.
        graph_pool = (
            torch.cuda.graph_pool_handle() if options.fast and self.device.type == "cuda" else None
        )
        self.lines: list[LineModel] = []
        for i, path in enumerate(model_paths):
            path = Path(path).resolve()
            noise = options.noise_mode if noise_modes is None else noise_modes[i]
            if path not in networks:
                log.info("loading %s", path)
                networks[path] = load_model(path, device=self.device)
            if (path, noise) not in loaded:
                loaded[path, noise] = LineModel(
                    networks[path],
                    path=path,
                    device=self.device,
                    fp16=fp16,
                    noise_mode=noise,
                    fast=options.fast,
                    batch=options.batch,
                    graph_pool=graph_pool,
                )
            self.lines.append(loaded[path, noise])
        if not self.lines:
            raise CheckpointError("no models to load")

    @classmethod
    def from_set(cls, songset, *, options: RuntimeOptions = RuntimeOptions()) -> Generator:
        missing = [line.index + 1 for line in songset.lines if line.model is None]
        if missing:
            raise SetError(
                f"{songset.path}: line(s) {missing} have no model; train them or set "
                f'model = "..." in each [[line]]'
            )
        return cls(
            [line.model for line in songset.lines],
            options=options,
            noise_modes=[line.walk.noise for line in songset.lines],
        )

    def line(self, index: int) -> LineModel:
        return self.lines[index]

    def synthesize(self, index: int, ws: torch.Tensor) -> np.ndarray:
        """ws [N, num_ws, w_dim] of line `index` -> uint8 [N, H, W, 3] on the host."""
        return self.lines[index].synthesize(ws).cpu().numpy()
