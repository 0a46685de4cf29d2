"""Curation decisions of a set (sets/<name>/curation.json) and which images they keep.

curation.json, lines keyed by their 1-based number as people see them:
    {"version": 1, "lines": {"3": {
        "merged": true,                     # clusters of all queries together (group "_all")
        "outlier": 2.5,                     # drop images with a larger outlier score; null = off
        "clusters": {"_all": {"1": "drop"}, "ray-of-light": {"0": "keep"}},
        "images": {"<sha256>": "keep"}      # a single image's override, beats everything
    }}}
A cluster without a decision is kept. With "merged" the line's merged clustering decides,
otherwise the clustering of each image's own query. The functions here are pure: they
return a changed copy of the document; `save_curation` writes it atomically.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path

from lyriscope import atomic
from lyriscope.dataset_tools.cluster import MERGED
from lyriscope.errors import DatasetError

CURATION_FILE = "curation.json"
DECISIONS = ("keep", "drop")
VERSION = 1


def empty_curation() -> dict:
    return {"version": VERSION, "lines": {}}


def default_line() -> dict:
    return {"merged": True, "outlier": None, "clusters": {}, "images": {}}


def curation_path(set_root: str | Path) -> Path:
    return Path(set_root) / CURATION_FILE


def load_curation(set_root: str | Path) -> dict:
    """The set's curation document (empty when there is no curation.json), checked."""
    path = curation_path(set_root)
    if not path.is_file():
        return empty_curation()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); fix or delete it") from None
    _check(doc, path)
    return doc


def save_curation(set_root: str | Path, doc: dict) -> None:
    """Write the curation document atomically."""
    _check(doc, curation_path(set_root))
    atomic.write_text(curation_path(set_root), json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _check(doc: object, path: Path) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("lines"), dict):
        raise DatasetError(f"{path}: expected an object with a 'lines' object")
    for key, line in doc["lines"].items():
        where = f"{path}: lines.{key}"
        if not key.isdigit() or int(key) < 1:
            raise DatasetError(f"{where}: expected a line number 1, 2, ... as key")
        if not isinstance(line, dict):
            raise DatasetError(f"{where}: expected an object")
        unknown = set(line) - set(default_line())
        if unknown:
            raise DatasetError(
                f"{where}.{sorted(unknown)[0]}: unknown key; expected one of "
                + ", ".join(default_line())
            )
        outlier = line.get("outlier")
        if outlier is not None and (not isinstance(outlier, int | float) or outlier <= 0):
            raise DatasetError(
                f"{where}.outlier: expected a positive number or null, got {outlier!r}"
            )
        for group, decisions in line.get("clusters", {}).items():
            for cid, d in decisions.items():
                if not cid.isdigit() or d not in DECISIONS:
                    raise DatasetError(
                        f"{where}.clusters.{group}.{cid}: expected a cluster "
                        f'number mapped to "keep" or "drop", got {d!r}'
                    )
        for sha, d in line.get("images", {}).items():
            if d not in DECISIONS:
                raise DatasetError(f'{where}.images.{sha}: expected "keep" or "drop", got {d!r}')


def line_curation(doc: dict, line: int) -> dict:
    """The decisions of line `line` (0-based), defaults filled in."""
    return {**default_line(), **copy.deepcopy(doc["lines"].get(str(line + 1), {}))}


def _with_line(doc: dict, line: int, change) -> dict:
    new = copy.deepcopy(doc)
    entry = line_curation(new, line)
    change(entry)
    new["lines"][str(line + 1)] = entry
    return new


def set_cluster(doc: dict, line: int, group: str, cluster: int, decision: str | None) -> dict:
    """Keep or drop one cluster of a line's group (None forgets the decision)."""
    if decision is not None and decision not in DECISIONS:
        raise DatasetError(f"cluster decision must be 'keep' or 'drop', not {decision!r}")

    def change(entry: dict) -> None:
        decisions = entry["clusters"].setdefault(group, {})
        if decision is None:
            decisions.pop(str(cluster), None)
        else:
            decisions[str(cluster)] = decision

    return _with_line(doc, line, change)


def keep_only(doc: dict, line: int, group: str, keep: Iterable[int], *, count: int) -> dict:
    """Keep clusters `keep` of a group of `count` clusters and drop all the others."""
    kept = set(keep)

    def change(entry: dict) -> None:
        entry["clusters"][group] = {str(c): "keep" if c in kept else "drop" for c in range(count)}

    return _with_line(doc, line, change)


def set_image(doc: dict, line: int, sha256: str, decision: str | None) -> dict:
    """Override one image: always keep, always drop, or None to follow its cluster."""
    if decision is not None and decision not in DECISIONS:
        raise DatasetError(f"image decision must be 'keep' or 'drop', not {decision!r}")

    def change(entry: dict) -> None:
        if decision is None:
            entry["images"].pop(sha256, None)
        else:
            entry["images"][sha256] = decision

    return _with_line(doc, line, change)


def set_merged(doc: dict, line: int, merged: bool) -> dict:
    """Decide a line by its merged clustering (True) or by each query's own (False)."""
    return _with_line(doc, line, lambda entry: entry.update(merged=bool(merged)))


def set_outlier(doc: dict, line: int, threshold: float | None) -> dict:
    """Drop a line's images whose outlier score exceeds `threshold` (None: no outlier cut)."""
    if threshold is not None and not threshold > 0:
        raise DatasetError(f"outlier threshold must be a positive number, not {threshold!r}")
    return _with_line(
        doc,
        line,
        lambda entry: entry.update(outlier=None if threshold is None else float(threshold)),
    )


def decide_images(clusters_doc: dict, entry: dict) -> list[dict]:
    """Every clustered image of a line with its fate.

    clusters_doc: the line's clusters.json; entry: its `line_curation`.
    Returns [{"file", "sha256", "group", "cluster", "outlier", "kept", "reason"}], where
    reason is "kept", "image_kept", "image_dropped", "cluster_dropped" or "outlier".
    """
    groups = {g["slug"]: g for g in clusters_doc["groups"]}
    by_query = {g["query"]: g["slug"] for g in clusters_doc["groups"] if g["slug"] != MERGED}
    placement: dict[str, tuple[str, dict, dict]] = {}
    for slug, group in groups.items():
        for cluster in group["clusters"]:
            for img in cluster["images"]:
                own = MERGED if entry["merged"] else by_query.get(img["query"], MERGED)
                if slug == own:
                    placement[img["sha256"]] = (slug, cluster, img)
    out = []
    for sha, (slug, cluster, img) in placement.items():
        decision = entry["clusters"].get(slug, {}).get(str(cluster["id"]), "keep")
        override = entry["images"].get(sha)
        threshold = entry["outlier"]
        if override == "keep":
            kept, reason = True, "image_kept"
        elif override == "drop":
            kept, reason = False, "image_dropped"
        elif decision == "drop":
            kept, reason = False, "cluster_dropped"
        elif threshold is not None and img["outlier"] > threshold:
            kept, reason = False, "outlier"
        else:
            kept, reason = True, "kept"
        out.append(
            {
                "file": img["file"],
                "sha256": sha,
                "group": slug,
                "cluster": cluster["id"],
                "outlier": img["outlier"],
                "kept": kept,
                "reason": reason,
            }
        )
    return sorted(out, key=lambda r: r["file"])


def parse_clusters_spec(spec: str) -> tuple[int, list[int]]:
    """'3:0,2,7' -> (line 2 (0-based), [0, 2, 7])."""
    line_text, sep, ids_text = spec.partition(":")
    try:
        if not sep:
            raise ValueError
        line = int(line_text)
        ids = [int(x) for x in ids_text.split(",") if x.strip()]
        if line < 1 or not ids or min(ids) < 0:
            raise ValueError
    except ValueError:
        raise DatasetError(
            f"{spec!r}: expected LINE:CLUSTER,CLUSTER,... such as 3:0,2,7 "
            f"(line from 1, clusters from 0)"
        ) from None
    return line - 1, ids


def parse_outlier_spec(spec: str) -> tuple[int | None, float]:
    """'2.5' -> (None (every line), 2.5); '3:2.5' -> (2, 2.5)."""
    line_text, sep, value_text = spec.rpartition(":")
    try:
        line = int(line_text) - 1 if sep else None
        value = float(value_text)
        if (line is not None and line < 0) or not value > 0:
            raise ValueError
    except ValueError:
        raise DatasetError(
            f"{spec!r}: expected a positive threshold such as 2.5, or LINE:THRESHOLD such as 3:2.5"
        ) from None
    return line, value
