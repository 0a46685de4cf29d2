"""The smallest training configuration the trainer tests run: a few minibatches of tiny nets."""

from __future__ import annotations

from lyriscope.trainers.train_config import TrainConfig, auto_config


def tiny_config(res: int, **overrides) -> TrainConfig:
    """auto_config at res with 16-channel nets, batch 4, two 4-image ticks; overrides win."""
    values = dict(
        batch=4,
        channel_base=256,
        channel_max=16,
        z_dim=16,
        w_dim=16,
        aug="none",
        total_kimg=0.008,
        tick_kimg=0.004,
        snap=1,
        workers=0,
        metrics=(),
    )
    values.update(overrides)
    return auto_config(res, **values)
