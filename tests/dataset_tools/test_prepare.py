"""Prepare: kept images become an NVlabs zip of same-size square RGB PNGs with dataset.json."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lyriscope.cli import main
from lyriscope.dataset_tools import curation as cur
from lyriscope.dataset_tools.cluster import MERGED, cluster_line
from lyriscope.dataset_tools.prepare import PrepareOptions, prepare_line, prepare_song, square_image
from lyriscope.errors import DatasetError
from lyriscope.trainers.dataset import ImageDataset

TINTS = [(1.0, 0.1, 0.1), (0.1, 1.0, 0.15), (0.1, 0.15, 1.0)]


def tinted(seed: int, tint, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (0.55 + 0.45 * rng.random((6, 6, 1))) * np.array(tint)
    return Image.fromarray((small * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)


@pytest.fixture
def song(tmp_path: Path) -> Path:
    """A set with 9 usable images on line 1 (3 colours, mixed sizes), one too small, and line 2 empty."""
    root = tmp_path / "song"
    folder = root / "images" / "line-01"
    folder.mkdir(parents=True)
    (root / "song.wav").write_bytes(b"")
    (root / "song.lrc").write_text("")
    (root / "set.toml").write_text(
        '[song]\ntitle = "t"\naudio = "song.wav"\nlyrics = "song.lrc"\n'
        '[output]\nsize = 48\n[[line]]\ntext = "one"\n[[line]]\ntext = "two"\n'
    )
    sizes = [(256, 256), (400, 300), (300, 500)]
    pictures = [
        tinted(c * 10 + s, tint, sizes[s]) for c, tint in enumerate(TINTS) for s in range(3)
    ]
    pictures.append(tinted(99, TINTS[0], (120, 90)))
    for img in pictures:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        sha = hashlib.sha256(buf.getvalue()).hexdigest()
        (folder / f"{sha}.png").write_bytes(buf.getvalue())
    return root


def read_zip(path: Path) -> tuple[list[Image.Image], dict]:
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        images = [Image.open(io.BytesIO(zf.read(n))) for n in names]
        meta = json.loads(zf.read("dataset.json"))
    return images, meta


def test_without_curation_every_verified_image_is_kept(song: Path) -> None:
    summary = prepare_line(song, 0, options=PrepareOptions(size=64))
    assert summary["images"] == 9
    assert summary["dropped"] == {"too_small": 1}
    images, meta = read_zip(song / "data" / "line-01.zip")
    assert meta == {"labels": None}
    assert len(images) == 9
    assert all(img.format == "PNG" and img.mode == "RGB" and img.size == (64, 64) for img in images)
    with zipfile.ZipFile(song / "data" / "line-01.zip") as zf:
        assert "00000/img00000000.png" in zf.namelist()
    assert json.loads((song / "data" / "summary.json").read_text())["lines"]["1"]["images"] == 9


def test_curation_decides_what_goes_in(song: Path) -> None:
    doc = cluster_line(song, 0, k=3)
    counts = [c["count"] for c in doc["groups"][0]["clusters"]]
    assert counts == [3, 3, 3]
    cur.save_curation(song, cur.keep_only(cur.empty_curation(), 0, MERGED, [1], count=3))
    summary = prepare_line(song, 0, options=PrepareOptions(size=32, square="pad"))
    assert summary["images"] == 3
    assert summary["dropped"] == {"cluster_dropped": 6, "too_small": 1}
    kept_cluster = doc["groups"][0]["clusters"][1]
    images, _ = read_zip(song / "data" / "line-01.zip")
    # The kept cluster is one colour: every PNG in the zip has that dominant channel.
    dominant = {int(np.argmax(np.asarray(i, dtype=float).reshape(-1, 3).mean(0))) for i in images}
    assert len(dominant) == 1 and len(kept_cluster["images"]) == 3


def test_square_crop_and_pad() -> None:
    arr = np.zeros((100, 200, 3), dtype=np.uint8)
    arr[:, :50] = (255, 0, 0)  # left quarter red, the rest blue
    arr[:, 50:] = (0, 0, 255)
    wide = Image.fromarray(arr)
    crop = np.asarray(square_image(wide, size=50, square="crop"), dtype=int)
    assert crop.shape == (50, 50, 3) and (crop[..., 2] > 240).all()  # the centre is all blue
    pad = np.asarray(square_image(wide, size=50, square="pad", pad_colour=(0, 255, 0)), dtype=int)
    assert pad[2, 25].tolist() == [0, 255, 0] and pad[47, 25].tolist() == [0, 255, 0]  # bars
    assert pad[25, 2, 0] > 240 and pad[25, 40, 2] > 240  # the whole picture, squeezed in
    with pytest.raises(DatasetError, match="crop, pad"):
        square_image(wide, size=50, square="stretch")


def test_prepare_cli_uses_set_size(song: Path, capsys) -> None:
    assert main(["prepare", str(song)]) == 0  # line 2 has no images: skipped with a warning
    out = capsys.readouterr().out
    assert "line 1: 9 images -> data/line-01.zip; dropped: 1 smaller than the size limit" in out
    assert "warning: line 1 has only 9 images, fewer than one training minibatch" in out
    images, _ = read_zip(song / "data" / "line-01.zip")
    assert {i.size for i in images} == {(48, 48)}
    assert not list((song / "data").glob(".*.part"))
    assert main(["prepare", str(song), "--line", "2"]) == 2
    assert "run `lyriscope collect` first" in capsys.readouterr().err


def test_nothing_kept_is_an_error_and_leaves_no_zip(song: Path) -> None:
    cluster_line(song, 0, k=3)
    cur.save_curation(song, cur.keep_only(cur.empty_curation(), 0, MERGED, [], count=3))
    with pytest.raises(DatasetError, match="line 1 keeps no images"):
        prepare_line(song, 0, options=PrepareOptions(size=32))
    assert not (song / "data" / "line-01.zip").exists()


def test_two_runs_write_the_same_bytes_that_the_trainer_reads(song: Path, monkeypatch) -> None:
    zip_path = song / "data" / "line-01.zip"
    prepare_line(song, 0, options=PrepareOptions(size=32))
    first = zip_path.read_bytes()
    # A second run on another day, with every input touched since: nothing of that may show.
    a_year_later = time.time() + 366 * 24 * 3600
    for image in (song / "images" / "line-01").iterdir():
        os.utime(image, (a_year_later, a_year_later))
    monkeypatch.setattr(time, "time", lambda: a_year_later)
    prepare_line(song, 0, options=PrepareOptions(size=32))
    monkeypatch.undo()
    assert zip_path.read_bytes() == first
    with zipfile.ZipFile(zip_path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == [f"00000/img{k:08d}.png" for k in range(9)] + [
        "dataset.json"
    ]
    assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}  # readable when unzipped
    dataset = ImageDataset(zip_path)
    assert (dataset.num_images, dataset.resolution, dataset.num_channels) == (9, 32, 3)
    images, _ = read_zip(zip_path)
    assert np.array_equal(dataset[4][0].numpy().transpose(1, 2, 0), np.asarray(images[4]))


def test_one_dataset_for_the_song_labels_each_image_with_its_line(song: Path, capsys) -> None:
    second = song / "images" / "line-02"
    second.mkdir(parents=True)
    for s in range(2):
        tinted(200 + s, TINTS[2], (256, 256)).save(second / f"{s}.png")
    summary = prepare_song(song, [0, 1], options=PrepareOptions(size=32))
    assert {n: (v["images"], v["written"]) for n, v in summary["lines"].items()} == {
        "1": (9, 9),
        "2": (2, 2),
    }
    # The trainer's reader (NVlabs' layout) sees one-hot labels of the two lines.
    data = ImageDataset(song / "data" / "song.zip", use_labels=True)
    assert len(data) == 11 and data.label_dim == 2
    assert [int(data[i][1].argmax()) for i in range(len(data))] == [0] * 9 + [1] * 2
    # Balanced by repeating line 2's pictures: each line weighs the same.
    assert (
        main(["prepare", str(song), "--conditional", "--balance", "oversample", "--size", "32"])
        == 0
    )
    out = capsys.readouterr().out
    assert "line 2: 2 images (written 9), label 1" in out
    _, meta = read_zip(song / "data" / "song.zip")
    assert [label for _, label in meta["labels"]] == [0] * 9 + [1] * 9
    assert main(["prepare", str(song), "--conditional", "--balance", "undersample"]) == 0
    _, meta = read_zip(song / "data" / "song.zip")
    assert [label for _, label in meta["labels"]] == [0, 0, 1, 1]


def test_a_conditional_dataset_needs_pictures_of_every_line(song: Path, capsys) -> None:
    (song / "images" / "line-02").mkdir(parents=True)
    assert main(["prepare", str(song), "--conditional"]) == 2
    assert "line(s) 2 keep no images; a conditional model needs" in capsys.readouterr().err
    assert not (song / "data" / "song.zip").exists()
    assert main(["prepare", str(song), "--balance", "oversample"]) == 2
