"""Training presets (--cfg): NVlabs' published configurations and ours, explicit values winning."""

from __future__ import annotations

import pytest

from lyriscope.errors import LyriscopeError
from lyriscope.trainers.train_config import PRESETS, auto_config, preset_config

# NVlabs train.py cfg_specs: (mb, mbstd, fmaps, lrate, gamma, ema, ramp, map) at 8 GPUs.
PUBLISHED = {
    "stylegan2": (32, 4, 1.0, 0.002, 10.0, 10.0, None, 8),
    "paper256": (64, 8, 0.5, 0.0025, 1.0, 20.0, None, 8),
    "paper512": (64, 8, 1.0, 0.0025, 0.5, 20.0, None, 8),
    "paper1024": (32, 4, 1.0, 0.002, 2.0, 10.0, None, 8),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_paper_presets_are_nvlabs_configurations(name):
    mb, mbstd, fmaps, lr, gamma, ema, ramp, depth = PUBLISHED[name]
    c = preset_config(name, 256, gpus=8)
    assert (c.batch, c.mbstd_group, c.channel_base, c.lr) == (mb, mbstd, int(fmaps * 32768), lr)
    assert (c.r1_gamma, c.ema_kimg, c.ema_rampup, c.mapping_layers) == (gamma, ema, ramp, depth)


def test_auto_is_the_auto_formula_and_small_presets_shrink_only_the_widths():
    assert preset_config("auto", 256, gpus=2) == auto_config(256, gpus=2)
    tiny, auto = preset_config("tiny", 64), auto_config(64)
    assert (tiny.channel_base, tiny.channel_max, tiny.batch) == (2048, 64, 16)
    assert tiny.r1_gamma == pytest.approx(0.0002 * 64**2 / 16)  # the formula, at its batch
    small = preset_config("small", 512)
    assert (small.channel_base, small.channel_max) == (8192, 256)
    assert (small.batch, small.lr) == (auto_config(512).batch, auto.lr)


def test_a_batch_or_gamma_given_wins_and_the_rest_follows_the_batch():
    c = preset_config("paper256", 256, gpus=1, batch=16, r1_gamma=0.5, channel_max=128)
    assert (c.batch, c.r1_gamma, c.channel_max) == (16, 0.5, 128)
    assert (c.mbstd_group, c.ema_kimg) == (4, 16 * 10 / 32)  # not the preset's 8 and 20
    assert c.mapping_layers == 8 and c.ema_rampup is None  # the preset's own


def test_every_preset_says_what_it_is_for_and_an_unknown_one_is_refused():
    assert all(p.help for p in PRESETS.values())
    with pytest.raises(LyriscopeError, match=r"--cfg 'huge': choose one of auto, tiny"):
        preset_config("huge", 256)
