"""The StyleGAN2-ADA training loop: phases, G_ema, ADA, ticks, snapshots, exact resume.

One minibatch runs the published phases in order (Gmain, Greg every pl_interval, Dmain,
Dreg every r1_interval) with lazy regularization: a regularized network's Adam uses
lr * r and betas ** r, r = interval / (interval + 1), and its penalty is multiplied by the
interval. After the phases G_ema follows G (half-life ema_kimg, ramped up over the first
images) and ADA adjusts p.

A snapshot (every `snap` ticks, at the end and when a stop is requested) writes, each
atomically, in this order: runs/line-NN/training-state.pt (everything needed to continue
exactly: weights, optimizers, augmentation, counters, data position, RNG states), the
line's model (G_ema, .safetensors), samples-KKKKKK.KKK.png (a grid from fixed seeds) and the
metrics. A killed process therefore loses at most one snapshot interval and never its last
good checkpoint. Resuming from a snapshot gives the same weights as never stopping, bit
for bit where the arithmetic is deterministic (the CPU; on CUDA, cuDNN's autotuned
convolutions may differ in the last bits).

Stopping: SIGINT/SIGTERM set a flag; the loop finishes the current minibatch, writes a
snapshot and returns TrainResult.stopped_by = the signal number (the CLI exits 128 + it:
130 for Ctrl-C, 143 for SIGTERM).

Speed: between two ticks nothing reads a tensor on the host (on CUDA each read waits for
the GPU): loss terms are summed on the device and read once per tick, in the stats row.
Start-up (until every phase ran once: data workers, op builds, cuDNN tuning) is timed
apart (startup_s) and left out of the ticks' s/kimg and the ETA; each tick reports its
own peak memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from lyriscope.atomic import atomic_path
from lyriscope.errors import CheckpointError
from lyriscope.trainers.checkpoint import (
    load_state_checked,
    load_training_state,
    save_model,
    save_training_state,
)
from lyriscope.trainers.contact_sheet import contact_sheet
from lyriscope.trainers.device_memory import peak_memory_mb, reset_peak_memory, synchronize
from lyriscope.trainers.distributed import (
    DistInfo,
    average_gradients,
    average_tensor,
    barrier,
    broadcast_flag,
    broadcast_module,
    gather_objects,
    gather_tensor,
)
from lyriscope.trainers.loss import StyleGAN2Loss
from lyriscope.trainers.networks import (
    Discriminator,
    Generator,
    set_op_impl,
    set_speed_levers,
)
from lyriscope.trainers.seeds import seeds_to_z, to_uint8
from lyriscope.trainers.train_config import RUN_CONTROL_FIELDS, SpeedOptions, TrainConfig

log = logging.getLogger(__name__)

STATE_FORMAT = "lyriscope.training-state"
STATE_VERSION = 1
GRID_SIDE = 4  # samples-*.png shows GRID_SIDE x GRID_SIDE images
GRID_SEEDS = tuple(range(GRID_SIDE * GRID_SIDE))

# A source of real minibatches: given how many items this process already drew (resume),
# endless (uint8 images [B, C, R, R], float32 labels [B, c_dim]) with B = batch_gpu.
BatchSource = Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]
# Metrics of a generator at a snapshot: G_ema -> {"kid": ..., "fid": ...}.
Evaluate = Callable[[torch.nn.Module], dict[str, Any]]


@dataclass(frozen=True)
class RunPaths:
    """Where a run writes: its folder (state, stats, sample grids) and the line's model file."""

    run_dir: Path
    model_path: Path

    @property
    def state_path(self) -> Path:
        return self.run_dir / "training-state.pt"

    @property
    def stats_path(self) -> Path:
        return self.run_dir / "stats.jsonl"

    def samples_path(self, nimg: int) -> Path:
        """The sample grid at nimg images shown: samples-KKKKKK.KKK.png (kimg, to the image)."""
        # Three decimals: a short run's grids (0.016 kimg) must not all be "samples-000000".
        return self.run_dir / f"samples-{nimg // 1000:06d}.{nimg % 1000:03d}.png"


@dataclass(frozen=True)
class Augmentation:
    """The augmentation pipe (None: no augmentation) and its ADA controller (None: p fixed)."""

    pipe: torch.nn.Module | None = None
    ada: Any | None = None  # AdaController: accumulate(), step(), state_dict(), load_state_dict()


@dataclass(frozen=True)
class BaseNetworks:
    """Weights to start from (transfer learning): G's state dict and, when known, D's."""

    G_state: dict[str, torch.Tensor]
    D_state: dict[str, torch.Tensor] | None = None
    source: str = ""


@dataclass(frozen=True)
class TrainResult:
    """How a call of train() ended."""

    kimg: float  # thousands of real images shown in total
    batch_idx: int  # minibatches done in total
    stopped_by: int | None  # signal number that stopped it early; None: reached total_kimg
    seconds: float  # wall time of this call
    seconds_per_kimg: float  # training speed of this call (without snapshots and start-up)
    last_stats: dict[str, Any] = field(default_factory=dict)  # the last stats.jsonl row
    startup_seconds: float = math.nan  # one-time work before the timed training (NaN: none)


@dataclass
class StopFlag:
    """Set by a signal handler (or a test); the loop stops at the next minibatch boundary."""

    signum: int | None = None

    def request(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum


@dataclass(frozen=True)
class _Phase:
    name: str
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int


def train(
    config: TrainConfig,
    *,
    batches: BatchSource,
    paths: RunPaths,
    device: str | torch.device = "cpu",
    dist: DistInfo | None = None,  # None: one process
    augmentation: Augmentation | None = None,  # None: no augmentation
    base: BaseNetworks | None = None,
    evaluate: Evaluate | None = None,
    fingerprint: str | None = None,
    resume: bool = False,
    stop: StopFlag | None = None,
    handle_signals: bool = False,
    progress: bool = True,
    ops: str = "cuda",
    speed: SpeedOptions | None = None,
) -> TrainResult:
    """Train until config.total_kimg (or a stop request); resume=True continues the run's checkpoint.

    With resume=True and a checkpoint in paths.run_dir, the architecture and losses come
    from the checkpoint and only the run-control fields (total_kimg, tick_kimg, snap,
    metrics, workers) from `config`. ops: 'cuda' runs the fused CUDA kernels where they
    build, 'ref' pure PyTorch everywhere; speed: how to compute (SpeedOptions). Both are
    run controls: results agree either way.
    """
    resuming = resume and paths.state_path.is_file()
    if paths.state_path.is_file() and not resume:
        raise CheckpointError(
            f"{paths.state_path} already exists: continue that run with "
            f"--resume, or train into another folder (--outdir)"
        )
    if resume and not resuming:
        log.info("no checkpoint at %s yet; starting a new run", paths.state_path)
    if resume and (dist is None or dist.is_main):
        _remove_stale_parts(paths)
    if resuming:
        config = resumed_config(paths.state_path, run_control=config)
    trainer = Trainer(
        config,
        paths=paths,
        device=device,
        dist=dist,
        augmentation=augmentation,
        fingerprint=fingerprint,
        ops=ops,
        speed=speed,
    )
    if resuming:
        trainer.load_state(paths.state_path)
    elif base is not None:
        trainer.load_base(base)
    stop = stop or StopFlag()
    with _signals_set(stop, enabled=handle_signals):
        return trainer.run(batches, stop=stop, evaluate=evaluate, progress=progress)


class Trainer:
    """The networks, optimizers, counters and RNG of one run; run() trains, state() snapshots."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        paths: RunPaths,
        device: str | torch.device,
        dist: DistInfo | None = None,
        augmentation: Augmentation | None = None,
        fingerprint: str | None = None,
        ops: str = "cuda",
        speed: SpeedOptions | None = None,  # None: the defaults (fused / foreach Adam)
    ) -> None:
        dist = dist or DistInfo()
        augmentation = augmentation or Augmentation()
        self.speed = speed or SpeedOptions()

        self.config = config
        self.paths = paths
        self.device = torch.device(device)
        self.dist = dist
        self.augmentation = augmentation
        self.fingerprint = fingerprint
        # Same weights everywhere: every process builds from the same seed (and rank 0's
        # copy is broadcast anyway). Then, as published, the global RNGs (torch, numpy,
        # random) are seeded per process for noise, augmentation and style mixing.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.G = Generator(**config.generator_kwargs()).to(self.device).train()
            self.D = Discriminator(**config.discriminator_kwargs()).to(self.device).train()
        self.G.requires_grad_(False)
        self.D.requires_grad_(False)
        self.G_ema = Generator(**config.generator_kwargs()).to(self.device).eval()
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.requires_grad_(False)
        for module in (self.G, self.D, self.G_ema):
            set_op_impl(module, ops)
            broadcast_module(module, dist)
        for module in (self.G, self.D):  # G_ema draws the sample grids as a user's model would
            set_speed_levers(module, channels_last=self.speed.channels_last, bf16=self.speed.bf16)
        if augmentation.pipe is not None:
            augmentation.pipe.to(self.device)
        self.loss = StyleGAN2Loss(
            self.G,
            self.D,
            augment_pipe=augmentation.pipe,
            r1_gamma=config.r1_gamma,
            style_mixing=config.style_mixing,
            pl_weight=config.pl_weight,
            pl_batch_shrink=config.pl_batch_shrink,
            pl_decay=config.pl_decay,
            average=(lambda t: average_tensor(t, dist)) if dist.enabled else None,
        )
        self.phases = self._phases()
        # Latents of the whole global batch come from one generator shared by all processes;
        # each process takes its shard, so K processes see what one process would.
        self.z_generator = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed * dist.world_size + dist.rank)
        np.random.seed((config.seed * dist.world_size + dist.rank) % 2**32)
        random.seed(config.seed * dist.world_size + dist.rank)
        self.cur_nimg = 0
        self.batch_idx = 0
        self.cur_tick = 0
        self.items_drawn = 0  # real images this process took from its data source

    # -- setup ---------------------------------------------------------------------------

    def _phases(self) -> list[_Phase]:
        c = self.config
        phases = []
        for name, module, reg_interval, active in (
            ("G", self.G, c.pl_interval, c.pl_weight > 0),
            ("D", self.D, c.r1_interval, c.r1_gamma > 0),
        ):
            params = [p for p in module.parameters()]
            impl = adam_impl(self.device, fast=self.speed.fast_adam)
            if not active or reg_interval <= 1:
                opt = torch.optim.Adam(params, lr=c.lr, betas=c.betas, eps=c.eps, **impl)
                phases.append(_Phase(f"{name}both" if active else f"{name}main", module, opt, 1))
                continue
            ratio = reg_interval / (reg_interval + 1)
            opt = torch.optim.Adam(
                params, lr=c.lr * ratio, betas=tuple(b**ratio for b in c.betas), eps=c.eps, **impl
            )
            phases.append(_Phase(f"{name}main", module, opt, 1))
            phases.append(_Phase(f"{name}reg", module, opt, reg_interval))
        return phases

    def load_base(self, base: BaseNetworks) -> None:
        """Start G and G_ema (and D, when given) from a base model's weights."""
        load_state_checked(self.G, base.G_state, source=base.source)
        self.G_ema.load_state_dict(self.G.state_dict())
        if base.D_state is not None:
            try:
                load_state_checked(self.D, base.D_state, source=base.source)
                log.info("D starts from %s", base.source)
            except CheckpointError as exc:
                log.warning("D of %s does not fit (%s); D starts fresh", base.source, exc)
        else:
            log.info("%s holds no discriminator; D starts fresh", base.source)

    # -- one minibatch -------------------------------------------------------------------

    def step(self, real_img_u8: torch.Tensor, real_c: torch.Tensor) -> dict[str, torch.Tensor]:
        """One minibatch of every due phase, then G_ema and ADA; returns the loss terms."""
        c, dist = self.config, self.dist
        real_img_u8 = _to_device(real_img_u8, self.device)
        real_img = real_img_u8.to(torch.float32) / 127.5 - 1  # [B, C, R, R]
        real_c = _to_device(real_c, self.device).to(torch.float32)  # [B, c_dim]
        all_z = torch.randn(
            [len(self.phases), c.batch, c.z_dim], generator=self.z_generator
        )  # [phases, batch, z_dim]
        # Round-robin shard, as the sampler deals real images: process r has items r, r+K, ...
        shards = _to_device(all_z[:, dist.rank :: dist.world_size], self.device)
        stats: dict[str, torch.Tensor] = {}
        for phase, gen_z in zip(self.phases, shards, strict=True):
            if self.batch_idx % phase.interval != 0:
                continue
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            # Generated images take the labels of this minibatch's real images.
            stats.update(
                self.loss.accumulate_gradients(
                    phase.name, real_img, real_c, gen_z, real_c, gain=phase.interval
                )
            )
            phase.module.requires_grad_(False)
            params = [p for p in phase.module.parameters() if p.grad is not None]
            average_gradients(params, dist)
            for p in params:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            phase.opt.step()
        self._update_ema()
        self.cur_nimg += c.batch
        self.batch_idx += 1
        self.items_drawn += c.batch_gpu
        ada = self.augmentation.ada
        if ada is not None and "real_logits" in stats:
            ada.accumulate(gather_tensor(stats["real_logits"], dist))  # rt of the global batch
        if ada is not None and self.augmentation.pipe is not None:
            rt = ada.step(self.augmentation.pipe, batch_idx=self.batch_idx)
            if rt is not None:
                stats["rt"] = rt  # a device scalar, read with the tick's stats
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        c = self.config
        ema_nimg = c.ema_kimg * 1000
        if c.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * c.ema_rampup)
        beta = 0.5 ** (c.batch / max(ema_nimg, 1e-8))
        # Multi-tensor ops: a few kernel launches for all parameters, not two per parameter;
        # the same lerp(p, p_ema, beta) as one at a time.
        ema, params = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_copy_(ema, torch._foreach_lerp(params, ema, beta))
        torch._foreach_copy_(list(self.G_ema.buffers()), list(self.G.buffers()))

    # -- the loop ------------------------------------------------------------------------

    def run(
        self,
        batches: BatchSource,
        *,
        stop: StopFlag,
        evaluate: Evaluate | None = None,
        progress: bool = True,
    ) -> TrainResult:
        """Train until total_kimg or a stop request; snapshot on the way and at the end.

        Start-up (the first batch from the loader, op builds, cuDNN tuning, lazy CUDA
        init: everything until each phase has run once) is timed on its own: it is
        reported as startup_s and kept out of the ticks' s/kimg, the result's s/kimg and
        the progress bar's ETA.
        """
        c, dist = self.config, self.dist
        total_nimg = int(round(c.total_kimg * 1000))
        start_time = time.perf_counter()
        tick = _TickStats(start_nimg=self.cur_nimg, start_time=start_time)
        timed = _Timed()  # training after start-up: seconds and images
        startup: dict[str, float] = {}
        warm_up_left = self._warm_up_steps()
        last_row: dict[str, Any] = {}
        show = progress and dist.is_main
        bar = _progress_bar(c.total_kimg, min(self.cur_nimg, total_nimg), show=show, start_up=True)
        with _rng_preserved(self.device):  # a DataLoader draws its seed from the global RNG
            source = batches(self.items_drawn)
        stopped_by = None
        try:
            while self.cur_nimg < total_nimg:
                try:
                    real_img, real_c = next(source)
                except RuntimeError:
                    # Ctrl-C in a terminal also reaches the loader's worker processes.
                    if stop.signum is None:
                        raise
                    self.snapshot(evaluate=None)
                    stopped_by = stop.signum
                    break
                tick.add(self.step(real_img, real_c))
                if warm_up_left:
                    warm_up_left -= 1
                    if not warm_up_left:  # start-up is over: time the training from here
                        synchronize(self.device)
                        startup = self._startup_stats(start_time)
                        tick.timed_from(self.cur_nimg, time.perf_counter())
                        bar.close()
                        bar = _progress_bar(c.total_kimg, min(self.cur_nimg, total_nimg), show=show)
                # Never past the total (a last batch may overshoot it): the ETA stays >= 0.
                bar.update(min(self.cur_nimg, total_nimg) / 1000 - bar.n)
                signum = stop.signum if broadcast_flag(stop.signum is not None, dist) else None
                if signum is not None and stop.signum is None:
                    signum = signal.SIGTERM  # another process was stopped
                done = self.cur_nimg >= total_nimg
                tick_done = self.cur_nimg >= tick.start_nimg + c.tick_kimg * 1000
                if not (done or tick_done or signum is not None):
                    continue
                if tick_done or done:
                    self.cur_tick += 1
                snapshot = done or signum is not None or (tick_done and self.cur_tick % c.snap == 0)
                row = self._tick_row(tick)
                timed.add(tick)
                if startup and not last_row:
                    row.update(startup)  # the first row of this call says what start-up cost
                bar.set_postfix_str(_postfix(row), refresh=False)
                if snapshot:
                    row["metrics"] = self.snapshot(evaluate=evaluate)
                if dist.is_main:
                    _append_jsonl(self.paths.stats_path, row)
                    log.info("tick %d  kimg %.1f  %s", self.cur_tick, row["kimg"], _postfix(row))
                last_row = row
                reset_peak_memory(self.device)  # each tick reports its own peak
                tick = _TickStats(start_nimg=self.cur_nimg, start_time=time.perf_counter())
                if not warm_up_left:
                    tick.timed_from(self.cur_nimg, tick.start_time)
                if signum is not None:
                    stopped_by = signum
                    break
        finally:
            bar.leave = True  # a run that ended within start-up keeps its start-up bar
            bar.close()
        return TrainResult(
            kimg=self.cur_nimg / 1000,
            batch_idx=self.batch_idx,
            stopped_by=stopped_by,
            seconds=time.perf_counter() - start_time,
            seconds_per_kimg=timed.seconds / timed.kimg if timed.kimg else math.nan,
            last_stats=last_row,
            startup_seconds=startup.get("startup_s", math.nan),
        )

    def _warm_up_steps(self) -> int:
        """Minibatches from here until every phase has run once: the one-time work of a run."""
        return max(-self.batch_idx % phase.interval for phase in self.phases) + 1

    def _startup_stats(self, start_time: float) -> dict[str, float]:
        """What start-up cost (after a device sync): seconds and peak memory; resets the peak."""
        stats = {
            "startup_s": time.perf_counter() - start_time,
            "startup_peak_memory_mb": peak_memory_mb(self.device),
        }
        reset_peak_memory(self.device)
        return stats

    def _tick_row(self, tick: _TickStats) -> dict[str, Any]:
        """The stats row of a tick: the only place the loop reads tensors between snapshots.

        sec_per_kimg counts the tick's minibatches after start-up (None when all were
        start-up); peak_memory_mb is the tick's own peak (CUDA: allocated by tensors;
        CPU: the process's resident set).
        """
        pipe = self.augmentation.pipe
        extra = {"pl_mean": self.loss.pl_mean}
        if pipe is not None and hasattr(pipe, "p"):
            extra["p"] = pipe.p
        means = tick.means(extra)  # waits for the GPU: the times below include its work
        now = time.perf_counter()
        tick.end_time, tick.end_nimg = now, self.cur_nimg
        timed = tick.timed_time is not None
        kimg_timed = (self.cur_nimg - tick.timed_nimg) / 1000 if timed else 0.0
        row: dict[str, Any] = {
            "tick": self.cur_tick,
            "kimg": self.cur_nimg / 1000,
            "batch_idx": self.batch_idx,
            "p": 0.0,
            **means,
            "sec_per_tick": now - tick.start_time,
            "sec_per_kimg": (now - tick.timed_time) / kimg_timed if kimg_timed else None,
            "peak_memory_mb": peak_memory_mb(self.device),
        }
        return row

    # -- snapshots -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything that continues this run exactly (collective: every process must call it)."""
        rng = gather_objects(_rng_state(self.device), self.dist)
        aug = self.augmentation
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt": [phase.opt.state_dict() for phase in self._optimizer_phases()],
            "pl_mean": self.loss.pl_mean.detach().clone(),
            "augment_pipe": aug.pipe.state_dict() if aug.pipe is not None else None,
            "ada": aug.ada.state_dict() if aug.ada is not None else None,
            "cur_nimg": self.cur_nimg,
            "batch_idx": self.batch_idx,
            "cur_tick": self.cur_tick,
            "items_drawn": self.items_drawn,
            "world_size": self.dist.world_size,
            "z_generator": self.z_generator.get_state(),
            "rng": rng,  # one entry per process
            "dataset_fingerprint": self.fingerprint,
        }

    def _optimizer_phases(self) -> list[_Phase]:
        seen: list[_Phase] = []
        for phase in self.phases:
            if all(phase.opt is not other.opt for other in seen):
                seen.append(phase)
        return seen

    def load_state(self, path: Path) -> None:
        """Continue from a training checkpoint written with this trainer's architecture."""
        state = _read_state(path)
        if (
            self.fingerprint is not None
            and state.get("dataset_fingerprint") is not None
            and state["dataset_fingerprint"] != self.fingerprint
        ):
            log.warning(
                "%s was trained on a different dataset (fingerprint changed); "
                "continuing on the new images",
                path,
            )
        for name, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            load_state_checked(module, state[name], source=f"{path} [{name}]")
        for phase, opt_state in zip(self._optimizer_phases(), state["opt"], strict=True):
            phase.opt.load_state_dict(opt_state)
            # The saved groups carry the implementation of the device they were saved on.
            for group in phase.opt.param_groups:
                group.update(adam_impl(self.device, fast=self.speed.fast_adam))
        self.loss.pl_mean.copy_(state["pl_mean"])
        aug = self.augmentation
        if aug.pipe is not None and state["augment_pipe"] is not None:
            aug.pipe.load_state_dict(state["augment_pipe"])
        if aug.ada is not None and state["ada"] is not None:
            aug.ada.load_state_dict(state["ada"])
        self.cur_nimg = int(state["cur_nimg"])
        self.batch_idx = int(state["batch_idx"])
        self.cur_tick = int(state["cur_tick"])
        self.items_drawn = int(state["items_drawn"])
        self.z_generator.set_state(state["z_generator"])
        rng = state["rng"]
        if len(rng) == self.dist.world_size:
            _set_rng_state(rng[self.dist.rank], self.device)
        log.info("resumed %s at %.1f kimg", path, self.cur_nimg / 1000)

    def snapshot(self, *, evaluate: Evaluate | None = None) -> dict[str, Any] | None:
        """Write training-state.pt, the model, a sample grid (and metrics); returns the metrics."""
        state = self.state()  # collective
        metrics = None
        if self.dist.is_main:
            self.paths.run_dir.mkdir(parents=True, exist_ok=True)
            self.paths.model_path.parent.mkdir(parents=True, exist_ok=True)
            save_training_state(self.paths.state_path, state)
            save_model(
                self.paths.model_path,
                self.G_ema,
                kimg=self.cur_nimg / 1000,
                dataset_fingerprint=self.fingerprint,
                extra={"trainer": "lyriscope", "config": self.config.to_dict()},
            )
            # Sample grids and metrics must not move the training RNG (exact resume).
            with _rng_preserved(self.device):
                write_sample_grid(self.G_ema, self.paths.samples_path(self.cur_nimg))
                if evaluate is not None and self.config.metrics:
                    metrics = evaluate(self.G_ema)
        barrier(self.dist)
        return metrics


def resumed_config(path: Path, *, run_control: TrainConfig) -> TrainConfig:
    """The checkpoint's config with the run-control fields (total_kimg, snap, ...) of `run_control`."""
    saved = TrainConfig.from_dict(_read_state(path)["config"])
    if saved.gpus != run_control.gpus:
        raise CheckpointError(
            f"{path}: was trained with {saved.gpus} process(es), this run has "
            f"{run_control.gpus}; resume with --gpus {saved.gpus}"
        )
    return replace(saved, **{k: getattr(run_control, k) for k in RUN_CONTROL_FIELDS})


def _read_state(path: Path) -> dict[str, Any]:
    state = load_training_state(path)
    if state.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"{path}: not a lyriscope training state (no {STATE_FORMAT!r} format key)"
        )
    return state


@dataclass
class _TickStats:
    """One tick's loss terms, summed on their device: read on the host once, by means()."""

    start_nimg: int
    start_time: float
    timed_nimg: int = 0  # images shown when the timed part began (after start-up)
    timed_time: float | None = None  # when it began; None: the tick is all start-up
    end_time: float | None = None  # set by the stats row, with end_nimg
    end_nimg: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # float64 scalars
    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, torch.Tensor] = field(default_factory=dict)

    def timed_from(self, nimg: int, t: float) -> None:
        """Time the tick's speed from here (start-up is over)."""
        self.timed_nimg, self.timed_time = nimg, t

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        """Add one minibatch's terms (no host read: on CUDA that would wait for the GPU)."""
        for name, value in stats.items():
            if name == "rt":
                self.last[name] = value.detach()
                continue
            if name == "real_logits":
                name = "real_sign"
                value = value.sign()
            mean = value.detach().float().mean().to(torch.float64)
            self.sums[name] = self.sums[name] + mean if name in self.sums else mean
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self, extra: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        """Mean of each term over the tick (and `extra` scalars), in one host read."""
        values = {name: self.sums[name] / self.counts[name] for name in self.sums}
        values.update(self.last)
        values.update(extra or {})
        if not values:
            return {}
        device = next(iter(values.values())).device
        stacked = torch.stack(
            [v.detach().to(device, torch.float64).reshape([]) for v in values.values()]
        )
        out = dict(zip(values, stacked.tolist(), strict=True))  # the tick's one sync
        if "loss_D_gen" in out and "loss_D_real" in out:
            out["loss_D"] = out["loss_D_gen"] + out["loss_D_real"]
        return out


def adam_impl(device: torch.device, *, fast: bool = True) -> dict[str, bool]:
    """Adam's implementation on `device`: fused on CUDA (one kernel for all parameters instead
    of several per parameter), foreach (batched tensor lists) elsewhere; the same update.

    fast=False: the for-loop Adam (one parameter at a time), the reference.
    """
    cuda = device.type == "cuda"
    return {"fused": fast and cuda, "foreach": fast and not cuda}


@dataclass
class _Timed:
    """Seconds and thousands of images of training after start-up, summed over ticks."""

    seconds: float = 0.0
    kimg: float = 0.0

    def add(self, tick: _TickStats) -> None:
        if tick.timed_time is not None and tick.end_time is not None:
            self.seconds += tick.end_time - tick.timed_time
            self.kimg += (tick.end_nimg - tick.timed_nimg) / 1000


def write_sample_grid(
    G: torch.nn.Module, path: Path, *, seeds: tuple[int, ...] = GRID_SEEDS, columns: int = GRID_SIDE
) -> None:
    """A PNG grid of G's images at fixed seeds (noise 'const', psi 1), written atomically."""
    device = next(G.parameters()).device
    with torch.no_grad():
        z = seeds_to_z(seeds, G.z_dim, device=device)  # [N, z_dim]
        c = torch.zeros([len(seeds), G.c_dim], device=device)
        if G.c_dim:
            c[torch.arange(len(seeds)), torch.arange(len(seeds)) % G.c_dim] = 1
        images = to_uint8(G(z, c, noise_mode="const")).cpu().numpy()  # [N, R, R, C]
    grid = contact_sheet(list(images), columns=columns)
    with atomic_path(path) as tmp:
        Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(tmp, format="PNG")


def read_stats(path: Path) -> list[dict[str, Any]]:
    """The rows of a stats.jsonl (a line cut off by a killed process is skipped)."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


# -- helpers -----------------------------------------------------------------------------------


def _remove_stale_parts(paths: RunPaths) -> None:
    """Delete the temp files of writes that a killed process left half-done."""
    stale = [
        *paths.run_dir.glob(".training-state.pt.*.part"),
        *paths.run_dir.glob(".samples-*.png.*.part"),
        *paths.model_path.parent.glob(f".{paths.model_path.name}.*.part"),
    ]
    for part in stale:
        log.info("removing %s, left by an interrupted write", part)
        part.unlink(missing_ok=True)


def _postfix(row: dict[str, Any]) -> str:
    parts = [f"p={row.get('p', 0.0):.3f}"]
    for name in ("loss_G", "loss_D", "loss_r1", "loss_pl"):
        if name in row:
            parts.append(f"{name[5:]}={row[name]:.3f}")
    return " ".join(parts)


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")  # one write: a line or nothing


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor to `device` without waiting for the GPU (a blocking copy syncs)."""
    if device.type != "cuda" or tensor.device == device:
        return tensor.to(device)
    if tensor.device.type == "cpu" and not tensor.is_pinned():
        tensor = tensor.pin_memory()  # from pinned memory the copy runs behind the queue
    return tensor.to(device, non_blocking=True)


def _progress_bar(total_kimg: float, nimg: int, *, show: bool, start_up: bool = False) -> tqdm:
    """The kimg bar; its ETA is remaining kimg x (seconds / kimg since the bar began).

    A run starts with a "start-up" bar that vanishes when start-up is over; the real bar
    begins there, so one-time work and the images of an earlier call (resume) stay out of
    the rate. smoothing=0: the rate over the whole bar, snapshots included.
    """
    digits = 1 if total_kimg >= 10 else 3
    return tqdm(
        total=round(total_kimg, 3),
        initial=round(nimg / 1000, 3),
        unit="kimg",
        desc="start-up" if start_up else None,
        leave=not start_up,
        smoothing=0,
        disable=not show,
        dynamic_ncols=True,
        bar_format=f"{{l_bar}}{{bar}}| {{n:.{digits}f}}/{{total:.{digits}f}} kimg "
        f"[{{elapsed}}<{{remaining}}{{postfix}}]",
    )


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(tuple(state["numpy"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@contextlib.contextmanager
def _rng_preserved(device: torch.device) -> Iterator[None]:
    saved = _rng_state(device)
    try:
        yield
    finally:
        _set_rng_state(saved, device)


@contextlib.contextmanager
def _signals_set(stop: StopFlag, *, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM request a stop instead of killing (main thread only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: quit now, keep the last checkpoint
        if stop.signum is None:
            log.warning(
                "signal %d: saving a checkpoint after this minibatch (Ctrl-C again "
                "quits without it)",
                signum,
            )
        stop.request(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
