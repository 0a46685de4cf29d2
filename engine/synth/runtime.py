"""The generator runtime: every line's model loaded once and kept on the device; w -> uint8 frames.

A line drawn by the song's class-conditional model ([song] model) is that model with the
line's class: its mapping gets the one-hot label, and its walk truncates towards the
class's own average w (the model's w_avg is the average over every class; truncating
towards it would pull each line's images towards the other lines').
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lyriscope.engine.synth.fastpath import FastOptions, FastSynthesis
from lyriscope.errors import CheckpointError, LyriscopeError, SetError
from lyriscope.trainers.checkpoint import load_model
from lyriscope.trainers.devices import pick_device

log = logging.getLogger(__name__)

CLASS_W_AVG_SAMPLES = 2048  # z drawn to find a class's average w (NVlabs tracks w_avg over batches)
CLASS_W_AVG_SEED = 0  # the same draw every time: a line's truncation centre never changes


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
        label: int | None = None,  # the class of a conditional model (0-based); None: unconditional
        # The fast path built for another class of the same network and noise (it does not
        # depend on the class): the song model's lines share one plan and CUDA graph.
        shared_fast: FastSynthesis | None = None,
    ) -> None:
        self.G = G
        self.path = path
        self.device = device
        self.fp16 = fp16
        self.noise_mode = noise_mode
        self.label = label
        self.z_dim: int = G.z_dim
        self.w_dim: int = G.w_dim
        self.num_ws: int = G.num_ws
        self.resolution: int = G.img_resolution
        self.c = class_vector(G.c_dim, label, device=device)  # [1, c_dim]
        self.w_avg: torch.Tensor = (
            G.mapping.w_avg.detach().float() if label is None else self._class_w_avg()
        )  # [w_dim]
        self.fast = shared_fast
        if shared_fast is None and fast and noise_mode not in ("const", "none"):
            log.warning(
                "%s: noise_mode %r: the fast path replays fixed noise only; using the "
                "reference path for this model",
                path.name,
                noise_mode,
            )
        elif shared_fast is None and fast:
            options = FastOptions(dtype="fp16" if fp16 else "fp32", noise_mode=noise_mode)
            self.fast = FastSynthesis(G, batch=batch, options=options, graph_pool=graph_pool)

    @torch.no_grad()
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], untruncated (the walk truncates)."""
        z = z.to(self.device, torch.float32)
        c = self.c.expand(z.shape[0], -1)  # [N, c_dim]
        return self.G.mapping(z, c, truncation_psi=1.0).float()

    @torch.no_grad()
    def _class_w_avg(self) -> torch.Tensor:
        """The mean w [w_dim] of this line's class, from a fixed draw of z."""
        draw = torch.Generator().manual_seed(CLASS_W_AVG_SEED)  # on the CPU: same z on any device
        z = torch.randn(CLASS_W_AVG_SAMPLES, self.z_dim, generator=draw)  # [S, z_dim]
        ws = [self.mapping(chunk)[:, 0] for chunk in z.split(256)]  # [256, w_dim] each
        return torch.cat(ws).mean(dim=0)  # [w_dim]

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
    """The lines' models, loaded once (shared when lines name the same file), on one device.

    Lines of one file share its weights; a LineModel is shared by lines with the same file,
    noise mode and class. A generator may hold only some lines (a preview of one line needs
    only that line's model); asking for another line is an error that says so.

    Example:
        >>> gen = Generator.from_set(load_set("sets/demo"))
        >>> frames = gen.synthesize(0, ws)  # uint8 [N, H, W, 3] numpy
    """

    def __init__(
        self,
        model_paths: Sequence[Path | None],
        *,
        options: RuntimeOptions = RuntimeOptions(),
        noise_modes: Sequence[str] | None = None,
        labels: Sequence[int | None] | None = None,
    ) -> None:
        """model_paths: per line (None: that line is not loaded); noise_modes: per line
        ("const", "random", "none"; None: options.noise_mode for all); labels: per line, the
        class in a conditional model (None: all unconditional)."""
        self.device = pick_device(options.device)
        fp16 = options.fp16 if options.fp16 is not None else self.device.type == "cuda"
        if noise_modes is not None and len(noise_modes) != len(model_paths):
            raise ValueError("noise_modes needs one entry per model path")
        if labels is not None and len(labels) != len(model_paths):
            raise ValueError("labels needs one entry per model path")
        networks: dict[Path, torch.nn.Module] = {}  # one copy of the weights per file
        loaded: dict[tuple[Path, str, int | None], LineModel] = {}
        # Line models take turns on one stream and keep their inputs and outputs outside the
        # pool, so their CUDA graphs can share scratch memory in any replay order.
        graph_pool = (
            torch.cuda.graph_pool_handle() if options.fast and self.device.type == "cuda" else None
        )
        self.lines: dict[int, LineModel] = {}  # by 0-based line: the lines this generator holds
        for i, path in enumerate(model_paths):
            if path is None:
                continue
            path = Path(path).resolve()
            noise = options.noise_mode if noise_modes is None else noise_modes[i]
            label = None if labels is None else labels[i]
            if path not in networks:
                log.info("loading %s", path)
                networks[path] = load_model(path, device=self.device)
            check_class(networks[path].c_dim, label, path=path, line=i)
            if (path, noise, label) not in loaded:
                sibling = next(
                    (m for (p, n, _), m in loaded.items() if (p, n) == (path, noise)), None
                )
                loaded[path, noise, label] = LineModel(
                    networks[path],
                    path=path,
                    device=self.device,
                    fp16=fp16,
                    noise_mode=noise,
                    fast=options.fast,
                    batch=options.batch,
                    graph_pool=graph_pool,
                    label=label,
                    shared_fast=None if sibling is None else sibling.fast,
                )
            self.lines[i] = loaded[path, noise, label]
        if not self.lines:
            raise CheckpointError("no models to load")

    @classmethod
    def from_set(
        cls,
        songset,
        *,
        options: RuntimeOptions = RuntimeOptions(),
        lines: Sequence[int] | None = None,  # 0-based lines to load; None: every line
    ) -> Generator:
        """The models of the set's lines (each line's class in the song's conditional model)."""
        chosen = range(len(songset.lines)) if lines is None else sorted(set(lines))
        missing = [i + 1 for i in chosen if songset.lines[i].model is None]
        if missing:
            raise SetError(
                f"{songset.path}: line(s) {missing} have no model; train them or set "
                f'model = "..." in each [[line]]'
            )
        return cls(
            [line.model if line.index in chosen else None for line in songset.lines],
            options=options,
            noise_modes=[line.walk.noise for line in songset.lines],
            labels=[line.label for line in songset.lines],
        )

    def line(self, index: int) -> LineModel:
        model = self.lines.get(index)
        if model is None:
            held = ", ".join(str(i + 1) for i in sorted(self.lines))
            raise LyriscopeError(
                f"line {index + 1}'s model is not loaded; this generator holds line(s) {held}"
            )
        return model

    def synthesize(self, index: int, ws: torch.Tensor) -> np.ndarray:
        """ws [N, num_ws, w_dim] of line `index` -> uint8 [N, H, W, 3] on the host."""
        return self.line(index).synthesize(ws).cpu().numpy()


def class_vector(c_dim: int, label: int | None, *, device: torch.device) -> torch.Tensor:
    """The c [1, c_dim] of a line: one-hot at its class; zeros without a class."""
    c = torch.zeros(1, c_dim, device=device)
    if label is not None:
        c[0, label] = 1
    return c


def check_class(c_dim: int, label: int | None, *, path: Path, line: int) -> None:
    """Whether line `line` (0-based) can be drawn by a model of c_dim classes with `label`."""
    if label is None:
        if c_dim:
            log.warning(
                "%s is class-conditional (%d classes) but line %d uses it as its own model; "
                "it is drawn with a zero label. Name it as [song] model so each line gets "
                "its class",
                path.name,
                c_dim,
                line + 1,
            )
        return
    if c_dim == 0:
        raise CheckpointError(
            f"{path}: line {line + 1} is drawn by [song] model, but the model is unconditional "
            f"(no classes); train it with `lyriscope train SET --conditional`, or give the line "
            f"its own model"
        )
    if not 0 <= label < c_dim:
        raise CheckpointError(
            f"{path}: line {line + 1} has class {label}, but the song model has classes 0 to "
            f"{c_dim - 1}; change the line's class in set.toml or train the song model on "
            f"every line"
        )
