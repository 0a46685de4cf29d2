"""Training data: NVlabs-layout zips and folders, bad datasets, the resumable sampler, the loader."""

from __future__ import annotations

import io
import itertools
import json
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lyriscope.errors import DatasetError
from lyriscope.trainers.dataset import ImageDataset, InfiniteSampler, make_loader


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def random_pixels(seed: int, size: int = 8, channels: int = 3) -> np.ndarray:
    shape = (size, size, channels) if channels > 1 else (size, size)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def nvlabs_name(i: int) -> str:
    return f"{i // 1000:05d}/img{i:08d}.png"


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def pixels() -> list[np.ndarray]:
    return [random_pixels(i) for i in range(5)]


@pytest.fixture
def labelled_zip(tmp_path: Path, pixels: list[np.ndarray]) -> Path:
    files = {nvlabs_name(i): png_bytes(p) for i, p in enumerate(pixels)}
    labels = [[nvlabs_name(i), i % 3] for i in range(len(pixels))]
    files["dataset.json"] = json.dumps({"labels": labels}).encode()
    return write_zip(tmp_path / "line-01.zip", files)


def test_zip_loads_images_labels_and_mirror(labelled_zip: Path, pixels: list[np.ndarray]) -> None:
    data = ImageDataset(labelled_zip, use_labels=True, mirror=True)
    assert (data.name, data.resolution, data.num_channels) == ("line-01", 8, 3)
    assert (len(data), data.num_images, data.label_dim, data.has_labels) == (10, 5, 3, True)
    for i, expected in enumerate(pixels):
        image, label = data[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 8, 8)
        assert np.array_equal(image.permute(1, 2, 0).numpy(), expected)
        assert label.dtype == torch.float32
        assert label.tolist() == [1.0 if k == i % 3 else 0.0 for k in range(3)]
        flipped, flipped_label = data[i + 5]
        assert np.array_equal(flipped.permute(1, 2, 0).numpy(), expected[:, ::-1])
        assert torch.equal(flipped_label, label)
    with pytest.raises(IndexError):
        data[10]


def test_labels_are_empty_unless_asked(labelled_zip: Path) -> None:
    data = ImageDataset(labelled_zip)
    image, label = data[0]
    assert (len(data), data.label_dim, data.has_labels, label.shape) == (5, 0, False, (0,))


def test_null_labels_give_no_labels(tmp_path: Path, pixels: list[np.ndarray]) -> None:
    files = {nvlabs_name(i): png_bytes(p) for i, p in enumerate(pixels)}
    files["dataset.json"] = b'{"labels": null}'
    files["__MACOSX/00000/._img00000000.png"] = b"a resource fork, not a PNG"
    data = ImageDataset(write_zip(tmp_path / "d.zip", files), use_labels=True)
    assert (len(data), data.label_dim, data.has_labels) == (5, 0, False)


def test_folder_with_grey_and_rgba_images_becomes_rgb(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    grey = random_pixels(1, channels=1)
    rgba = random_pixels(2, channels=4)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # one transparent pixel: composited on black
    (folder / "a.png").write_bytes(png_bytes(grey, "L"))
    (folder / "sub" / "b.png").write_bytes(png_bytes(rgba, "RGBA"))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".thumb.png").write_bytes(b"hidden, and not a PNG either")
    data = ImageDataset(folder)
    assert (len(data), data.num_channels, data.name) == (2, 3, "images")
    a, _ = data[0]
    assert np.array_equal(a.numpy(), np.stack([grey] * 3))
    b, _ = data[1]
    expected = rgba[..., :3].copy()
    expected[0, 0] = 0
    assert np.array_equal(b.permute(1, 2, 0).numpy(), expected)


def test_grey_dataset_keeps_one_channel(tmp_path: Path) -> None:
    greys = [random_pixels(i, channels=1) for i in range(3)]
    path = write_zip(
        tmp_path / "grey.zip", {f"{i}.png": png_bytes(g, "L") for i, g in enumerate(greys)}
    )
    data = ImageDataset(path, mirror=True)
    assert data.num_channels == 1
    image, _ = data[4]
    assert image.shape == (1, 8, 8)
    assert np.array_equal(image[0].numpy(), greys[1][:, ::-1])


def test_max_size_keeps_a_fixed_subset(tmp_path: Path) -> None:
    files = {f"{i:02d}.png": png_bytes(random_pixels(i)) for i in range(10)}
    path = write_zip(tmp_path / "d.zip", files)
    a, b = ImageDataset(path, max_size=4), ImageDataset(path, max_size=4)
    assert len(a) == 4 and a.image_names == b.image_names
    assert list(a.image_names) == sorted(a.image_names)
    assert set(a.image_names) <= set(files)


def test_fingerprint_follows_the_content(tmp_path: Path, pixels: list[np.ndarray]) -> None:
    files = {nvlabs_name(i): png_bytes(p) for i, p in enumerate(pixels)}
    one = ImageDataset(write_zip(tmp_path / "one.zip", files))
    same = ImageDataset(write_zip(tmp_path / "same.zip", files))
    changed = dict(files)
    changed[nvlabs_name(0)] = png_bytes(random_pixels(99))
    other = ImageDataset(write_zip(tmp_path / "other.zip", changed))
    fewer = ImageDataset(write_zip(tmp_path / "fewer.zip", dict(list(files.items())[:4])))
    assert len(one.fingerprint()) == 64
    assert one.fingerprint() == same.fingerprint()
    assert len({one.fingerprint(), other.fingerprint(), fewer.fingerprint()}) == 3


def truncated_png() -> bytes:
    data = png_bytes(random_pixels(7, size=64))
    return data[: len(data) // 2]


def labels_json(names: list[str], values: list[object]) -> bytes:
    return json.dumps({"labels": [[n, v] for n, v in zip(names, values, strict=True)]}).encode()


GOOD = [nvlabs_name(i) for i in range(3)]


@pytest.mark.parametrize(
    "case, extra, match",
    [
        (
            "non-square",
            {"00000/img00000003.png": png_bytes(random_pixels(3)[:, :4])},
            r"00000/img00000003\.png: is 4x8.*square",
        ),
        (
            "mixed sizes",
            {"00000/img00000003.png": png_bytes(random_pixels(3, size=16))},
            r"00000/img00000003\.png: is 16x16 but .*img00000000\.png is 8x8",
        ),
        (
            "corrupt header",
            {"00000/img00000003.png": b"\x89PNG\r\n\x1a\nnot really"},
            r"00000/img00000003\.png: not a readable image",
        ),
        (
            "labels missing",
            {"dataset.json": labels_json(GOOD[:2], [0, 1])},
            r"dataset\.json: has 2 labels for 3 images; no label for '00000/img00000002\.png'",
        ),
        (
            "labels extra",
            {"dataset.json": labels_json(GOOD + ["gone.png"], [0, 1, 0, 1])},
            r"dataset\.json: has 4 labels but names 'gone\.png'",
        ),
        (
            "negative label",
            {"dataset.json": labels_json(GOOD, [0, -1, 1])},
            r"label -1 is negative",
        ),
        (
            "bad labels",
            {"dataset.json": b'{"labels": {"a": 1}}'},
            r'dataset\.json: "labels" must be',
        ),
    ],
)
def test_bad_zip_names_the_file(
    tmp_path: Path, case: str, extra: dict[str, bytes], match: str
) -> None:
    files = {name: png_bytes(random_pixels(i)) for i, name in enumerate(GOOD)}
    files.update(extra)
    with pytest.raises(DatasetError, match=match):
        ImageDataset(write_zip(tmp_path / "bad.zip", files), use_labels=True)


def test_non_power_of_two_and_empty_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"a\.png: is 12x12; the side must be a power of two"):
        ImageDataset(
            write_zip(tmp_path / "odd.zip", {"a.png": png_bytes(random_pixels(0, size=12))})
        )
    with pytest.raises(DatasetError, match=r"empty\.zip: the dataset holds no images"):
        ImageDataset(write_zip(tmp_path / "empty.zip", {"dataset.json": b'{"labels": null}'}))
    with pytest.raises(DatasetError, match=r"nowhere\.zip: no such dataset"):
        ImageDataset(tmp_path / "nowhere.zip")
    (tmp_path / "text.zip").write_text("hello")
    with pytest.raises(DatasetError, match=r"text\.zip: not a zip file"):
        ImageDataset(tmp_path / "text.zip")


def test_truncated_png_fails_when_read_naming_the_file(tmp_path: Path) -> None:
    files = {"a.png": png_bytes(random_pixels(0, size=64)), "b.png": truncated_png()}
    data = ImageDataset(write_zip(tmp_path / "trunc.zip", files))
    assert data[0][0].shape == (3, 64, 64)
    with pytest.raises(DatasetError, match=r"trunc\.zip: b\.png: cannot decode the image"):
        data[1]


def test_truncated_png_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes(random_pixels(0, size=64)))
    (tmp_path / "b.png").write_bytes(truncated_png())
    with pytest.raises(DatasetError, match=r"b\.png: cannot decode"):
        ImageDataset(tmp_path)[1]


def draw(sampler: InfiniteSampler, count: int) -> list[int]:
    return list(itertools.islice(iter(sampler), count))


@pytest.mark.parametrize("size", [1, 7, 40])
def test_sampler_passes_are_permutations_and_seeded(size: int) -> None:
    items = list(range(size))
    drawn = draw(InfiniteSampler(items, seed=3), 4 * size)
    for k in range(4):
        assert sorted(drawn[k * size : (k + 1) * size]) == items
    assert draw(InfiniteSampler(items, seed=3), 4 * size) == drawn
    if size > 5:
        assert draw(InfiniteSampler(items, seed=4), 4 * size) != drawn
        assert drawn[:size] != drawn[size : 2 * size]  # the order keeps changing


def test_sampler_without_shuffle_counts_up() -> None:
    assert draw(InfiniteSampler(range(4), shuffle=False), 10) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_two_replicas_share_one_sequence_in_disjoint_shards() -> None:
    items = range(30)
    single = draw(InfiniteSampler(items, seed=5), 60)
    rank0 = draw(InfiniteSampler(items, seed=5, rank=0, num_replicas=2), 30)
    rank1 = draw(InfiniteSampler(items, seed=5, rank=1, num_replicas=2), 30)
    assert rank0 == single[0::2] and rank1 == single[1::2]
    assert set(rank0[:15]).isdisjoint(rank1[:15])
    assert sorted(rank0[:15] + rank1[:15]) == list(items)


# 23 items a pass; k items this rank drew before stopping (global position k * replicas + rank).
RESUME_CASES = [
    (1, 0, 0),  # the very start
    (1, 0, 13),  # inside the first pass
    (1, 0, 22),  # the last item of a pass comes next, then the pass boundary
    (1, 0, 23),  # exactly on a pass boundary
    (1, 0, 95),  # inside the fifth pass, after four boundaries
    (2, 1, 41),  # two ranks: global position 83, inside the fourth pass
    (3, 2, 30),  # three ranks: global position 92, exactly the fifth pass's first item
    (3, 0, 7),  # three ranks: the rank's stride straddles the boundary at 23
]


@pytest.mark.parametrize("num_replicas, rank, k", RESUME_CASES)
@pytest.mark.parametrize("shuffle", [True, False])
def test_sampler_resumes_where_it_stopped(
    num_replicas: int, rank: int, k: int, shuffle: bool
) -> None:
    items = range(23)
    options = {"seed": 9, "rank": rank, "num_replicas": num_replicas, "shuffle": shuffle}
    full = draw(InfiniteSampler(items, **options), k + 50)  # 50 more: across two boundaries
    resumed = draw(InfiniteSampler(items, **options, start=k), 50)
    assert resumed == full[k:]


def test_sampler_resumes_far_into_training_at_once() -> None:
    items = range(40)
    began = time.perf_counter()
    # 25M images into training on two ranks: replaying the draws would take many seconds.
    resumed = draw(InfiniteSampler(items, seed=2, rank=1, num_replicas=2, start=12_500_000), 60)
    assert time.perf_counter() - began < 1.0
    # Global positions 25,000,001, +2, ...: the odd places of passes 625,000 and 625,001.
    first_pass, second_pass = resumed[:20], resumed[20:40]
    assert len(set(first_pass)) == 20 and len(set(second_pass)) == 20
    assert resumed != draw(InfiniteSampler(items, seed=2, rank=1, num_replicas=2), 60)


def test_loader_gives_the_same_batches_with_workers(labelled_zip: Path) -> None:
    data = ImageDataset(labelled_zip, use_labels=True, mirror=True)
    serial = make_loader(data, batch=4, seed=1, workers=0)
    parallel = make_loader(data, batch=4, seed=1, workers=2)
    for _ in range(6):
        (img_a, lab_a), (img_b, lab_b) = next(serial), next(parallel)
        assert img_a.shape == (4, 3, 8, 8) and img_a.dtype == torch.uint8
        assert lab_a.shape == (4, 3)
        assert torch.equal(img_a, img_b) and torch.equal(lab_a, lab_b)
    order = draw(InfiniteSampler(data, seed=1), 4)
    first = next(make_loader(data, batch=4, seed=1, workers=0))[0]
    assert torch.equal(first, torch.stack([data[i][0] for i in order]))
    resumed = next(make_loader(data, batch=4, seed=1, workers=0, start=4))[0]
    second = next(itertools.islice(make_loader(data, batch=4, seed=1, workers=0), 1, None))[0]
    assert torch.equal(resumed, second)


def png_header(side: int) -> bytes:
    """A PNG that declares side x side grey pixels: signature, IHDR, a little IDAT, IEND.

    A decompression bomb as a dataset could hold one: 100 bytes that decode to side² bytes.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit grey, no interlace
    idat = zlib.compress(bytes(side + 1) * 4)  # the first rows; a decoder would go on
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("first", [True, False], ids=["bomb-first", "bomb-later"])
def test_a_png_bomb_is_refused_naming_its_entry(tmp_path: Path, first: bool) -> None:
    good = {nvlabs_name(i): png_bytes(random_pixels(i, size=16)) for i in range(3)}
    bomb = {"00000/bomb.png": png_header(65536)}  # 4.3 billion pixels
    files = {**bomb, **good} if first else {**good, **bomb}
    with pytest.raises(DatasetError, match=r"bomb\.zip: 00000/bomb\.png: declares more pixels"):
        ImageDataset(write_zip(tmp_path / "bomb.zip", files))


def test_a_side_past_the_largest_generator_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # with PIL's own guard switched off
    files = {"big.png": png_header(16384)}
    with pytest.raises(
        DatasetError, match=r"big\.png: is 16384x16384; .* power of two from 4 to 8192"
    ):
        ImageDataset(write_zip(tmp_path / "big.zip", files))


def test_train_refuses_a_png_bomb_with_exit_2(tmp_path: Path, capsys) -> None:
    from setfiles import write_set

    from lyriscope.cli import main

    root = write_set(tmp_path / "set", lines=["only line"])
    (root / "data").mkdir()
    write_zip(root / "data" / "line-01.zip", {"00000/img00000000.png": png_header(65536)})
    code = main(["train", str(root), "--line", "1", "--outdir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1
    assert "line-01.zip: 00000/img00000000.png: declares more pixels" in err
