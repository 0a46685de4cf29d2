"""Training-ready datasets: a line's kept images, squared and resized, in an NVlabs zip.

sets/<name>/data/line-NN.zip holds size x size RGB PNGs named 00000/img00000000.png, ...
(as NVlabs dataset_tool.py writes them) and dataset.json {"labels": null}. The images kept
are those curation.json keeps; a line without curation keeps every verified image.
sets/<name>/data/summary.json counts per line what was kept and what was dropped, by reason.
For one class-conditional model of the whole song, sets/<name>/data/song.zip holds every
line's images with dataset.json labels = the line's index (0-based, as NVlabs' --class),
optionally balanced so that each line weighs the same in training.
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
BALANCE_MODES = ("none", "oversample", "undersample")  # lines as they are, or equal counts
SONG_DATA = "song.zip"  # the conditional dataset of all lines
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
    with atomic.atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        names = _write_images(
            zf,
            [(folder, name) for name in files],
            options=options,
            dropped=dropped,
            desc=f"prepare line {line + 1}",
            progress=progress,
        )
        if not names:  # raising here leaves no zip behind
            raise DatasetError(
                f"{folder}: none of line {line + 1}'s kept images can be read any more; "
                f"run `lyriscope cluster` again"
            )
        zf.writestr(zip_entry("dataset.json"), json.dumps({"labels": None}))
    written = len(names)
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


def prepare_song(
    set_root: str | Path,
    lines: list[int],
    *,
    balance: str = "none",
    options: PrepareOptions = PrepareOptions(),
    progress: bool = False,
) -> dict:
    """Write data/song.zip: every line's kept images, labelled with the line (0-based).

    balance "oversample" repeats a line's images until it has as many as the largest line,
    "undersample" keeps as many of each as the smallest line has (the first in name order),
    so that each line weighs the same in training. Returns {"zip", "size", "lines": {line
    (1-based): {"images", "written", "dropped"}}}.
    """
    if balance not in BALANCE_MODES:
        raise DatasetError(
            f"--balance: expected one of {', '.join(BALANCE_MODES)}, not {balance!r}"
        )
    kept, dropped = {}, {}
    for line in lines:
        kept[line], dropped[line] = kept_images(set_root, line)
    empty = [str(line + 1) for line in lines if not kept[line]]
    if empty:
        raise DatasetError(
            f"{set_root}: line(s) {', '.join(empty)} keep no images; a conditional model needs "
            f"pictures of every line (collect more, or keep more clusters with `lyriscope curate`)"
        )
    counts = [len(kept[line]) for line in lines]
    target = {"none": None, "oversample": max(counts), "undersample": min(counts)}[balance]
    out = Path(set_root) / "data" / SONG_DATA
    labels: list[list] = []
    report: dict[str, dict] = {}
    with atomic.atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for line in lines:
            files = kept[line] if target is None else _cycled(kept[line], target)
            folder = images_dir(set_root, line)
            names = _write_images(
                zf,
                [(folder, name) for name in files],
                options=options,
                dropped=dropped[line],
                desc=f"prepare line {line + 1}",
                progress=progress,
                first=len(labels),
            )
            labels += [[name, line] for name in names]
            report[str(line + 1)] = {
                "images": len(kept[line]),
                "written": len(names),
                "dropped": dict(sorted(dropped[line].items())),
            }
        zf.writestr(zip_entry("dataset.json"), json.dumps({"labels": labels}))
    return {"zip": str(out.relative_to(Path(set_root))), "size": options.size, "lines": report}


def _cycled(files: list[str], count: int) -> list[str]:
    """The first `count` of files repeated in order (oversampling) or cut (undersampling)."""
    return [files[i % len(files)] for i in range(count)]


def _write_images(
    zf: zipfile.ZipFile,
    images: list[tuple[Path, str]],
    *,
    options: PrepareOptions,
    dropped: dict[str, int],
    desc: str,
    progress: bool,
    first: int = 0,
) -> list[str]:
    """Square each (folder, file) into the zip as NVlabs names it; returns the entry names.

    An image that cannot be read any more is counted in `dropped` and skipped (once, however
    often oversampling names it).
    """
    names: list[str] = []
    unreadable: set[tuple[Path, str]] = set()
    for folder, file in tqdm(images, desc=desc, unit="img", disable=not progress):
        data = None
        if (folder, file) not in unreadable:
            data = _square_png(folder / file, options=options, dropped=dropped)
        if data is None:
            unreadable.add((folder, file))
            continue
        index = first + len(names)
        name = f"{index // 1000:05d}/img{index:08d}.png"
        zf.writestr(zip_entry(name), data)
        names.append(name)
    return names


def _square_png(path: Path, *, options: PrepareOptions, dropped: dict[str, int]) -> bytes | None:
    try:
        img = load_rgb(path, background=options.background)
    except RejectedImage as exc:  # changed on disk since it was verified
        dropped[exc.reason] = dropped.get(exc.reason, 0) + 1
        return None
    square = square_image(
        img, size=options.size, square=options.square, pad_colour=options.pad_colour
    )
    buf = io.BytesIO()
    square.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


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
