"""Verify a line's downloaded images: full decode, size and bomb limits, duplicates.

The originals in sets/<name>/images/line-NN/ are never modified. The result is
sets/<name>/images/line-NN/verified.jsonl, one JSON record per image file:
    {"file", "sha256", "query", "width", "height", "phash", "reason", "duplicate_of"}
where `reason` is null for an accepted image and otherwise one of REJECT_REASONS.
`width`/`height` are after EXIF orientation. `phash` is the 64-bit DCT hash in hex.

Images with transparency are composited on white by default (web cut-outs and logos are
usually drawn for a white page); `background="black"` is the other choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from lyriscope import atomic
from lyriscope.errors import DatasetError

MANIFEST = "manifest.jsonl"
VERIFIED = "verified.jsonl"
IMAGE_SUFFIXES = (
    ".jpg",
    ".jpeg",
    ".jfif",
    ".png",
    ".gif",
    ".webp",
    ".avif",
    ".bmp",
    ".tif",
    ".tiff",
)
REJECT_REASONS: tuple[str, ...] = (
    "unreadable",  # not an image at all (HTML error page, empty file)
    "corrupt",  # an image header, but the full decode fails (truncated, bad data)
    "bomb",  # more pixels than max_pixels: never decoded
    "too_small",  # shorter side below min_side
    "duplicate",  # same bytes as an accepted image
    "near_duplicate",  # perceptual hash within near_bits of an accepted image
)
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
# Each reason an image was left out, in words for people; {min_side} is the size limit.
REASON_WORDS: dict[str, str] = {
    "unreadable": "not images",
    "corrupt": "broken images",
    "bomb": "too many pixels to open",
    "too_small": "smaller than {min_side} on the short side (--min-side lowers the limit)",
    "duplicate": "exact copies",
    "near_duplicate": "near-copies of another image",
    # curation's decisions (prepare reports them beside verify's)
    "cluster_dropped": "in dropped clusters",
    "image_dropped": "dropped one by one",
    "outlier": "outliers of their cluster",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyOptions:
    min_side: int = (
        256  # shorter side in pixels (after EXIF rotation) below which an image is rejected
    )
    max_pixels: int = 64_000_000  # width*height above which an image is rejected unread (bomb)
    near_bits: int = (
        6  # pHash Hamming distance (of 64 bits) at or below which images are near duplicates
    )
    background: str = "white"  # what transparent pixels are composited on: "white" or "black"


@dataclass(frozen=True)
class VerifyReport:
    line_dir: Path
    records: tuple[dict, ...]  # as written to verified.jsonl

    @property
    def accepted(self) -> list[dict]:
        return [r for r in self.records if r["reason"] is None]

    @property
    def rejected(self) -> Counter:
        """Count of rejected images per reason."""
        return Counter(r["reason"] for r in self.records if r["reason"] is not None)


class RejectedImage(Exception):
    """An image file that cannot be used; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def load_rgb(
    path: str | Path, *, max_pixels: int = VerifyOptions.max_pixels, background: str = "white"
) -> Image.Image:
    """Fully decode an image file into an 8-bit RGB image, upright, first frame only.

    Raises RejectedImage ('unreadable', 'corrupt' or 'bomb') for files that cannot be used.
    """
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    with warnings.catch_warnings():
        # Pillow warns (then errors) on huge images; both mean "do not decode this", unless
        # the caller allows more pixels than Pillow's warning limit.
        allowed = max_pixels > (Image.MAX_IMAGE_PIXELS or 0)
        warnings.simplefilter("ignore" if allowed else "error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise RejectedImage("bomb", str(exc)) from None
        except UnidentifiedImageError as exc:
            raise RejectedImage("unreadable", str(exc)) from None
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise RejectedImage("bomb", f"{width}x{height} pixels exceed {max_pixels}")
            try:
                img.seek(0)  # first frame of an animation
                img.load()  # a full decode; Image.verify() would miss truncation
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img, BACKGROUNDS[background])
            except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
                raise RejectedImage("bomb", str(exc)) from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise RejectedImage("corrupt", str(exc)) from None


def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit (or 32-bit) greyscale: scale to 8 bits instead of clipping at 255.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr8 = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return img.convert("RGB")  # CMYK, YCbCr, P, L, 1, RGB


def phash(img: Image.Image, *, hash_size: int = 8, scale: int = 4) -> int:
    """64-bit perceptual hash: DCT of a 32x32 grey image, low 8x8 band thresholded at its median."""
    side = hash_size * scale
    grey = np.asarray(
        img.convert("L").resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64
    )  # [32, 32]
    d = _dct_matrix(side)
    coeffs = (d @ grey @ d.T)[:hash_size, :hash_size]  # [8, 8] lowest frequencies
    band = coeffs.flatten()
    bits = band > np.median(band[1:])  # the DC term would dominate the median
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix [n, n]: row k is the k-th cosine basis."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two hashes."""
    return (a ^ b).bit_count()


def read_manifest(line_dir: Path) -> dict[str, dict]:
    """Manifest records of a line folder by file name (empty when there is no manifest).

    Lines that are not JSON objects with a "file" (a write cut short) are skipped with a warning.
    """
    path = line_dir / MANIFEST
    if not path.is_file():
        return {}
    records: dict[str, dict] = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict) or not isinstance(rec.get("file"), str):
            # As collect does: a line torn by a crash mid-write costs that image its query only.
            log.warning("%s:%d: not a manifest record; skipped", path, number)
            continue
        records[Path(rec["file"]).name] = rec
    return records


def image_files(line_dir: Path) -> list[Path]:
    """The image files of a line folder, sorted by name."""
    return sorted(
        p
        for p in line_dir.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def verify_line(
    line_dir: str | Path, *, options: VerifyOptions = VerifyOptions(), progress: bool = False
) -> VerifyReport:
    """Check every image of a line folder and write its verified.jsonl; return the report."""

    line_dir = Path(line_dir)
    if not line_dir.is_dir():
        raise DatasetError(f"{line_dir}: no such image folder; run `lyriscope collect` first")
    manifest = read_manifest(line_dir)
    files = image_files(line_dir)
    records: list[dict] = []
    for path in tqdm(files, desc=f"verify {line_dir.name}", unit="img", disable=not progress):
        data = path.read_bytes()
        record = {
            "file": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "query": manifest.get(path.name, {}).get("query", ""),
            "width": None,
            "height": None,
            "phash": None,
            "reason": None,
            "duplicate_of": None,
        }
        try:
            img = load_rgb(path, max_pixels=options.max_pixels, background=options.background)
        except RejectedImage as rejected:
            record["reason"] = rejected.reason
            records.append(record)
            continue
        record["width"], record["height"] = img.size
        record["phash"] = f"{phash(img):016x}"
        if min(img.size) < options.min_side:
            record["reason"] = "too_small"
        records.append(record)
    _mark_duplicates(records, near_bits=options.near_bits)
    atomic.write_text(line_dir / VERIFIED, "".join(json.dumps(r) + "\n" for r in records))
    return VerifyReport(line_dir=line_dir, records=tuple(records))


def _mark_duplicates(records: list[dict], *, near_bits: int) -> None:
    # The largest copy wins (most pixels, then name for stability); later ones point at it.
    candidates = sorted(
        (r for r in records if r["reason"] is None),
        key=lambda r: (-r["width"] * r["height"], r["file"]),
    )
    by_sha: dict[str, str] = {}
    kept: list[tuple[int, str]] = []
    for r in candidates:
        if r["sha256"] in by_sha:
            r["reason"], r["duplicate_of"] = "duplicate", by_sha[r["sha256"]]
            continue
        h = int(r["phash"], 16)
        near = next((name for kh, name in kept if hamming(h, kh) <= near_bits), None)
        if near is not None:
            r["reason"], r["duplicate_of"] = "near_duplicate", near
            continue
        by_sha[r["sha256"]] = r["file"]
        kept.append((h, r["file"]))


def read_verified(line_dir: str | Path) -> list[dict]:
    """The records of a line's verified.jsonl (all of them; accepted ones have reason None)."""
    path = Path(line_dir) / VERIFIED
    if not path.is_file():
        raise DatasetError(f"{path}: missing; run `lyriscope cluster` (which verifies) first")
    return [json.loads(t) for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]


def count_reasons(records: Iterable[dict]) -> dict[str, int]:
    """Rejected images per reason, in REJECT_REASONS order, zeros left out."""
    counts = Counter(r["reason"] for r in records if r["reason"] is not None)
    return {reason: counts[reason] for reason in REJECT_REASONS if counts[reason]}


def rejections_in_words(counts: Mapping[str, int], *, min_side: int | None = None) -> str:
    """Rejected images per reason as a phrase: "40 smaller than 256 px ..., 2 broken images".

    min_side: the size limit the images were verified with; None when it is not known here.
    """
    limit = "the size limit" if min_side is None else f"{min_side} px"
    parts = [
        f"{n} {REASON_WORDS.get(reason, reason).format(min_side=limit)}"
        for reason, n in counts.items()
        if n
    ]
    return ", ".join(parts) or "none"
