"""What collect has stored for a line: manifest.jsonl, failed.jsonl, and the set's ATTRIBUTION.md.

sets/<name>/images/line-NN/manifest.jsonl holds one JSON object per stored image:
    {"sha256", "file", "source", "query", "page_url", "image_url", "creator", "license",
     "license_url", "attribution", "width", "height"}
(`file` is the name inside the line folder). It is appended and flushed per image, so a
stopped collect loses nothing and a torn last line (a crash mid-write) is ignored.
failed.jsonl beside it lists URLs refused for good ({"image_url", "reason"}), which later
runs skip. ATTRIBUTION.md in sets/<name>/images/ credits every image, line by line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from lyriscope import atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
FAILED = "failed.jsonl"
ATTRIBUTION = "ATTRIBUTION.md"
FIELDS: tuple[str, ...] = (
    "sha256",
    "file",
    "source",
    "query",
    "page_url",
    "image_url",
    "creator",
    "license",
    "license_url",
    "attribution",
    "width",
    "height",
)


def line_folder(images_dir: Path, line: int) -> Path:
    """The folder of line `line` (0-based): images/line-01 for the first line."""
    return images_dir / f"line-{line + 1:02d}"


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; a torn or foreign line is skipped with a warning."""
    if not path.is_file():
        return []
    records = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            log.warning("%s:%d: not a JSON object; skipped (a write cut short?)", path, number)
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class LineManifest:
    """The manifest and failure list of one line folder, open for appending.

    Use as a context manager; `add` and `add_failure` write one line and flush it to disk.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.records = read_jsonl(self.folder / MANIFEST)
        self.failures = read_jsonl(self.folder / FAILED)
        self.done_urls = {r.get("image_url") for r in self.records}
        self.failed_urls = {r.get("image_url") for r in self.failures}
        self.hashes = {r.get("sha256") for r in self.records}
        self._manifest: IO[str] | None = None
        self._failed: IO[str] | None = None

    def __enter__(self) -> LineManifest:
        self.folder.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.folder / MANIFEST)
        _cut_torn_tail(self.folder / FAILED)
        self._manifest = open(self.folder / MANIFEST, "a", encoding="utf-8")
        self._failed = open(self.folder / FAILED, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc_info) -> None:
        for f in (self._manifest, self._failed):
            if f is not None:
                f.close()
        self._manifest = self._failed = None

    def known(self, url: str) -> bool:
        """Whether `url` was stored or refused for good by an earlier run."""
        return url in self.done_urls or url in self.failed_urls

    def add(self, record: dict) -> None:
        """Append one image record (the FIELDS keys) and flush it to disk."""
        assert self._manifest is not None, "use LineManifest as a context manager"
        record = {k: record.get(k) for k in FIELDS}
        _write_line(self._manifest, record)
        self.records.append(record)
        self.done_urls.add(record["image_url"])
        self.hashes.add(record["sha256"])

    def add_failure(self, url: str, reason: str) -> None:
        """Remember that `url` failed for good (not an image, too large, gone...)."""
        assert self._failed is not None, "use LineManifest as a context manager"
        _write_line(self._failed, {"image_url": url, "reason": reason})
        self.failures.append({"image_url": url, "reason": reason})
        self.failed_urls.add(url)


def write_attribution(images_dir: Path, *, title: str = "") -> Path:
    """Write images/ATTRIBUTION.md from every line folder's manifest (atomically); return its path."""
    out = [
        f"# Image credits{f' — {title}' if title else ''}",
        "",
        "Images collected by `lyriscope collect`, by lyric line. Each entry gives the "
        "creator, the licence and the page where the image was found.",
        "",
    ]
    for folder in sorted(p for p in images_dir.glob("line-*") if p.is_dir()):
        records = read_jsonl(folder / MANIFEST)
        if not records:
            continue
        out += [f"## {folder.name}", ""]
        out += [_credit_line(r) for r in records]
        out.append("")
    path = images_dir / ATTRIBUTION
    atomic.write_text(path, "\n".join(out))
    return path


def _credit_line(record: dict) -> str:
    text = record.get("attribution") or "no credit given"
    parts = [f"- `{record.get('file')}`: {text}"]
    if record.get("license"):
        license_ = record["license"]
        parts.append(
            f"[{license_}]({record['license_url']})" if record.get("license_url") else license_
        )
    if record.get("page_url"):
        parts.append(f"[source page]({record['page_url']})")
    parts.append(f"via {record.get('source')}")
    return " — ".join(parts)


def _write_line(f: IO[str], record: dict) -> None:
    f.write(json.dumps(record, ensure_ascii=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _cut_torn_tail(path: Path) -> None:
    # A kill mid-write can leave a last line without its newline; appending after it would
    # glue two records together, so finish that line first.
    if path.is_file() and path.stat().st_size:
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def all_records(folders: Iterable[Path]) -> list[dict]:
    """The manifest records of several line folders, in order."""
    return [r for folder in folders for r in read_jsonl(folder / MANIFEST)]
