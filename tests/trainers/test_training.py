"""The training loop: 'auto' configuration, losses, lazy regularization, freezing, snapshots, learning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_zips import batches_from, shapes_zip
from PIL import Image
from tiny_configs import tiny_config

from lyriscope.errors import CheckpointError, LyriscopeError
from lyriscope.trainers.augment import AdaController, AugmentPipe
from lyriscope.trainers.checkpoint import load_model, read_model_config, save_model
from lyriscope.trainers.dataset import ImageDataset
from lyriscope.trainers.loss import StyleGAN2Loss
from lyriscope.trainers.train_config import TrainConfig, auto_config
from lyriscope.trainers.training_loop import (
    Augmentation,
    BaseNetworks,
    RunPaths,
    Trainer,
    read_stats,
    train,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# -- configuration --------------------------------------------------------------------------

# (res, gpus) -> (mb, mbstd, channel_base, lr, gamma, ema_kimg), worked out by hand from
# train.py's 'auto' spec.
AUTO = {
    (32, 1): (32, 4, 16384, 0.0025, 0.0064, 10.0),
    (256, 1): (16, 4, 16384, 0.0025, 0.8192, 5.0),
    (512, 2): (16, 4, 32768, 0.0025, 3.2768, 5.0),
    (1024, 8): (32, 4, 32768, 0.002, 6.5536, 10.0),
    (1024, 1): (4, 4, 32768, 0.002, 52.4288, 1.25),
}


@pytest.mark.parametrize(("res", "gpus"), list(AUTO))
def test_auto_config_follows_the_published_formulas(res: int, gpus: int):
    mb, mbstd, cbase, lr, gamma, ema = AUTO[(res, gpus)]
    c = auto_config(res, gpus=gpus)
    assert (c.batch, c.mbstd_group, c.channel_base, c.lr) == (mb, mbstd, cbase, lr)
    assert c.r1_gamma == pytest.approx(gamma) and c.ema_kimg == pytest.approx(ema)
    assert (c.mapping_layers, c.channel_max, c.num_fp16_res, c.conv_clamp, c.ema_rampup) == (
        2,
        512,
        4,
        256,
        0.05,
    )
    assert (c.r1_interval, c.pl_interval, c.pl_weight, c.style_mixing) == (16, 4, 2.0, 0.9)
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(res=48), "power of two"),
        (dict(res=64, gpus=3, batch=16), "multiple"),
        (dict(res=64, aug="always"), "--aug"),
        (dict(res=64, metrics=("is",)), "--metrics"),
    ],
)
def test_bad_settings_are_one_clear_error(kwargs: dict, match: str):
    res = kwargs.pop("res")
    with pytest.raises(LyriscopeError, match=match):
        auto_config(res, **kwargs)


# -- losses -------------------------------------------------------------------------------


class LinearD(torch.nn.Module):
    """D(x) = <w, x>: its R1 penalty is |w|² for every image, so d(penalty)/dw = 2w."""

    def __init__(self, res: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(1, 3, res, res))

    def forward(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return (img * self.w).sum(dim=[1, 2, 3])[:, None]


def test_lazy_r1_gradient_is_gamma_times_interval_times_w():
    config = tiny_config(8)
    trainer = Trainer(config, paths=RunPaths(Path("."), Path("m")), device="cpu")
    D = LinearD(8)
    loss = StyleGAN2Loss(trainer.G, D, r1_gamma=0.5)
    real = torch.rand(4, 3, 8, 8) * 2 - 1
    loss.accumulate_gradients(
        "Dreg", real, torch.zeros(4, 0), torch.randn(4, 16), torch.zeros(4, 0), gain=16
    )
    torch.testing.assert_close(D.w.grad, 0.5 * 16 * D.w.detach())


def test_lazy_regularization_scales_adam_and_keeps_both_phases():
    trainer = Trainer(
        tiny_config(8, pl_interval=4, r1_interval=16),
        paths=RunPaths(Path("."), Path("m")),
        device="cpu",
    )
    by_name = {p.name: p for p in trainer.phases}
    assert list(by_name) == ["Gmain", "Greg", "Dmain", "Dreg"]
    for net, interval in (("G", 4), ("D", 16)):
        ratio = interval / (interval + 1)
        group = by_name[f"{net}main"].opt.param_groups[0]
        assert by_name[f"{net}reg"].interval == interval
        assert group["lr"] == pytest.approx(0.0025 * ratio)
        assert group["betas"] == pytest.approx((0.0, 0.99**ratio))


# -- a short run ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes16(tmp_path_factory) -> ImageDataset:
    return ImageDataset(shapes_zip(tmp_path_factory.mktemp("d") / "s16.zip", count=8, res=16))


def test_a_run_writes_state_model_samples_and_stats(shapes16: ImageDataset, tmp_path: Path):
    config = tiny_config(16, r1_interval=2, pl_interval=2, total_kimg=0.016, tick_kimg=0.008)
    paths = RunPaths(tmp_path / "run", tmp_path / "models" / "line-01.safetensors")
    result = train(
        config,
        batches=batches_from(shapes16, config),
        paths=paths,
        progress=False,
        fingerprint=shapes16.fingerprint(),
    )
    assert result.kimg == pytest.approx(0.016) and result.stopped_by is None
    rows = read_stats(paths.stats_path)
    assert [r["kimg"] for r in rows] == pytest.approx([0.008, 0.016])
    for key in ("loss_G", "loss_D", "loss_r1", "loss_pl", "p", "sec_per_kimg", "peak_memory_mb"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert sorted(paths.run_dir.glob("samples-*.png")) == [
        paths.samples_path(8),
        paths.samples_path(16),
    ]  # a grid at each snapshot, named by the images shown
    grid = Image.open(paths.samples_path(16))
    assert grid.size == (4 * 16, 4 * 16)
    info = read_model_config(paths.model_path)
    assert info["kimg"] == pytest.approx(0.016)
    assert info["dataset_fingerprint"] == shapes16.fingerprint()
    G = load_model(paths.model_path)
    assert G.img_resolution == 16 and G.mapping.w_avg.abs().sum() > 0  # w_avg tracked


def test_frozen_discriminator_layers_do_not_move(shapes16: ImageDataset, tmp_path: Path):
    config = tiny_config(16, freeze_d=2, r1_interval=2, pl_weight=0.0)
    trainer = Trainer(config, paths=RunPaths(tmp_path, tmp_path / "m.safetensors"), device="cpu")
    before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    batches = batches_from(shapes16, config)(0)
    for _ in range(2):
        trainer.step(*next(batches))
    after = trainer.D.state_dict()
    frozen = ("b16.fromrgb.weight", "b16.fromrgb.bias", "b16.conv0.weight", "b16.conv0.bias")
    for name in frozen:
        assert torch.equal(before[name], after[name]), name
    for name in ("b16.conv1.weight", "b8.conv0.weight", "b4.out.weight"):
        assert not torch.equal(before[name], after[name]), name
    assert not any(p.requires_grad for p in trainer.D.parameters())


def test_transfer_starts_from_the_base_generator(tmp_path: Path):
    config = tiny_config(16)
    base = Trainer(
        replace_seed(config, 7), paths=RunPaths(tmp_path, tmp_path / "m"), device="cpu"
    ).G
    save_model(tmp_path / "base.safetensors", base)
    loaded = load_model(tmp_path / "base.safetensors")
    trainer = Trainer(config, paths=RunPaths(tmp_path, tmp_path / "m"), device="cpu")
    trainer.load_base(BaseNetworks(G_state=loaded.state_dict(), source="base"))
    for name, value in base.state_dict().items():
        assert torch.equal(trainer.G.state_dict()[name], value)
        assert torch.equal(trainer.G_ema.state_dict()[name], value)
    other = Trainer(tiny_config(32), paths=RunPaths(tmp_path, tmp_path / "m"), device="cpu")
    with pytest.raises(CheckpointError, match="does not match"):
        other.load_base(BaseNetworks(G_state=loaded.state_dict(), source="base"))


def replace_seed(config: TrainConfig, seed: int) -> TrainConfig:
    return TrainConfig.from_dict({**config.to_dict(), "seed": seed})


# -- learning (slow) --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_training_lowers_kid_against_the_dataset(tmp_path: Path):
    from lyriscope.trainers.feature_nets import feature_net
    from lyriscope.trainers.metrics import evaluate

    dataset = ImageDataset(shapes_zip(tmp_path / "s32.zip", count=200, res=32), mirror=True)
    config = auto_config(
        32,
        batch=8,
        channel_base=1024,
        channel_max=32,
        z_dim=32,
        w_dim=32,
        aug="none",
        total_kimg=2,
        tick_kimg=0.5,
        snap=100,
        workers=0,
        metrics=(),
        ema_kimg=0.25,
    )
    net = feature_net(None, device="cpu")
    untrained = Trainer(config, paths=RunPaths(tmp_path, tmp_path / "m"), device="cpu").G_ema

    def kid(G) -> float:
        return evaluate(G, dataset, net=net, num_gen=400, metrics=("kid",), seed=1).kid

    before = kid(untrained)
    paths = RunPaths(tmp_path / "run", tmp_path / "model.safetensors")
    result = train(config, batches=batches_from(dataset, config), paths=paths, progress=False)
    after = kid(load_model(paths.model_path))
    print(f"32²: {result.seconds_per_kimg:.1f} s/kimg on CPU; KID {before:.4f} -> {after:.4f}")
    assert after < 0.3 * before


@pytest.mark.slow
def test_ada_raises_p_when_d_overfits_eight_images(tmp_path: Path):
    dataset = ImageDataset(shapes_zip(tmp_path / "s8.zip", count=8, res=16))
    # p may move by 0.16 per adjustment (every 4 minibatches of 4): ADA reacts within the run.
    config = tiny_config(
        16,
        aug="ada",
        ada_interval=4,
        ada_kimg=0.1,
        total_kimg=0.4,
        tick_kimg=0.05,
        snap=100,
        pl_weight=0.0,
    )
    pipe = AugmentPipe()
    ada = AdaController(
        target=config.ada_target,
        ada_kimg=config.ada_kimg,
        interval=config.ada_interval,
        batch=config.batch,
    )
    train(
        config,
        batches=batches_from(dataset, config),
        augmentation=Augmentation(pipe, ada),
        paths=RunPaths(tmp_path / "run", tmp_path / "m.safetensors"),
        progress=False,
    )
    rows = read_stats(tmp_path / "run" / "stats.jsonl")
    # D tells the 8 real images apart (E[sign D(real)] above the 0.6 target), so p goes up.
    assert np.mean([r["real_sign"] for r in rows]) > config.ada_target
    assert max(r["p"] for r in rows) >= 0.3 and rows[-1]["p"] > 0


def test_the_progress_bar_ends_at_the_total_with_no_warning(shapes16, tmp_path, capsys):
    # 0.010 kimg at batch 4: the third batch passes the total (12 images of 10).
    config = tiny_config(16, total_kimg=0.010, tick_kimg=0.010)
    paths = RunPaths(tmp_path / "run", tmp_path / "models" / "line-01.safetensors")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(config, batches=batches_from(shapes16, config), paths=paths, progress=True)
    assert not [w for w in caught if "clamping frac" in str(w.message)]
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "0.010/0.010 kimg" in bar and "<-" not in bar  # full, and no negative time left
