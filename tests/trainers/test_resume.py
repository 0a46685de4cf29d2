"""Stopping and resuming training: exact continuation, signals, and kill -9 during snapshots."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from dataset_zips import batches_from, shapes_zip

from lyriscope.trainers.augment import AdaController, AugmentPipe
from lyriscope.trainers.checkpoint import load_training_state
from lyriscope.trainers.dataset import ImageDataset, make_loader
from lyriscope.trainers.train_config import auto_config
from lyriscope.trainers.training_loop import Augmentation, RunPaths, StopFlag, train

RES = 16
BATCH = 4

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> ImageDataset:
    return ImageDataset(
        shapes_zip(tmp_path_factory.mktemp("data") / "shapes.zip", count=12, res=RES)
    )


def _config(steps: int, **overrides):
    values = dict(
        batch=BATCH,
        channel_base=256,
        channel_max=16,
        z_dim=16,
        w_dim=16,
        r1_interval=2,
        pl_interval=3,
        aug="ada",
        augment_p=0.5,
        ada_interval=2,
        ada_kimg=1,
        total_kimg=steps * BATCH / 1000,
        tick_kimg=2 * BATCH / 1000,
        snap=1,
        workers=0,
        metrics=(),
    )
    values.update(overrides)
    return auto_config(RES, **values)


def _augmentation(config) -> Augmentation:
    pipe = AugmentPipe()
    pipe.p.fill_(config.augment_p)
    ada = AdaController(
        target=config.ada_target,
        ada_kimg=config.ada_kimg,
        interval=config.ada_interval,
        batch=config.batch,
    )
    return Augmentation(pipe=pipe, ada=ada)


def _run(dataset, run_dir: Path, config, **kw):
    return train(
        config,
        batches=batches_from(dataset, config),
        augmentation=_augmentation(config),
        paths=RunPaths(run_dir, run_dir / "model.safetensors"),
        progress=False,
        fingerprint=dataset.fingerprint(),
        **kw,
    )


def _assert_same_networks(a: dict, b: dict) -> None:
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for name in a[net]:
            assert torch.equal(a[net][name], b[net][name]), f"{net}.{name} differs"


def test_resume_continues_exactly_like_one_run(dataset, tmp_path: Path):
    n = 5  # odd on purpose: stops between ADA adjustments and lazy-regularization steps
    whole = _run(dataset, tmp_path / "whole", _config(2 * n))
    _run(dataset, tmp_path / "split", _config(n))
    half = load_training_state(tmp_path / "split" / "training-state.pt")
    assert half["batch_idx"] == n
    resumed = _run(dataset, tmp_path / "split", _config(2 * n), resume=True)
    assert whole.batch_idx == resumed.batch_idx == 2 * n
    a = load_training_state(tmp_path / "whole" / "training-state.pt")
    b = load_training_state(tmp_path / "split" / "training-state.pt")
    _assert_same_networks(a, b)
    assert torch.equal(a["pl_mean"], b["pl_mean"]) and a["pl_mean"] > 0  # PL ran
    assert torch.equal(a["augment_pipe"]["p"], b["augment_pipe"]["p"])
    assert a["augment_pipe"]["p"] != 0.5  # ADA moved p
    assert a["items_drawn"] == b["items_drawn"] == 2 * n * BATCH


def test_stop_request_saves_a_checkpoint_at_the_step_boundary(dataset, tmp_path: Path):
    config = _config(100)
    stop = StopFlag()
    taken = []

    def batches(start: int):
        for batch in make_loader(dataset, batch=BATCH, workers=0, start=start):
            taken.append(batch)
            if len(taken) == 3:
                stop.request(signal.SIGTERM)
            yield batch

    result = train(
        config,
        batches=batches,
        paths=RunPaths(tmp_path, tmp_path / "m.safetensors"),
        stop=stop,
        progress=False,
    )
    assert result.stopped_by == signal.SIGTERM
    state = load_training_state(tmp_path / "training-state.pt")
    assert state["batch_idx"] == 3 and state["cur_nimg"] == 3 * BATCH
    # The stopped run shows what it learned: a sample grid at the stop.
    paths = RunPaths(tmp_path, tmp_path / "m.safetensors")
    assert sorted(tmp_path.glob("samples-*.png"))[-1] == paths.samples_path(3 * BATCH)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_run_with_a_checkpoint_and_a_sample_grid(dataset, tmp_path, signum):
    config = _config(100, tick_kimg=1, snap=100)  # no tick, no snapshot before the signal
    taken = []

    def batches(start: int):
        for batch in make_loader(dataset, batch=BATCH, workers=0, start=start):
            taken.append(batch)
            if len(taken) == 2:
                os.kill(os.getpid(), signum)  # as Ctrl-C or `kill` would
            yield batch

    paths = RunPaths(tmp_path, tmp_path / "m.safetensors")
    result = train(config, batches=batches, paths=paths, handle_signals=True, progress=False)
    assert result.stopped_by == signum and result.batch_idx == 2
    assert sorted(tmp_path.glob("samples-*.png")) == [paths.samples_path(2 * BATCH)]
    assert load_training_state(paths.state_path)["batch_idx"] == 2


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


_TRAIN_SCRIPT = """
import sys, torch
from pathlib import Path
torch.set_num_threads(1)
sys.path.insert(0, {here!r})
from test_resume import _config, _run
from lyriscope.trainers.dataset import ImageDataset
_run(ImageDataset({data!r}), Path({run!r}), _config(10_000, tick_kimg={tick}), resume=True)
"""


def _state_changed(path: Path, before: int | None):
    return lambda: path.exists() and path.stat().st_mtime_ns != before


@pytest.mark.parametrize("kills", [2, pytest.param(6, marks=pytest.mark.slow)])
def test_kill_during_snapshots_never_loses_the_last_good_checkpoint(
    dataset, tmp_path: Path, kills: int
):
    run = tmp_path / "run"
    state_path = run / "training-state.pt"
    script = _TRAIN_SCRIPT.format(
        here=str(Path(__file__).parent), data=str(dataset.path), run=str(run), tick=BATCH / 1000
    )  # a snapshot every step
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(kills)
    progress = []
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            before = state_path.stat().st_mtime_ns if state_path.exists() else None
            if not _wait_for(_state_changed(state_path, before), 60):
                proc.kill()
                pytest.fail(f"no new snapshot within 60 s: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(rng.uniform(0.0, 0.6))  # somewhere inside a later snapshot, or not
        finally:
            proc.kill()  # SIGKILL: no handler runs
            proc.wait()
        state = load_training_state(state_path)  # never torn
        progress.append(state["batch_idx"])
    assert progress == sorted(progress) and progress[-1] > progress[0]  # resumed each time
    done = progress[-1] + 2
    result = _run(dataset, run, _config(done), resume=True)
    assert result.batch_idx == done and result.stopped_by is None
    assert not list(run.glob(".*.part"))  # temp files of the killed writes are cleaned up


def test_a_new_run_does_not_overwrite_an_existing_checkpoint(dataset, tmp_path: Path):
    from lyriscope.errors import CheckpointError

    _run(dataset, tmp_path, _config(1))
    with pytest.raises(CheckpointError, match="--resume"):
        _run(dataset, tmp_path, _config(2))
    assert load_training_state(tmp_path / "training-state.pt")["batch_idx"] == 1
