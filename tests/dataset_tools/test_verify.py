"""Verify: full decode, limits, colour modes, orientation, duplicates, reject counts."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
from PIL import Image

from lyriscope.dataset_tools.verify import (
    VERIFIED,
    RejectedImage,
    VerifyOptions,
    _dct_matrix,
    hamming,
    load_rgb,
    phash,
    read_verified,
    verify_line,
)
from lyriscope.errors import DatasetError


def blobs(seed: int, size: tuple[int, int] = (300, 300), channels: int = 3) -> np.ndarray:
    """A smooth random picture [H, W, C] uint8: distinct seeds give clearly different images."""
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 6, channels)) * 255).astype(np.uint8)
    img = Image.fromarray(small.squeeze() if channels == 1 else small)
    return np.asarray(img.resize(size, Image.Resampling.BICUBIC))


def png_with_size(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims width x height (a decompression bomb)."""
    buf = io.BytesIO()
    Image.fromarray(blobs(9, (64, 64))).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    # IHDR follows the 8-byte signature: length(4) "IHDR" width(4) height(4) ... crc(4).
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def line_dir(tmp_path: Path) -> Path:
    """A line folder with good images and one of each problem, plus a manifest."""
    d = tmp_path / "images" / "line-01"
    d.mkdir(parents=True)
    files: dict[str, bytes] = {}

    def save(name: str, img: Image.Image, **kw) -> None:
        buf = io.BytesIO()
        img.save(
            buf,
            format=kw.pop("format", None) or Image.registered_extensions()[Path(name).suffix],
            **kw,
        )
        files[name] = buf.getvalue()

    save("good1.png", Image.fromarray(blobs(1)))
    save("good2.png", Image.fromarray(blobs(2, (400, 320))))
    save("good3.jpg", Image.fromarray(blobs(3)), quality=95)
    files["zcopy-of-good1.png"] = files["good1.png"]
    # The same picture as good2, smaller and re-encoded: a near duplicate.
    save("near-good2.jpg", Image.fromarray(blobs(2, (400, 320))).resize((320, 256)), quality=80)
    truncated = io.BytesIO()
    Image.fromarray(blobs(4)).save(truncated, format="JPEG", quality=95)
    files["truncated.jpg"] = truncated.getvalue()[: len(truncated.getvalue()) // 2]
    files["error-page.jpg"] = b"<!doctype html><html><body>403 Forbidden</body></html>"
    save("tiny.png", Image.fromarray(blobs(5, (100, 120))))
    save("cmyk.jpg", Image.fromarray(blobs(6)).convert("CMYK"), quality=95)
    indices = (blobs(7, channels=1).astype(np.int32) % 254 + 1).astype(np.uint8)
    indices[:, :150] = 0  # left half transparent
    pal = Image.fromarray(indices, mode="L").convert("P")
    pal.putpalette([v for i in range(256) for v in ((i * 7) % 256, (i * 13) % 256, i)])
    save("palette-alpha.png", pal, transparency=0)
    deep = (blobs(8, channels=1).astype(np.uint32) * 257).astype(np.uint16)
    save("grey16.png", Image.fromarray(deep))
    frames = [
        Image.fromarray(blobs(10) * np.array([1, 0, 0], dtype=np.uint8)),
        Image.fromarray(blobs(11) * np.array([0, 0, 1], dtype=np.uint8)),
    ]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["animated.gif"] = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    save("rotated.jpg", Image.fromarray(blobs(12, (400, 300))), quality=95, exif=exif)
    files["bomb.png"] = png_with_size(20000, 20000)
    manifest = []
    for name, data in files.items():
        (d / name).write_bytes(data)
        query = "beam of light" if name.startswith("good3") else "ray of light"
        manifest.append(
            {
                "sha256": hashlib.sha256(data).hexdigest(),
                "file": name,
                "query": query,
                "source": "test",
                "license": "cc0",
            }
        )
    (d / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    return d


def test_reject_counts_and_verified_list(line_dir: Path) -> None:
    before = {p.name: p.read_bytes() for p in line_dir.iterdir()}
    report = verify_line(line_dir)
    assert dict(report.rejected) == {
        "unreadable": 1,
        "corrupt": 1,
        "bomb": 1,
        "too_small": 1,
        "duplicate": 1,
        "near_duplicate": 1,
    }
    accepted = {r["file"] for r in report.accepted}
    assert accepted == {
        "good1.png",
        "good2.png",
        "good3.jpg",
        "cmyk.jpg",
        "palette-alpha.png",
        "grey16.png",
        "animated.gif",
        "rotated.jpg",
    }
    by_file = {r["file"]: r for r in read_verified(line_dir)}
    assert len(by_file) == 14
    assert by_file["zcopy-of-good1.png"]["duplicate_of"] == "good1.png"
    assert by_file["near-good2.jpg"]["duplicate_of"] == "good2.png"  # the larger copy is kept
    assert by_file["good3.jpg"]["query"] == "beam of light"
    assert (by_file["rotated.jpg"]["width"], by_file["rotated.jpg"]["height"]) == (300, 400)
    # The originals are untouched; only verified.jsonl is new.
    after = {p.name: p.read_bytes() for p in line_dir.iterdir() if p.name != VERIFIED}
    assert after == before


def test_min_side_is_configurable(line_dir: Path) -> None:
    report = verify_line(line_dir, options=VerifyOptions(min_side=90))
    assert "too_small" not in report.rejected
    assert "tiny.png" in {r["file"] for r in report.accepted}


@pytest.mark.parametrize(
    "name, reason",
    [("truncated.jpg", "corrupt"), ("error-page.jpg", "unreadable"), ("bomb.png", "bomb")],
)
def test_unusable_files_raise_with_reason(line_dir: Path, name: str, reason: str) -> None:
    with pytest.raises(RejectedImage) as info:
        load_rgb(line_dir / name)
    assert info.value.reason == reason


def test_bomb_cap_applies_below_pillows_limit(line_dir: Path) -> None:
    with pytest.raises(RejectedImage, match="bomb"):
        load_rgb(line_dir / "good1.png", max_pixels=300 * 300 - 1)


def test_colour_modes_become_rgb(line_dir: Path) -> None:
    for name in ("cmyk.jpg", "palette-alpha.png", "grey16.png", "animated.gif", "rotated.jpg"):
        assert load_rgb(line_dir / name).mode == "RGB"
    cmyk = np.asarray(load_rgb(line_dir / "cmyk.jpg"), dtype=np.float64)
    assert np.abs(cmyk - blobs(6)).mean() < 8  # the same picture, not inverted
    grey = np.asarray(load_rgb(line_dir / "grey16.png"))
    assert np.abs(grey[..., 0].astype(int) - blobs(8, channels=1)).max() <= 1  # scaled, not clipped


@pytest.mark.parametrize("background, value", [("white", 255), ("black", 0)])
def test_transparency_composited_on_background(line_dir: Path, background: str, value: int) -> None:
    rgb = np.asarray(load_rgb(line_dir / "palette-alpha.png", background=background))
    assert (rgb[:, :150] == value).all()
    assert not (rgb[:, 150:] == value).all()


def test_animation_gives_first_frame(line_dir: Path) -> None:
    rgb = np.asarray(load_rgb(line_dir / "animated.gif"), dtype=np.float64)
    assert rgb[..., 0].mean() > 50 and rgb[..., 2].mean() < 10  # red frame 0, not blue frame 1


def test_exif_orientation_applied(line_dir: Path) -> None:
    img = load_rgb(line_dir / "rotated.jpg")
    assert img.size == (300, 400)
    stored = blobs(12, (400, 300)).astype(np.float64)
    # Orientation 6 displays the stored image turned 90° clockwise.
    expected = np.rot90(stored, k=-1)
    assert np.abs(np.asarray(img, dtype=np.float64) - expected).mean() < 8


def test_dct_matches_scipy() -> None:
    x = np.random.default_rng(0).random((32, 32))
    d = _dct_matrix(32)
    assert np.allclose(d @ x @ d.T, scipy.fft.dctn(x, norm="ortho"))


def test_phash_near_for_copies_far_for_different() -> None:
    a = Image.fromarray(blobs(20, (320, 240)))
    b = Image.fromarray(blobs(21, (320, 240)))
    buf = io.BytesIO()
    a.resize((200, 150)).save(buf, format="JPEG", quality=70)
    copy = Image.open(buf)
    assert hamming(phash(a), phash(copy)) <= 4
    assert hamming(phash(a), phash(b)) > 12


def test_missing_folder_and_torn_manifest(tmp_path: Path, caplog) -> None:
    with pytest.raises(DatasetError, match="run `lyriscope collect`"):
        verify_line(tmp_path / "nope")
    Image.fromarray(blobs(30)).save(tmp_path / "a.png")
    Image.fromarray(blobs(31)).save(tmp_path / "b.png")
    (tmp_path / "manifest.jsonl").write_text('{"file": "a.png", "query": "sun"}\n{"file": "b.pn')
    report = verify_line(tmp_path)
    assert [(r["file"], r["query"]) for r in report.accepted] == [("a.png", "sun"), ("b.png", "")]
    assert "manifest.jsonl:2: not a manifest record" in caplog.text
