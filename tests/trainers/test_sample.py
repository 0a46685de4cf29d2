"""Seeds, pixels, `lyriscope sample` and `lyriscope init-model`: a seed means what it means in generate.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.errors import LyriscopeError
from lyriscope.trainers.checkpoint import load_model, read_model_config, save_model
from lyriscope.trainers.random_model import random_generator
from lyriscope.trainers.seeds import class_labels, parse_seeds, seeds_to_z, to_uint8


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("0,1,7", [0, 1, 7]),
        ("0-3", [0, 1, 2, 3]),
        ("5, 2-4 ,9", [5, 2, 3, 4, 9]),
        ("42", [42]),
        ("3-3", [3]),
    ],
)
def test_seed_lists_and_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a,b", "'a' is not a seed"),
        ("4-1", "runs backwards; write it as 1-4"),
        ("", "names no seed"),
        ("-3", "'-3' is not a seed"),
        ("4294967296", "too large"),
    ],
)
def test_bad_seed_lists_say_what_to_write(text, match):
    with pytest.raises(LyriscopeError, match=match):
        parse_seeds(text)


def test_seed_latents_are_numpy_randomstate_draws_independent_of_batch():
    z = seeds_to_z([3, 0, 3], 512)
    assert z.shape == (3, 512) and z.dtype == torch.float32
    for row, seed in zip(z, [3, 0, 3], strict=True):
        reference = np.random.RandomState(seed).randn(1, 512)[0].astype(np.float32)
        np.testing.assert_array_equal(row.numpy(), reference)


def test_pixels_round_like_generate_py():
    img = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.001, 0.5, 0.999, 1.0, 2.0]).reshape(1, 1, 1, 9)
    img = img.expand(1, 3, 1, 9)  # [N, C, H, W]
    # (x * 127.5 + 128) clamped to [0, 255], truncated towards zero by the uint8 cast
    reference = np.clip(img.numpy().transpose(0, 2, 3, 1) * 127.5 + 128, 0, 255).astype(np.uint8)

    pixels = to_uint8(img)

    assert pixels.shape == (1, 1, 9, 3) and pixels.dtype == torch.uint8
    np.testing.assert_array_equal(pixels.numpy(), reference)
    assert pixels[0, 0, :, 0].tolist() == [0, 0, 64, 128, 128, 191, 255, 255, 255]


def test_class_labels_are_one_hot():
    assert class_labels(4, 2).tolist() == [[0, 0, 1, 0]]
    assert class_labels(0, None).shape == (1, 0)
    with pytest.raises(LyriscopeError, match="classes 0 to 3"):
        class_labels(4, 4)


# -- the commands -------------------------------------------------------------------------------

INIT = ["--size", "16", "--channel-base", "64", "--channel-max", "16", "--mapping-layers", "2"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "random.safetensors"
    assert main(["init-model", *INIT, "--seed", "3", "-o", str(path)]) == 0
    return path


def reference_pixels(
    G: torch.nn.Module, seed: int, *, psi: float, c: torch.Tensor | None = None
) -> np.ndarray:
    """generate.py's recipe written out: RandomState z, G(z, c, psi, const), then its rounding."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    c = torch.zeros(1, G.c_dim) if c is None else c
    img = G(z, c, truncation_psi=psi, noise_mode="const")
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def test_sample_writes_one_png_per_seed(model, tmp_path):
    out = tmp_path / "samples"

    assert (
        main(
            [
                "sample",
                str(model),
                "--seeds",
                "0-2,7",
                "--trunc",
                "0.7",
                "--device",
                "cpu",
                "-o",
                str(out),
            ]
        )
        == 0
    )

    assert sorted(p.name for p in out.iterdir()) == [
        "seed0000.png",
        "seed0001.png",
        "seed0002.png",
        "seed0007.png",
    ]
    G = load_model(model)
    for seed in (0, 7):
        png = np.asarray(Image.open(out / f"seed{seed:04d}.png"))
        assert png.shape == (16, 16, 3)
        np.testing.assert_array_equal(png, reference_pixels(G, seed, psi=0.7))
    assert not np.array_equal(
        np.asarray(Image.open(out / "seed0000.png")), np.asarray(Image.open(out / "seed0001.png"))
    )


def test_sample_of_a_conditional_model_needs_a_class(tmp_path, capsys):
    torch.manual_seed(0)
    G = random_generator(16, channel_base=64, channel_max=16, mapping_layers=2)
    cond = type(G)(**{**G.init_kwargs, "c_dim": 3}).eval()
    save_model(tmp_path / "cond.safetensors", cond)

    assert (
        main(
            [
                "sample",
                str(tmp_path / "cond.safetensors"),
                "--seeds",
                "1",
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "--class 0..2" in capsys.readouterr().err

    assert (
        main(
            [
                "sample",
                str(tmp_path / "cond.safetensors"),
                "--seeds",
                "1",
                "--class",
                "2",
                "--device",
                "cpu",
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    png = np.asarray(Image.open(tmp_path / "out" / "seed0001.png"))
    np.testing.assert_array_equal(
        png, reference_pixels(cond, 1, psi=1.0, c=torch.tensor([[0.0, 0, 1]]))
    )


def test_sample_with_bad_seeds_fails_before_loading(tmp_path, capsys):
    assert (
        main(["sample", str(tmp_path / "missing.safetensors"), "--seeds", "x", "-o", str(tmp_path)])
        == 2
    )
    assert "'x' is not a seed" in capsys.readouterr().err


def test_init_model_is_reproducible_per_seed(model, tmp_path):
    again, other = tmp_path / "again.safetensors", tmp_path / "other.safetensors"
    assert main(["init-model", *INIT, "--seed", "3", "-o", str(again)]) == 0
    assert main(["init-model", *INIT, "--seed", "4", "-o", str(other)]) == 0

    first, second, third = load_model(model), load_model(again), load_model(other)

    weights = "synthesis.b16.conv1.weight"
    assert torch.equal(first.state_dict()[weights], second.state_dict()[weights])
    assert not torch.equal(first.state_dict()[weights], third.state_dict()[weights])
    config = read_model_config(model)
    assert (config["img_resolution"], config["mapping_kwargs"]["num_layers"], config["kimg"]) == (
        16,
        2,
        0.0,
    )
    assert config["synthesis_kwargs"] == {"channel_base": 64, "channel_max": 16}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--size", "48"], "power of two"),
        (["--size", "2"], "power of two"),
        (["--size", "16", "--channel-base", "0"], "--channel-base 0: must be a positive number"),
    ],
)
def test_init_model_rejects_impossible_sizes(tmp_path, capsys, args, match):
    out = tmp_path / "m.safetensors"
    assert main(["init-model", *args, "-o", str(out)]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_init_model_leaves_the_global_rng_alone():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    random_generator(8, channel_base=32, channel_max=8, mapping_layers=1, seed=5)
    assert torch.equal(torch.rand(3), expected)


def _conditional(path, classes: int = 3):
    torch.manual_seed(0)
    G = random_generator(16, channel_base=64, channel_max=16, mapping_layers=2, c_dim=classes)
    save_model(path, G)
    return G


def _tile(sheet: np.ndarray, row: int, col: int, side: int = 16) -> np.ndarray:
    return sheet[row * side : (row + 1) * side, col * side : (col + 1) * side]


def test_grid_is_one_contact_sheet_of_every_seed(model, tmp_path):
    argv = ["sample", str(model), "--seeds", "0-4", "--grid", "--device", "cpu"]
    assert main([*argv, "-o", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    sheet = np.asarray(Image.open(tmp_path / "grid.png"))
    assert sheet.shape == (32, 48, 3)  # 5 seeds: 3 columns, 2 rows
    G = load_model(model)
    for k, seed in enumerate(range(5)):
        np.testing.assert_array_equal(
            _tile(sheet, *divmod(k, 3)), reference_pixels(G, seed, psi=1.0)
        )
    assert not _tile(sheet, 1, 2).any()  # the sixth place stays black


def test_grid_of_a_conditional_model_has_a_row_per_class(tmp_path):
    G = _conditional(tmp_path / "song.safetensors")
    argv = ["sample", str(tmp_path / "song.safetensors"), "--seeds", "3,9", "--grid"]
    assert main([*argv, "--trunc", "0.7", "-o", str(tmp_path / "out")]) == 0
    sheet = np.asarray(Image.open(tmp_path / "out" / "grid.png"))
    assert sheet.shape == (48, 32, 3)
    for c in range(3):
        label = torch.eye(3)[[c]]
        for k, seed in enumerate((3, 9)):
            expected = reference_pixels(G, seed, psi=0.7, c=label)
            np.testing.assert_array_equal(_tile(sheet, c, k), expected)


def test_line_of_a_set_draws_that_lines_class_of_the_song_model(tmp_path, capsys):
    root = tmp_path / "set"
    G = _conditional(root / "models" / "song.safetensors")
    write_set(root, lines=("a", "b", "c"), song={"model": "models/song.safetensors"})
    assert (
        main(["sample", str(root), "--line", "3", "--seeds", "5", "-o", str(tmp_path / "o")]) == 0
    )
    png = np.asarray(Image.open(tmp_path / "o" / "seed0005.png"))
    np.testing.assert_array_equal(png, reference_pixels(G, 5, psi=1.0, c=torch.eye(3)[[2]]))
    capsys.readouterr()

    model = str(root / "models" / "song.safetensors")
    for argv, match in [
        ([str(root)], "is a set; choose its line with --line N (1 to 3)"),
        ([str(root), "--line", "4"], "--line 4: "),
        ([model, "--line", "2"], "--line 2 names a line of a set"),
        ([model, "--class", "3"], "class 3 does not exist; this model has classes 0 to 2"),
    ]:
        assert main(["sample", *argv, "--seeds", "1", "-o", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert match in err and len(err.splitlines()) == 1, err
