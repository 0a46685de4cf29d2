"""The checkpoint formats: .safetensors generators with JSON config, and weights-only training state."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lyriscope.errors import CheckpointError
from lyriscope.trainers.checkpoint import (
    build_generator,
    load_model,
    load_training_state,
    read_model_config,
    save_model,
    save_training_state,
)
from lyriscope.trainers.networks import Generator

SMALL = dict(
    z_dim=16,
    c_dim=0,
    w_dim=24,
    img_resolution=16,
    img_channels=3,
    mapping_kwargs={"num_layers": 2},
    synthesis_kwargs={"channel_base": 64, "channel_max": 16},
)


def small_generator(seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    G = Generator(**{**SMALL, **overrides})
    with torch.no_grad():  # a trained-looking w_avg and noise, not the zeros of a fresh G
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
        for name, tensor in G.named_parameters():
            if name.endswith("noise_strength"):
                tensor.fill_(0.3)
    return G.eval()


def draw(G: torch.nn.Module) -> torch.Tensor:
    z = torch.from_numpy(np.random.RandomState(7).randn(3, G.z_dim)).float()
    return G(z, torch.zeros(3, G.c_dim), truncation_psi=0.6, noise_mode="const")


@pytest.fixture
def saved(tmp_path) -> tuple[torch.nn.Module, Path]:
    G = small_generator()
    path = tmp_path / "models" / "line-01.safetensors"
    save_model(path, G, kimg=1234.5, dataset_fingerprint="sha256:abc", extra={"line": 1})
    return G, path


def test_saved_model_loads_and_draws_the_same_images(saved):
    G, path = saved

    loaded = load_model(path)

    torch.testing.assert_close(draw(loaded), draw(G), rtol=0, atol=0)
    assert torch.equal(loaded.mapping.w_avg, G.mapping.w_avg)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    assert [p.name for p in path.parent.iterdir()] == ["line-01.safetensors"]  # no temp file left


def test_config_comes_from_the_header(saved):
    G, path = saved

    config = read_model_config(path)

    assert {
        k: config[k] for k in ("img_resolution", "z_dim", "c_dim", "w_dim", "num_ws", "kimg")
    } == {
        "img_resolution": 16,
        "z_dim": 16,
        "c_dim": 0,
        "w_dim": 24,
        "num_ws": G.num_ws,
        "kimg": 1234.5,
    }
    assert config["dataset_fingerprint"] == "sha256:abc"
    assert config["extra"] == {"line": 1}
    assert build_generator(config).init_kwargs == G.init_kwargs


@pytest.mark.gpu
def test_model_loads_onto_cuda(saved, no_tf32):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    G, path = saved
    loaded = load_model(path, device="cuda")
    assert loaded.mapping.w_avg.is_cuda
    z = torch.from_numpy(np.random.RandomState(7).randn(3, G.z_dim)).float().cuda()
    img = loaded(z, torch.zeros(3, 0, device="cuda"), truncation_psi=0.6, noise_mode="const")
    torch.testing.assert_close(img.cpu(), draw(G), rtol=1e-3, atol=1e-3)


def test_conditional_model_round_trips(tmp_path):
    G = small_generator(1, c_dim=3)
    save_model(tmp_path / "c.safetensors", G)
    loaded = load_model(tmp_path / "c.safetensors")
    assert read_model_config(tmp_path / "c.safetensors")["c_dim"] == 3
    torch.testing.assert_close(draw(loaded), draw(G), rtol=0, atol=0)


def _rewrite(path: Path, change) -> None:
    """Rewrite a model file with its tensors or metadata changed by `change(tensors, metadata)`."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    change(tensors, metadata)
    save_file(tensors, str(path), metadata=metadata)


def test_tensor_of_wrong_shape_is_named(saved):
    _, path = saved
    _rewrite(path, lambda t, m: t.update({"mapping.fc1.weight": torch.zeros(24, 5)}))
    with pytest.raises(
        CheckpointError,
        match=r"line-01\.safetensors: tensor mapping\.fc1\.weight "
        r"has shape \[24, 5\], but the architecture needs \[24, 24\]",
    ):
        load_model(path)


def test_config_that_does_not_match_the_tensors_is_reported(saved):
    _, path = saved

    def bigger(tensors, metadata):
        config = json.loads(metadata["config"])
        config["img_resolution"] = 32
        metadata["config"] = json.dumps(config)

    _rewrite(path, bigger)
    with pytest.raises(CheckpointError, match=r"tensor synthesis\.b32\.\S+ is missing"):
        load_model(path)


def test_missing_tensor_is_named(saved):
    _, path = saved
    _rewrite(path, lambda t, m: t.pop("synthesis.b8.torgb.bias"))
    with pytest.raises(CheckpointError, match=r"tensor synthesis\.b8\.torgb\.bias is missing"):
        load_model(path)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda p, good: p.write_text("just some text, certainly not a model\n"),
            "not a safetensors model file",
        ),
        (lambda p, good: p.write_bytes(good[: len(good) // 2]), "truncated"),
        (lambda p, good: p.write_bytes(good[:20]), "truncated"),
        (lambda p, good: p.write_bytes(b""), "not a safetensors model file"),
        (lambda p, good: save_file({"x": torch.zeros(2)}, str(p)), "not a lyriscope model"),
        (lambda p, good: torch.save({"x": torch.zeros(2)}, p), "not a safetensors model file"),
    ],
    ids=["text", "half", "cut-header", "empty", "foreign-safetensors", "torch-save"],
)
def test_unusable_file_gives_one_clear_error(saved, tmp_path, make, match):
    _, good_path = saved
    path = tmp_path / "bad.safetensors"
    make(path, good_path.read_bytes())

    for read in (read_model_config, load_model):
        with pytest.raises(CheckpointError, match=rf"bad\.safetensors: .*{match}"):
            read(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.safetensors: no such model file"):
        load_model(tmp_path / "nope.safetensors")


def test_save_needs_constructor_kwargs(tmp_path):
    with pytest.raises(CheckpointError, match="no init_kwargs"):
        save_model(tmp_path / "m.safetensors", torch.nn.Linear(2, 2))
    assert not list(tmp_path.iterdir())


# -- training state -----------------------------------------------------------------------------


def test_training_state_round_trips_with_rng_states(tmp_path):
    torch.manual_seed(3)
    numpy_rng = np.random.RandomState(5)
    python_rng = random.Random(9)
    G = small_generator()
    optimizer = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99))
    draw(G).square().mean().backward()
    optimizer.step()
    state = {
        "G": G.state_dict(),
        "G_opt": optimizer.state_dict(),
        "augment": {"p": 0.125, "stats": torch.tensor([0.6, 12.0])},
        "cur_nimg": 123_456,
        "config": {
            "name": "line-01",
            "batch": 8,
            "gamma": 0.8,
            "betas": (0.0, 0.99),
            "resolutions": [4, 8, 16],
            "resume": None,
        },
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": numpy_rng.get_state(),
            "python": python_rng.getstate(),
        },
    }
    path = tmp_path / "training-state.pt"

    save_training_state(path, state)
    loaded = load_training_state(path)

    assert {k: torch.equal(v, state["G"][k]) for k, v in loaded["G"].items()} == {
        k: True for k in state["G"]
    }
    assert loaded["cur_nimg"] == 123_456 and loaded["augment"]["p"] == 0.125
    assert loaded["config"] == state["config"]
    resumed = torch.optim.Adam(small_generator().parameters(), lr=0.002)
    resumed.load_state_dict(loaded["G_opt"])
    assert torch.equal(
        resumed.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )
    # Each RNG continues exactly where the saved one was.
    expected = (torch.rand(4), numpy_rng.randn(4), python_rng.random())
    torch.set_rng_state(loaded["rng"]["torch"])
    restored_numpy = np.random.RandomState()
    restored_numpy.set_state(loaded["rng"]["numpy"])
    restored_python = random.Random()
    restored_python.setstate(loaded["rng"]["python"])
    assert torch.equal(torch.rand(4), expected[0])
    np.testing.assert_array_equal(restored_numpy.randn(4), expected[1])
    assert restored_python.random() == expected[2]


def test_training_state_that_holds_code_is_refused(tmp_path):
    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"G": Evil()}, path)

    with pytest.raises(
        CheckpointError, match=r"evil\.pt: not a readable training checkpoint"
    ) as caught:
        load_training_state(path)
    assert not marker.exists()
    assert "system" in str(caught.value)  # what was refused
    assert "weights_only" not in str(caught.value)  # never torch's advice to load it unsafely


def test_training_state_refuses_objects_it_cannot_store_as_data(tmp_path):
    with pytest.raises(CheckpointError, match=r"state\['opt'\]: Adam objects cannot be saved"):
        save_training_state(tmp_path / "s.pt", {"opt": torch.optim.Adam([torch.zeros(1)])})
    assert not list(tmp_path.iterdir())
