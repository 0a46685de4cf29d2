"""Training configuration: the published "auto" formulas and the frozen TrainConfig they fill.

NVlabs stylegan2-ada-pytorch's train.py picks its 'auto' settings from the resolution and
the GPU count:
    mb     = max(min(gpus * min(4096 // res, 32), 64), gpus)   # global minibatch
    mbstd  = min(mb // gpus, 4)                                # minibatch-stddev group
    fmaps  = 1 if res >= 512 else 0.5                          # channel_base = fmaps * 32768
    lrate  = 0.002 if res >= 1024 else 0.0025
    gamma  = 0.0002 * res**2 / mb                              # R1 weight
    ema    = mb * 10 / 32                                      # G_ema half-life in kimg
    ramp   = 0.05, map = 2, channel_max 512, num_fp16_res 4, conv_clamp 256.
One difference: when the batch is overridden, gamma, ema and the mbstd group follow the
batch actually used (train.py keeps the values of the auto batch).

Named presets (PRESETS, `lyriscope train --cfg`) fix some of these values, as train.py's
--cfg does: paper256/512/1024 and stylegan2 are NVlabs', tiny and small are ours.

Example:
    >>> config = auto_config(256, gpus=2, total_kimg=5000)
    >>> config.batch, config.batch_gpu, config.r1_gamma
    (32, 16, 0.4096)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lyriscope.errors import LyriscopeError

AUG_MODES = ("ada", "fixed", "none")
METRIC_NAMES = ("kid", "fid")
# Fields that say how long and how often, not what is trained: a resumed run takes these from
# the command line, everything else from the checkpoint.
RUN_CONTROL_FIELDS = ("total_kimg", "tick_kimg", "snap", "metrics", "workers", "inception")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored in its checkpoint (asdict)."""

    resolution: int  # image side in pixels, a power of two
    img_channels: int = 3  # channels of the dataset images
    c_dim: int = 0  # label dimensionality (0: unconditional)
    gpus: int = 1  # processes taking part (one GPU each; 1 on CPU)
    batch: int = 32  # global minibatch (all GPUs together)
    mbstd_group: int = 4  # minibatch-stddev group size of D
    # Networks.
    z_dim: int = 512  # latent size
    w_dim: int = 512  # intermediate latent size
    mapping_layers: int = 2  # depth of the mapping network
    channel_base: int = 16384  # channels at a resolution = min(channel_base // res, channel_max)
    channel_max: int = 512  # most channels of any layer
    num_fp16_res: int = 4  # top resolutions in float16 (CUDA only)
    conv_clamp: float | None = 256  # clamp of conv outputs; None: no clamp
    use_noise: bool = True  # per-pixel noise inputs of G (False only for exactness tests)
    freeze_d: int = 0  # freeze the first this many layers of D (transfer learning)
    # Optimisation and losses (StyleGAN2Loss).
    lr: float = 0.0025  # Adam learning rate of G and D
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas
    eps: float = 1e-8  # Adam epsilon
    r1_gamma: float = 1.0  # R1 regularization weight
    r1_interval: int = 16  # lazy R1 every this many minibatches (0: with every D step)
    pl_weight: float = 2.0  # path-length regularization weight (0: off)
    pl_interval: int = 4  # lazy path-length regularization every this many minibatches
    pl_batch_shrink: int = 2  # path-length regularization runs on batch / this
    pl_decay: float = 0.01  # decay of the running path-length mean
    style_mixing: float = 0.9  # probability of mixing two latents in a sample
    ema_kimg: float = 10.0  # G_ema half-life in thousands of images
    ema_rampup: float | None = 0.05  # half-life <= cur_nimg * this (None: no ramp-up)
    # Augmentation.
    aug: str = "ada"  # "ada" (adaptive p), "fixed" (p stays at augment_p) or "none"
    augment_p: float = 0.0  # initial (ada) or fixed probability of each augmentation
    ada_target: float = 0.6  # ADA's target sign(D(real)) mean
    ada_interval: int = 4  # adjust p every this many minibatches
    ada_kimg: float = 500.0  # p can go from 0 to 1 in this many kimg
    mirror: bool = False  # x-flip the dataset (doubles it)
    # Schedule and bookkeeping.
    total_kimg: float = 25000.0  # train until this many thousand real images were shown
    tick_kimg: float = 4.0  # one progress line / stats row per this many kimg
    snap: int = 50  # checkpoint every this many ticks
    seed: int = 0  # seed of weights, latents and augmentation
    workers: int = 3  # data-loading worker processes (0: load in the main process)
    metrics: tuple[str, ...] = ("kid",)  # computed at snapshots; () for none
    inception: str | None = None  # feature network file for the metrics (None: built-in)

    def __post_init__(self) -> None:
        res = self.resolution
        if res < 4 or res & (res - 1):
            raise LyriscopeError(
                f"resolution {res}: the image side must be a power of two (e.g. 256, 512, 1024)"
            )
        if self.gpus < 1:
            raise LyriscopeError(f"--gpus {self.gpus}: needs at least 1")
        if self.batch < 1 or self.batch % self.gpus:
            raise LyriscopeError(
                f"--batch {self.batch}: the batch must be a positive multiple "
                f"of the GPU count ({self.gpus})"
            )
        if self.aug not in AUG_MODES:
            raise LyriscopeError(f"--aug {self.aug!r}: choose one of {', '.join(AUG_MODES)}")
        unknown = [m for m in self.metrics if m not in METRIC_NAMES]
        if unknown:
            raise LyriscopeError(
                f"--metrics {unknown[0]!r}: choose from {', '.join(METRIC_NAMES)} or none"
            )
        if self.batch_gpu % self.mbstd_group and self.mbstd_group <= self.batch_gpu:
            raise LyriscopeError(
                f"the per-GPU batch {self.batch_gpu} is not divisible by the "
                f"minibatch-stddev group {self.mbstd_group}"
            )
        if self.pl_weight > 0 and self.batch_gpu < self.pl_batch_shrink:
            raise LyriscopeError(
                f"the per-GPU batch {self.batch_gpu} is smaller than "
                f"pl_batch_shrink {self.pl_batch_shrink}"
            )
        if not 0.0 <= self.augment_p <= 1.0:
            raise LyriscopeError(f"--p {self.augment_p}: a probability from 0 to 1")
        for name in ("total_kimg", "tick_kimg"):
            if getattr(self, name) <= 0:
                raise LyriscopeError(f"{name} {getattr(self, name)}: must be positive")
        if self.snap < 1:
            raise LyriscopeError(f"--snap {self.snap}: must be at least 1 tick")

    @property
    def batch_gpu(self) -> int:
        """Minibatch of one process."""
        return self.batch // self.gpus

    def generator_kwargs(self) -> dict[str, Any]:
        """Constructor kwargs of networks.Generator."""
        synthesis: dict[str, Any] = dict(
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
        )
        if not self.use_noise:
            synthesis["use_noise"] = False
        return dict(
            z_dim=self.z_dim,
            c_dim=self.c_dim,
            w_dim=self.w_dim,
            img_resolution=self.resolution,
            img_channels=self.img_channels,
            mapping_kwargs=dict(num_layers=self.mapping_layers),
            synthesis_kwargs=synthesis,
        )

    def discriminator_kwargs(self) -> dict[str, Any]:
        """Constructor kwargs of networks.Discriminator (resnet, freeze_d, mbstd group)."""
        return dict(
            c_dim=self.c_dim,
            img_resolution=self.resolution,
            img_channels=self.img_channels,
            architecture="resnet",
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
            block_kwargs=dict(freeze_layers=self.freeze_d),
            epilogue_kwargs=dict(mbstd_group_size=self.mbstd_group),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists for tuples) for checkpoints and JSON."""
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        data["metrics"] = list(self.metrics)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The inverse of to_dict; unknown keys (a newer lyriscope) are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise LyriscopeError(
                f"training config has unknown keys {unknown}; it was written by a newer lyriscope"
            )
        values = dict(data)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        if "metrics" in values:
            values["metrics"] = tuple(values["metrics"])
        return cls(**values)


@dataclass(frozen=True)
class SpeedOptions:
    """How a run computes, not what it trains: results agree to float rounding either way.

    Run controls: never stored in a checkpoint, free to change on resume.
    """

    fast_adam: bool = True  # fused Adam on CUDA, foreach elsewhere; False: the for-loop Adam
    channels_last: bool = False  # G's and D's blocks in channels-last format (not yet measured)
    bf16: bool = False  # bfloat16 instead of float16 in the reduced-precision blocks (ditto)


@dataclass(frozen=True)
class Preset:
    """A named training configuration, as NVlabs' train.py --cfg (None: the 'auto' formula)."""

    name: str
    help: str  # what it is for, in --help and the README
    batch: int | None = None  # global minibatch
    mbstd_group: int | None = None
    channel_base: int | None = None  # channels at a resolution = min(base // res, channel_max)
    channel_max: int | None = None
    mapping_layers: int | None = None
    lr: float | None = None
    r1_gamma: float | None = None
    ema_kimg: float | None = None
    ema_rampup: float | None = None  # None keeps the 'auto' ramp; use no_rampup for none
    no_rampup: bool = False  # the paper configs have no G_ema ramp-up


# NVlabs' train.py cfg_specs (paper256/512/1024 for 8 GPUs, stylegan2 = config F), and two of
# ours for trying a line on a small machine: their networks are a fraction of the paper's.
PRESETS: Mapping[str, Preset] = {
    p.name: p
    for p in (
        Preset("auto", "StyleGAN2-ADA's 'auto': sizes and rates from the resolution and GPUs"),
        Preset(
            "tiny",
            "CPU-sized (channel_base 2048, max 64): minutes per kimg at 64², to try a set",
            batch=16,
            channel_base=2048,
            channel_max=64,
            mapping_layers=2,
        ),
        Preset(
            "small",
            "a quarter of the paper's widths (channel_base 8192, max 256): a line on one GPU",
            channel_base=8192,
            channel_max=256,
            mapping_layers=2,
        ),
        Preset(
            "stylegan2",
            "StyleGAN2 config F (batch 32, map 8, gamma 10)",
            batch=32,
            mbstd_group=4,
            channel_base=32768,
            mapping_layers=8,
            lr=0.002,
            r1_gamma=10.0,
            ema_kimg=10.0,
            no_rampup=True,
        ),
        Preset(
            "paper256",
            "the ADA paper at 256² (batch 64, half widths, map 8, gamma 1)",
            batch=64,
            mbstd_group=8,
            channel_base=16384,
            mapping_layers=8,
            lr=0.0025,
            r1_gamma=1.0,
            ema_kimg=20.0,
            no_rampup=True,
        ),
        Preset(
            "paper512",
            "the ADA paper at 512² (batch 64, map 8, gamma 0.5)",
            batch=64,
            mbstd_group=8,
            channel_base=32768,
            mapping_layers=8,
            lr=0.0025,
            r1_gamma=0.5,
            ema_kimg=20.0,
            no_rampup=True,
        ),
        Preset(
            "paper1024",
            "the ADA paper at 1024² (batch 32, map 8, gamma 2)",
            batch=32,
            mbstd_group=4,
            channel_base=32768,
            mapping_layers=8,
            lr=0.002,
            r1_gamma=2.0,
            ema_kimg=10.0,
            no_rampup=True,
        ),
    )
}


def preset_config(
    name: str,
    resolution: int,
    *,
    gpus: int = 1,
    batch: int | None = None,
    r1_gamma: float | None = None,
    **overrides: Any,
) -> TrainConfig:
    """TrainConfig of preset `name` for `resolution` and `gpus`; explicit values win.

    What a preset leaves open follows the 'auto' formulas (see auto_config), computed with
    the preset's batch, so gamma and the G_ema half-life follow the batch used.
    """
    preset = PRESETS.get(name)
    if preset is None:
        raise LyriscopeError(f"--cfg {name!r}: choose one of {', '.join(PRESETS)}")
    fixed = {
        field: getattr(preset, field)
        for field in (
            "mbstd_group",
            "channel_base",
            "channel_max",
            "mapping_layers",
            "lr",
            "ema_kimg",
            "ema_rampup",
        )
        if getattr(preset, field) is not None
    }
    if preset.no_rampup:
        fixed["ema_rampup"] = None
    mb = batch if batch is not None else preset.batch
    if batch is not None:  # a batch of one's own: the group and half-life follow it
        fixed.pop("mbstd_group", None)
        fixed.pop("ema_kimg", None)
    gamma = r1_gamma if r1_gamma is not None else preset.r1_gamma
    return auto_config(resolution, gpus=gpus, batch=mb, r1_gamma=gamma, **{**fixed, **overrides})


def auto_config(
    resolution: int,
    *,
    gpus: int = 1,
    batch: int | None = None,
    r1_gamma: float | None = None,
    **overrides: Any,
) -> TrainConfig:
    """TrainConfig with the published 'auto' defaults for `resolution` and `gpus`.

    `batch` and `r1_gamma` override the formulas (gamma and ema then follow the batch);
    any other TrainConfig field can be given in `overrides`.
    """
    if resolution < 4 or resolution & (resolution - 1):
        raise LyriscopeError(f"resolution {resolution}: the image side must be a power of two")
    if gpus < 1:
        raise LyriscopeError(f"--gpus {gpus}: needs at least 1")
    mb = max(min(gpus * min(4096 // resolution, 32), 64), gpus) if batch is None else batch
    if mb < 1 or mb % gpus:
        raise LyriscopeError(
            f"--batch {mb}: the batch must be a positive multiple of the GPU count ({gpus})"
        )
    fmaps = 1 if resolution >= 512 else 0.5
    values: dict[str, Any] = dict(
        resolution=resolution,
        gpus=gpus,
        batch=mb,
        mbstd_group=min(mb // gpus, 4),
        channel_base=int(fmaps * 32768),
        channel_max=512,
        mapping_layers=2,
        num_fp16_res=4,
        conv_clamp=256,
        lr=0.002 if resolution >= 1024 else 0.0025,
        r1_gamma=0.0002 * resolution**2 / mb if r1_gamma is None else r1_gamma,
        ema_kimg=mb * 10 / 32,
        ema_rampup=0.05,
    )
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"auto_config() got unknown options {unknown}")
    values.update(overrides)
    return TrainConfig(**values)
