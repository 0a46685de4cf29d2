"""Training-ready datasets: a line's kept images, squared and resized, in an NVlabs zip.

sets/<name>/data/line-NN.zip holds size x size RGB PNGs named 00000/img00000000.png, ...
(as NVlabs dataset_tool.py writes them) and dataset.json {"labels": null}. The images kept
are those curation.json keeps; a line without curation keeps every verified image.
sets/<name>/data/summary.json counts per line what was kept and what was dropped, by reason.
The zip is byte-reproducible: the same images and options give the same bytes on every run
(fixed entry dates, permissions and order), so a dataset's hash says whether it changed.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from lyriscope import atomic
from lyriscope.dataset_tools.cluster import images_dir, read_clusters
from lyriscope.dataset_tools.curation import decide_images, line_curation, load_curation
from lyriscope.dataset_tools.verify import (
    VERIFIED,
    RejectedImage,
    count_reasons,
    load_rgb,
    read_verified,
    verify_line,
)
from lyriscope.errors import DatasetError

SQUARE_MODES = ("crop", "pad")
SUMMARY_FILE = "summary.json"
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: no clock in the bytes
ZIP_FILE_MODE = stat.S_IFREG | 0o644  # a plain file readable by all, as `zip` stores one


@dataclass(frozen=True)
class PrepareOptions:
    size: int = 1024  # output side in pixels
    square: str = "crop"  # "crop": centre crop to the shorter side; "pad": letterbox to the longer
    pad_colour: tuple[int, int, int] = (0, 0, 0)  # fill of the "pad" bars
    background: str = "white"  # what transparency is composited on (see verify)


def data_path(set_root: str | Path, line: int) -> Path:
    """sets/<name>/data/line-NN.zip (line 0-based, NN 1-based)."""
    return Path(set_root) / "data" / f"line-{line + 1:02d}.zip"


def square_image(
    img: Image.Image,
    *,
    size: int,
    square: str = "crop",
    pad_colour: tuple[int, int, int] = (0, 0, 0),
) -> Image.Image:
    """An RGB image of size x size: centre-cropped or padded square, then Lanczos-resized."""
    if square not in SQUARE_MODES:
        raise DatasetError(f"square mode must be one of {', '.join(SQUARE_MODES)}, not {square!r}")
    img = img.convert("RGB")
    w, h = img.size
    if square == "crop":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return img.resize(
            (size, size), Image.Resampling.LANCZOS, box=(left, top, left + s, top + s)
        )
    s = max(w, h)
    canvas = Image.new("RGB", (s, s), pad_colour)
    canvas.paste(img, ((s - w) // 2, (s - h) // 2))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def kept_images(set_root: str | Path, line: int) -> tuple[list[str], dict[str, int]]:
    """File names a line keeps (sorted) and counts of dropped images per reason.

    Uses curation.json when it has decisions for the line, else every verified image;
    verifies the line first when it has no verified.jsonl yet.
    """
    folder = images_dir(set_root, line)
    if not (folder / VERIFIED).is_file():
        verify_line(folder)
    records = read_verified(folder)
    dropped = count_reasons(records)
    curation = load_curation(set_root)
    if str(line + 1) not in curation["lines"]:
        return sorted(r["file"] for r in records if r["reason"] is None), dropped
    clusters = read_clusters(set_root, line)
    if clusters is None:
        raise DatasetError(
            f"{set_root}: curation.json has decisions for line {line + 1} but the "
            f"line has no clusters; run `lyriscope cluster {set_root} --line {line + 1}`"
        )
    fates = decide_images(clusters, line_curation(curation, line))
    for fate in fates:
        if not fate["kept"]:
            dropped[fate["reason"]] = dropped.get(fate["reason"], 0) + 1
    return sorted(f["file"] for f in fates if f["kept"]), dropped


def prepare_line(
    set_root: str | Path,
    line: int,
    *,
    options: PrepareOptions = PrepareOptions(),
    progress: bool = False,
) -> dict:
    """Write line `line`'s (0-based) dataset zip; returns its summary {"line", "images", "size", "dropped"}."""

    files, dropped = kept_images(set_root, line)
    folder = images_dir(set_root, line)
    if not files:
        raise DatasetError(
            f"{folder}: line {line + 1} keeps no images (dropped: {dropped or 'none'}); "
            f"collect more or keep more clusters with `lyriscope curate`"
        )
    out = data_path(set_root, line)
    written = 0
    with atomic.atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name in tqdm(files, desc=f"prepare line {line + 1}", unit="img", disable=not progress):
            try:
                img = load_rgb(folder / name, background=options.background)
            except RejectedImage as exc:  # changed on disk since it was verified
                dropped[exc.reason] = dropped.get(exc.reason, 0) + 1
                continue
            square = square_image(
                img, size=options.size, square=options.square, pad_colour=options.pad_colour
            )
            buf = io.BytesIO()
            square.save(buf, format="PNG", compress_level=6)
            zf.writestr(zip_entry(f"{written // 1000:05d}/img{written:08d}.png"), buf.getvalue())
            written += 1
        if written == 0:  # raising here leaves no zip behind
            raise DatasetError(
                f"{folder}: none of line {line + 1}'s kept images can be read any more; "
                f"run `lyriscope cluster` again"
            )
        zf.writestr(zip_entry("dataset.json"), json.dumps({"labels": None}))
    summary = {
        "line": line + 1,
        "images": written,
        "size": options.size,
        "square": options.square,
        "zip": str(out.relative_to(Path(set_root))),
        "dropped": dict(sorted(dropped.items())),
    }
    _update_summary(Path(set_root), summary)
    return summary


def zip_entry(name: str) -> zipfile.ZipInfo:
    """A stored zip entry whose header depends only on `name` (not the clock or the platform)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED  # PNGs are compressed already
    info.create_system = 3  # Unix, so external_attr holds the mode (ZipInfo's default varies)
    info.external_attr = ZIP_FILE_MODE << 16
    return info


def _update_summary(set_root: Path, summary: dict) -> None:
    path = set_root / "data" / SUMMARY_FILE
    lines: dict = {}
    if path.is_file():
        try:
            lines = json.loads(path.read_text(encoding="utf-8")).get("lines", {})
        except (json.JSONDecodeError, AttributeError):
            lines = {}  # a damaged summary is rebuilt; it only reports
    lines[str(summary["line"])] = summary
    ordered = dict(sorted(lines.items(), key=lambda kv: int(kv[0])))
    atomic.write_text(path, json.dumps({"lines": ordered}, indent=1) + "\n")
