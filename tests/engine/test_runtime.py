"""The generator runtime: models loaded once, per-line noise, uint8 frames as NVlabs converts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.trainers.checkpoint import load_model, save_model
from lyriscope.trainers.random_model import random_generator


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "m.safetensors"
    G = random_generator(32, channel_base=256, channel_max=32, mapping_layers=2, seed=3)
    with (
        torch.no_grad()
    ):  # a fresh model starts with its noise switched off; a trained one has some
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    save_model(path, G)
    return path


def test_frames_equal_nvlabs_conversion_of_the_model_output(model_path: Path):
    gen = Generator([model_path], options=RuntimeOptions(device="cpu"))
    G = load_model(model_path)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    expected = G.synthesis(ws, noise_mode="const").permute(0, 2, 3, 1) * 127.5 + 128
    expected = expected.clamp(0, 255).to(torch.uint8).numpy()
    frames = gen.synthesize(0, ws)
    assert frames.dtype == np.uint8 and frames.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(frames, expected)


def test_lines_sharing_a_file_share_its_weights_but_keep_their_own_noise(model_path: Path):
    gen = Generator(
        [model_path, model_path, model_path],
        options=RuntimeOptions(device="cpu"),
        noise_modes=["const", "none", "const"],
    )
    assert gen.line(0) is gen.line(2)
    assert gen.line(0).G is gen.line(1).G
    ws = gen.line(0).mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(1)))
    grainy, smooth = gen.synthesize(0, ws), gen.synthesize(1, ws)
    assert np.abs(grainy.astype(int) - smooth).mean() > 1  # the noise inputs matter
    np.testing.assert_array_equal(gen.synthesize(2, ws), grainy)  # const: same every call


def test_noise_modes_must_match_the_lines(model_path: Path):
    with pytest.raises(ValueError, match="one entry per model"):
        Generator([model_path], noise_modes=["const", "none"])
