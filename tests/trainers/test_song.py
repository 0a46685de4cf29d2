"""`lyriscope train --conditional`: one model for a 4-line song, from `prepare --conditional` to set.toml."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_zips import shapes_zip
from PIL import Image
from setfiles import set_toml, write_model, write_set

from lyriscope.cli import main as lyriscope
from lyriscope.engine.compose import draw, line_walks
from lyriscope.engine.shots import Shot
from lyriscope.engine.synth import runtime
from lyriscope.setmodel import load_set
from lyriscope.trainers.checkpoint import load_model, load_training_state, save_model
from lyriscope.trainers.commands.train import main
from lyriscope.trainers.networks import Discriminator, Generator
from lyriscope.trainers.random_model import random_generator
from lyriscope.trainers.training_loop import BaseNetworks, read_stats
from lyriscope.trainers.transfer import conditional_base

RES = 16
LINES = 4
TINTS = [(1.0, 0.2, 0.2), (0.2, 1.0, 0.2), (0.2, 0.3, 1.0), (1.0, 1.0, 0.3)]
TINY = [
    *("--batch", "4", "--channel-base", "256", "--channel-max", "16", "--mapping-layers", "2"),
    *("--workers", "0", "--metrics", "none", "--tick-kimg", "0.004", "--snap", "1"),
    *("--ops", "ref"),
]

pytestmark = pytest.mark.usefixtures("one_thread")


def _picture(seed: int, tint: tuple[float, float, float]) -> bytes:
    """A 256² PNG of smooth random blotches in the line's colour (no two are near duplicates)."""
    rng = np.random.default_rng(seed)
    small = (0.3 + 0.7 * rng.random((6, 6, 1))) * np.array(tint)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((256, 256), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def song_set(tmp_path_factory) -> Path:
    """A 4-line set whose data/song.zip `lyriscope prepare --conditional` wrote (3 images a line)."""
    root = write_set(
        tmp_path_factory.mktemp("song") / "set",
        lines=[f"line {i + 1}" for i in range(LINES)],
        comment="# the song's set: this comment stays",
    )
    for line, tint in enumerate(TINTS):
        folder = root / "images" / f"line-{line + 1:02d}"
        folder.mkdir(parents=True)
        for k in range(3):
            data = _picture(100 * line + k, tint)
            (folder / f"{hashlib.sha256(data).hexdigest()}.png").write_bytes(data)
    assert lyriscope(["prepare", str(root), "--conditional", "--size", str(RES)]) == 0
    return root


def _train(root: Path, tmp: Path, name: str, *extra: str) -> int:
    out = ["--output", str(root / "models" / f"{name}.safetensors"), "--outdir", str(tmp / name)]
    return main([str(root), "--conditional", *out, *TINY, *extra])


def test_one_model_for_every_line_resumes_exactly_and_is_named_in_set_toml(
    song_set: Path, tmp_path: Path
):
    n = 3  # steps of batch 4
    assert _train(song_set, tmp_path, "whole", "--kimg", str(2 * n * 4 / 1000)) == 0
    assert _train(song_set, tmp_path, "split", "--kimg", str(n * 4 / 1000)) == 0
    assert load_training_state(tmp_path / "split" / "song" / "training-state.pt")["batch_idx"] == n
    resumed = ["--kimg", str(2 * n * 4 / 1000), "--resume"]
    assert _train(song_set, tmp_path, "split", *resumed) == 0

    whole = load_training_state(tmp_path / "whole" / "song" / "training-state.pt")
    split = load_training_state(tmp_path / "split" / "song" / "training-state.pt")
    assert whole["batch_idx"] == split["batch_idx"] == 2 * n
    assert whole["config"]["c_dim"] == LINES  # a class per line
    for net in ("G", "D", "G_ema"):
        assert whole[net].keys() == split[net].keys()
        for name in whole[net]:
            assert torch.equal(whole[net][name], split[net][name]), f"{net}.{name} differs"

    G = load_model(song_set / "models" / "split.safetensors")
    assert G.c_dim == LINES and "mapping.embed.weight" in G.state_dict()
    text = (song_set / "set.toml").read_text()
    assert 'model = "models/split.safetensors"' in text and "this comment stays" in text
    songset = load_set(song_set)
    assert [line.label for line in songset.lines] == [0, 1, 2, 3]
    assert {line.model for line in songset.lines} == {song_set / "models" / "split.safetensors"}


def test_from_an_unconditional_base_with_kid_per_line(song_set: Path, tmp_path: Path, capsys):
    base = random_generator(RES, channel_base=256, channel_max=16, mapping_layers=2, seed=5)
    save_model(tmp_path / "base.safetensors", base)
    assert (
        _train(
            song_set,
            tmp_path,
            "from-base",
            *("--from", str(tmp_path / "base.safetensors"), "--kimg", "0.008"),
            *("--metrics", "kid", "--metrics-gen", "16"),
        )
        == 0
    )
    err = capsys.readouterr().err
    total = len(base.state_dict()) + 2  # and the class embedding's weight and bias
    taken = f"G: {total - 3} of {total} tensors from the base; z columns of mapping.fc0.weight"
    assert taken in err and "new: mapping.embed.weight, mapping.embed.bias" in err
    assert "KID per line: 1 " in err and " 4 " in err
    rows = read_stats(tmp_path / "from-base" / "song" / "stats.jsonl")
    per_class = rows[-1]["metrics"]["kid_per_class"]
    assert sorted(per_class) == ["0", "1", "2", "3"]
    assert all(isinstance(v, float) for v in per_class.values())
    G = load_model(song_set / "models" / "from-base.safetensors")
    assert G.c_dim == LINES and G.z_dim == base.z_dim  # the base's architecture, with classes


def test_an_unconditional_base_fits_so_every_class_starts_as_the_base():
    base = random_generator(RES, channel_base=256, channel_max=16, mapping_layers=2, seed=5)
    kwargs = {**base.init_kwargs, "c_dim": 3}
    G = Generator(**kwargs).eval()
    D = Discriminator(c_dim=3, img_resolution=RES, img_channels=3, channel_base=256, channel_max=16)
    fitted, (report,) = conditional_base(BaseNetworks(G_state=base.state_dict()), G=G, D=D)
    assert report.widened == ("mapping.fc0.weight",) and report.taken == report.total - 3
    G.load_state_dict(fitted.G_state)
    z = torch.randn(5, base.z_dim, generator=torch.Generator().manual_seed(0))
    for c in range(3):
        label = torch.nn.functional.one_hot(torch.full((5,), c), 3).float()
        torch.testing.assert_close(G.mapping(z, label), base.mapping(z, None))


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--conditional", "--line", "1"], "not allowed with argument"),
        (["--conditional", "--data", "{tmp}/shapes.zip"], "no class labels"),
        (["--conditional", "--output", "{tmp}/elsewhere.safetensors"], "inside the set"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(
    song_set: Path, tmp_path: Path, argv: list[str], match: str, capsys
):
    shapes_zip(tmp_path / "shapes.zip", count=4, res=RES)  # a line's data: no labels
    argv = [a.format(tmp=tmp_path) for a in argv]
    try:
        code = main([str(song_set), "--outdir", str(tmp_path), *TINY, *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and match in err, err


def test_lines_that_named_an_untrained_model_are_handed_to_the_song_model(
    song_set: Path, tmp_path: Path
):
    root = tmp_path / "copy"
    shutil.copytree(song_set, root)
    write_model(root / "models" / "own.safetensors", size=RES)
    lines = [
        {"text": "line 1", "model": "models/line-01.safetensors"},  # `lyriscope new` wrote it
        "line 2",
        "line 3",
        {"text": "line 4", "model": "models/own.safetensors"},  # trained on its own
    ]
    (root / "set.toml").write_text(set_toml(lines=lines, comment="# kept"), encoding="utf-8")
    assert main([str(root), "--conditional", "--kimg", "0.004", *TINY]) == 0
    songset = load_set(root)
    assert [line.label for line in songset.lines] == [0, 1, 2, None]
    assert songset.lines[3].model == root / "models" / "own.safetensors"
    assert songset.song.model == root / "models" / "song.safetensors"
    assert (root / "set.toml").read_text().startswith("# kept")


def test_the_trained_song_model_morphs_between_its_lines(song_set: Path, tmp_path: Path):
    root = tmp_path / "played"
    shutil.copytree(song_set, root, ignore=shutil.ignore_patterns("runs"))
    (root / "set.toml").write_text(set_toml(lines=[f"line {i + 1}" for i in range(LINES)]))
    assert main([str(root), "--conditional", "--kimg", "0.004", *TINY]) == 0
    songset = load_set(root)
    generator = runtime.Generator.from_set(songset, options=runtime.RuntimeOptions(device="cpu"))
    assert {generator.line(i).G for i in range(LINES)} == {generator.line(0).G}
    shot = Shot(line=2, t_line=0.3, prev=1, t_prev=2.3, mix=0.5)
    walks = line_walks(songset, generator, fps=10.0)
    (picture,) = draw(
        [shot], frames=[23], songset=songset, walks=walks, generator=generator, features=None
    )
    assert picture.prev_image is None and picture.image.shape == (RES, RES, 3)


@pytest.mark.slow
def test_gpus_2_trains_the_song_model_in_two_processes(song_set: Path, tmp_path: Path):
    root = tmp_path / "two"
    shutil.copytree(song_set, root, ignore=shutil.ignore_patterns("runs"))
    (root / "set.toml").write_text(set_toml(lines=[f"line {i + 1}" for i in range(LINES)]))
    argv = [str(root), "--conditional", "--gpus", "2", "--device", "cpu", "--kimg", "0.008"]
    assert main([*argv, *TINY, "--aug", "none"]) == 0
    state = load_training_state(root / "runs" / "song" / "training-state.pt")
    assert state["world_size"] == 2 and state["batch_idx"] == 2
    assert state["config"]["c_dim"] == LINES
    assert load_set(root).song.model == root / "models" / "song.safetensors"
