"""Training speed levers that a CPU can check: no host reads per step, the optimizer, the first tick."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from dataset_zips import batches_from, shapes_zip
from tiny_configs import tiny_config

from lyriscope.trainers import training_loop
from lyriscope.trainers.augment import GEOM, AdaController, AugmentConfig, AugmentPipe
from lyriscope.trainers.dataset import ImageDataset
from lyriscope.trainers.train_config import SpeedOptions, TrainConfig
from lyriscope.trainers.training_loop import (
    Augmentation,
    RunPaths,
    StopFlag,
    Trainer,
    read_stats,
    train,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# Every way Python code reads a tensor's value on the host: on CUDA each one waits for the
# GPU to finish all queued work (a sync), so none may run between two ticks.
HOST_READS = (
    "item",
    "tolist",
    "numpy",
    "cpu",
    "__float__",
    "__int__",
    "__bool__",
    "__index__",
    "__repr__",
    "__format__",
)


@pytest.fixture(scope="module")
def shapes16(tmp_path_factory) -> ImageDataset:
    return ImageDataset(shapes_zip(tmp_path_factory.mktemp("d") / "s16.zip", count=8, res=16))


class _HostReads:
    """Records host reads of tensors made while `active` (where they came from)."""

    def __init__(self) -> None:
        self.active = False
        self.seen: list[str] = []

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        before, self.active = self.active, False
        try:
            yield
        finally:
            self.active = before

    def wrap(self, name: str, original):
        def read(tensor, *args, **kwargs):
            if self.active:
                self.active = False  # the stack formatting itself must not count
                where = traceback.format_stack(limit=4)[-2].strip().splitlines()[0]
                # Plain Adam keeps its step count on the host by design: not a GPU read.
                if "torch/optim/" not in where:
                    self.seen.append(f"Tensor.{name} at {where}")
                self.active = True
            return original(tensor, *args, **kwargs)

        return read


@pytest.fixture
def host_reads(monkeypatch) -> _HostReads:
    """Counts host reads of tensors made between tick boundaries of Trainer.run.

    The tick boundary (Trainer._tick_row: the stats row; Trainer.snapshot) and the data
    source (decoding on the CPU) may read; everything else in the loop may not.
    """
    reads = _HostReads()
    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, reads.wrap(name, getattr(torch.Tensor, name)))
    for name in ("_tick_row", "snapshot"):
        original = getattr(Trainer, name)

        def unguarded(self, *args, _original=original, **kwargs):
            with reads.paused():
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(Trainer, name, unguarded)
    return reads


def _guarded_batches(dataset: ImageDataset, config: TrainConfig, reads: _HostReads):
    def batches(start: int):
        with reads.paused():
            source = batches_from(dataset, config)(start)
        while True:
            with reads.paused():
                batch = next(source)
            yield batch

    return batches


@pytest.mark.parametrize("aug", ["none", "ada"])
def test_no_host_reads_between_ticks(shapes16, tmp_path: Path, host_reads: _HostReads, aug: str):
    # Every phase runs (lazy R1 and path length every 2nd minibatch), ADA adjusts p every
    # 2nd minibatch: 8 minibatches in 2 ticks.
    config = tiny_config(
        16,
        aug=aug,
        augment_p=0.3,
        ada_interval=2,
        ada_kimg=1,
        r1_interval=2,
        pl_interval=2,
        total_kimg=0.032,
        tick_kimg=0.016,
        snap=100,
    )
    augmentation = None
    if aug == "ada":
        # Blit and colour: the general geometric warp reads its padding on the host (as
        # published) and is left out here.
        no_warp = {name: 0.0 for name in GEOM}
        pipe = AugmentPipe(dataclasses.replace(AugmentConfig.preset("bgc"), **no_warp))
        pipe.p.fill_(config.augment_p)
        ada = AdaController(target=0.0, ada_kimg=config.ada_kimg, interval=2, batch=config.batch)
        augmentation = Augmentation(pipe=pipe, ada=ada)
    paths = RunPaths(tmp_path / "run", tmp_path / "m.safetensors")
    trainer = Trainer(config, paths=paths, device="cpu", augmentation=augmentation)
    host_reads.active = True
    result = trainer.run(
        _guarded_batches(shapes16, config, host_reads), stop=StopFlag(), progress=False
    )
    host_reads.active = False
    assert result.batch_idx == 8
    assert "\n".join(sorted(set(host_reads.seen))) == ""
    rows = read_stats(paths.stats_path)
    assert [r["kimg"] for r in rows] == pytest.approx([0.016, 0.032])
    for key in ("loss_G", "loss_D", "loss_r1", "loss_pl"):
        assert all(isinstance(r[key], float) for r in rows), key
    if aug == "ada":
        assert all(-1 <= r["real_sign"] <= 1 and -1 <= r["rt"] <= 1 for r in rows)
        assert float(pipe.p) != pytest.approx(0.3)  # ADA moved p, on the device


# -- the optimizer -----------------------------------------------------------------------------


def _stepped(config: TrainConfig, dataset: ImageDataset, tmp_path: Path, steps: int) -> Trainer:
    trainer = Trainer(config, paths=RunPaths(tmp_path, tmp_path / "m.safetensors"), device="cpu")
    batches = batches_from(dataset, config)(0)
    for _ in range(steps):
        trainer.step(*next(batches))
    return trainer


def test_adam_is_foreach_on_the_cpu_and_fused_on_cuda():
    assert training_loop.adam_impl(torch.device("cpu")) == {"fused": False, "foreach": True}
    assert training_loop.adam_impl(torch.device("cuda", 0)) == {"fused": True, "foreach": False}
    # The reference (bench): the for-loop Adam everywhere.
    for device in ("cpu", "cuda"):
        impl = training_loop.adam_impl(torch.device(device), fast=False)
        assert impl == {"fused": False, "foreach": False}


@pytest.mark.parametrize(
    "impl",
    [{"fused": False, "foreach": False}, {"fused": True, "foreach": False}],
    ids=["for-loop", "fused"],
)
def test_adam_implementations_give_the_same_weights(shapes16, tmp_path, monkeypatch, impl):
    # Every phase twice: Gboth/Dboth-style lazy groups (interval 2) and the main ones.
    config = tiny_config(16, r1_interval=2, pl_interval=2)
    default = _stepped(config, shapes16, tmp_path / "a", steps=4)
    assert all(g["foreach"] for ph in default.phases for g in ph.opt.param_groups)
    monkeypatch.setattr(training_loop, "adam_impl", lambda device, fast=True: impl)
    other = _stepped(config, shapes16, tmp_path / "b", steps=4)
    assert all(g["fused"] == impl["fused"] for ph in other.phases for g in ph.opt.param_groups)
    for net in ("G", "D", "G_ema"):
        a, b = getattr(default, net).state_dict(), getattr(other, net).state_dict()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_a_fused_checkpoint_resumes_with_this_devices_adam(shapes16, tmp_path, monkeypatch):
    config = tiny_config(16, r1_interval=2, pl_interval=2)
    # What a CUDA run saves: param groups that say fused=True.
    monkeypatch.setattr(
        training_loop, "adam_impl", lambda device, fast=True: {"fused": True, "foreach": False}
    )
    saved = _stepped(config, shapes16, tmp_path, steps=2)
    saved.snapshot()
    monkeypatch.undo()
    resumed = Trainer(config, paths=saved.paths, device="cpu")
    resumed.load_state(saved.paths.state_path)
    for phase in resumed.phases:
        for group in phase.opt.param_groups:
            assert group["foreach"] is True and group["fused"] is False
    batches = batches_from(shapes16, config)(resumed.items_drawn)
    resumed.step(*next(batches))  # and it steps
    assert resumed.batch_idx == 3


def test_g_ema_follows_g_as_one_parameter_at_a_time(shapes16, tmp_path):
    config = tiny_config(16, ema_kimg=0.01)
    trainer = _stepped(config, shapes16, tmp_path, steps=2)
    before = {k: v.clone() for k, v in trainer.G_ema.state_dict().items()}
    trainer.cur_nimg += 4
    trainer._update_ema()
    beta = 0.5 ** (config.batch / min(config.ema_kimg * 1000, trainer.cur_nimg * config.ema_rampup))
    after = trainer.G_ema.state_dict()
    for name, p in trainer.G.named_parameters():
        assert torch.equal(after[name], p.lerp(before[name], beta)), name
    for name, b in trainer.G.named_buffers():
        assert torch.equal(after[name], b), name


# -- start-up and the first tick ---------------------------------------------------------------


def _slow_first_step(monkeypatch, seconds: float) -> None:
    """The first step of each Trainer sleeps `seconds`: one-time work such as cuDNN tuning."""
    original = Trainer.step

    def step(self, *args):
        if not getattr(self, "_slept", False):
            self._slept = True
            time.sleep(seconds)
        return original(self, *args)

    monkeypatch.setattr(Trainer, "step", step)


def test_start_up_is_reported_apart_from_the_first_ticks_speed(shapes16, tmp_path, monkeypatch):
    _slow_first_step(monkeypatch, 1.0)
    config = tiny_config(
        16, r1_interval=2, pl_interval=2, total_kimg=0.032, tick_kimg=0.016, snap=100
    )
    paths = RunPaths(tmp_path / "run", tmp_path / "m.safetensors")
    result = train(config, batches=batches_from(shapes16, config), paths=paths, progress=False)
    first, second = read_stats(paths.stats_path)
    assert first["startup_s"] >= 1.0 and "startup_s" not in second
    assert first["startup_peak_memory_mb"] > 0
    # With the 1 s in it, the first tick would be over 62 s/kimg (1 s / 0.016 kimg).
    assert first["sec_per_kimg"] < 31 and first["sec_per_tick"] >= 1.0
    assert result.startup_seconds >= 1.0 and result.seconds_per_kimg < 31


def test_a_resumed_run_starts_up_until_each_phase_ran(shapes16, tmp_path):
    config = tiny_config(16, r1_interval=4, pl_interval=3)
    trainer = _stepped(config, shapes16, tmp_path, steps=5)
    # Greg is due at minibatch 6, Dreg at 8: start-up is minibatches 5, 6, 7 and 8.
    assert trainer._warm_up_steps() == 4
    assert Trainer(config, paths=trainer.paths, device="cpu")._warm_up_steps() == 1


def test_the_eta_of_a_resumed_run_leaves_out_start_up_and_earlier_calls(
    shapes16, tmp_path, monkeypatch
):
    bars = []

    class RecordingBar(training_loop.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

        def close(self):
            self.last_dict = dict(self.format_dict)
            super().close()

    monkeypatch.setattr(training_loop, "tqdm", RecordingBar)
    paths = RunPaths(tmp_path / "run", tmp_path / "m.safetensors")
    first = tiny_config(16, r1_interval=2, pl_interval=2, total_kimg=0.016, tick_kimg=0.008)
    train(first, batches=batches_from(shapes16, first), paths=paths, progress=True)
    _slow_first_step(monkeypatch, 1.0)
    bars.clear()
    resumed = tiny_config(16, r1_interval=2, pl_interval=2, total_kimg=0.032, tick_kimg=0.008)
    train(resumed, batches=batches_from(shapes16, resumed), paths=paths, resume=True)
    start_up, bar = bars
    assert start_up.last_dict["prefix"] == "start-up" and start_up.leave is False
    info = bar.last_dict
    assert info["initial"] == pytest.approx(0.020)  # resumed at 0.016, + the start-up minibatch
    assert info["n"] == pytest.approx(0.032)
    assert info["elapsed"] < 1.0  # the 1 s of start-up is not in the rate
    rate = (info["n"] - info["initial"]) / info["elapsed"]
    eta = RecordingBar.format_meter(**{**info, "n": 0.024, "rate": rate})
    assert "<00:0" in eta  # at this rate the remaining 0.008 kimg take seconds, not minutes


# -- CUDA ------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_steps_between_ticks_never_wait_for_the_gpu(shapes16, tmp_path, monkeypatch):
    # CUDA's own detector: any synchronizing call (a host read, a blocking copy, a
    # pageable-memory transfer) inside a step raises.
    config = tiny_config(
        16, r1_interval=2, pl_interval=2, total_kimg=0.032, tick_kimg=0.016, snap=100
    )
    original = Trainer.step

    def strict_step(self, *args):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return original(self, *args)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    trainer = Trainer(config, paths=RunPaths(tmp_path, tmp_path / "m"), device="cuda")
    batches = batches_from(shapes16, config)(0)
    trainer.step(*next(batches))  # start-up: lazy init, cuDNN tuning, op loading may sync
    monkeypatch.setattr(Trainer, "step", strict_step)
    for _ in range(7):
        real, c = next(batches)
        trainer.step(real.pin_memory(), c.pin_memory())  # as the CUDA loader pins them
    assert trainer.batch_idx == 8


# -- optional levers (off by default until measured on a GPU) -------------------------------------


def _lever_trainer(config: TrainConfig, tmp_path: Path, **levers) -> Trainer:
    return Trainer(
        config,
        paths=RunPaths(tmp_path, tmp_path / "m.safetensors"),
        device="cpu",
        speed=SpeedOptions(**levers),
    )


def test_channels_last_trains_like_the_default_layout(shapes16, tmp_path, monkeypatch):
    config = tiny_config(16, r1_interval=2, pl_interval=2)
    default = _stepped(config, shapes16, tmp_path / "a", steps=2)
    layouts = []

    def record(module, args):
        layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))

    lever = _lever_trainer(config, tmp_path / "b", channels_last=True)
    for name in ("G", "D"):
        for block in getattr(lever, name).modules():
            if type(block).__name__ in ("Conv2dLayer", "SynthesisLayer"):
                block.register_forward_pre_hook(record)
    batches = batches_from(shapes16, config)(0)
    for _ in range(2):
        lever.step(*next(batches))
    assert layouts and sum(layouts) > len(layouts) // 2  # most convolutions see NHWC
    assert not any(b.lever_channels_last for b in lever.G_ema.modules() if hasattr(b, "lever_bf16"))
    for net in ("G", "D", "G_ema"):
        a, b = getattr(default, net).state_dict(), getattr(lever, net).state_dict()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_blocks_stay_within_bfloat16_of_float32(shapes16, tmp_path):
    # At 16² the blocks at 8² and 16² are the reduced-precision ones (num_fp16_res 4).
    config = tiny_config(16)
    fp32 = _lever_trainer(config, tmp_path / "a")
    bf16 = _lever_trainer(config, tmp_path / "b", bf16=True)
    z = torch.randn([4, config.z_dim], generator=torch.Generator().manual_seed(0))
    c = torch.zeros([4, 0])
    dtypes = []
    block = bf16.G.synthesis.b16
    block.conv0.register_forward_pre_hook(lambda m, args: dtypes.append(args[0].dtype))
    images = [t.G(z, c, noise_mode="const") for t in (fp32, bf16)]
    assert dtypes == [torch.bfloat16]
    assert images[1].dtype == torch.float32
    torch.testing.assert_close(images[1], images[0], rtol=0, atol=0.05)
    logits, grads = [], []
    for t in (fp32, bf16):
        params = [p.requires_grad_() for p in t.D.parameters()]
        out = t.D(images[0].detach(), c)
        logits.append(out.detach())
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(out.sum(), params)]))
        t.D.requires_grad_(False)
    torch.testing.assert_close(logits[1], logits[0], rtol=0.05, atol=0.05)
    # The gradients point the same way.
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0.99
    batches = batches_from(shapes16, config)(0)
    stats = bf16.step(*next(batches))  # a whole step runs, with finite losses
    assert all(torch.isfinite(v).all() for v in stats.values())


def test_a_run_that_ends_within_start_up_keeps_its_bar(shapes16, tmp_path, capsys):
    config = tiny_config(16, total_kimg=0.004, tick_kimg=0.004)  # one minibatch: all start-up
    paths = RunPaths(tmp_path / "run", tmp_path / "m.safetensors")
    result = train(config, batches=batches_from(shapes16, config), paths=paths)
    assert result.batch_idx == 1 and result.startup_seconds > 0
    assert math.isnan(result.seconds_per_kimg)  # nothing was timed after start-up
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "0.004/0.004 kimg" in bar
