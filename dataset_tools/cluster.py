"""K-means clusters of a line's verified images, per query and over all queries merged.

For line NN of a set this writes sets/<name>/clusters/line-NN/:
    clusters.json                  the clusterings (see `cluster_line`)
    <query-slug>/cluster-KK.png    a contact sheet per cluster of each query
    _all/cluster-KK.png            the same for the line's queries merged
Clusters are numbered by size, largest first. Each image gets an outlier score: its
distance to its centroid divided by the mean distance of its cluster's members (1 is
typical; 2.5 is two and a half times as far out as the average member).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.cluster import KMeans

from lyriscope import atomic
from lyriscope.dataset_tools.contact_sheet import SheetLayout, write_contact_sheet
from lyriscope.dataset_tools.features import (
    ClipModel,
    FeatureOptions,
    extract_features,
    load_clip_from,
    rank_by_text,
)
from lyriscope.dataset_tools.verify import (
    VerifyOptions,
    load_rgb,
    rejections_in_words,
    verify_line,
)
from lyriscope.errors import DatasetError

MERGED = "_all"  # the group of all a line's queries together (a query slug never starts with _)
CLUSTERS_FILE = "clusters.json"
DEFAULT_K = 10
WORKING_SIDE = 256  # shorter side of the in-memory copies features and sheets are made from


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # [N] cluster id per image, 0 = largest cluster
    centroids: np.ndarray  # [k, D]
    outlier: np.ndarray  # [N] distance to centroid / mean distance in the cluster

    @property
    def k(self) -> int:
        return len(self.centroids)


def images_dir(set_root: str | Path, line: int) -> Path:
    """sets/<name>/images/line-NN (line 0-based, NN 1-based)."""
    return Path(set_root) / "images" / f"line-{line + 1:02d}"


def clusters_dir(set_root: str | Path, line: int) -> Path:
    """sets/<name>/clusters/line-NN (line 0-based, NN 1-based)."""
    return Path(set_root) / "clusters" / f"line-{line + 1:02d}"


def slugify(query: str) -> str:
    """A folder name for a query: lower case ASCII letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:60].strip("-")
    return slug or "no-query"


def unique_slugs(queries: list[str]) -> list[str]:
    """Folder names for queries, made distinct with -2, -3, ... where two slugify the same."""
    seen: dict[str, int] = {}
    out = []
    for query in queries:
        slug = slugify(query)
        seen[slug] = seen.get(slug, 0) + 1
        out.append(slug if seen[slug] == 1 else f"{slug}-{seen[slug]}")
    return out


def kmeans(features: np.ndarray, *, k: int = DEFAULT_K, seed: int = 0) -> Clustering:
    """Deterministic K-means of features [N, D] into min(k, N) clusters, numbered by size."""

    n = len(features)
    if n == 0:
        raise DatasetError("nothing to cluster: no verified images")
    k = max(1, min(k, n))
    x = np.asarray(features, dtype=np.float64)
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
        centroids = x.mean(axis=0, keepdims=True)
    else:
        model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
        labels, centroids = model.labels_.astype(np.int64), model.cluster_centers_
    # Renumber: largest cluster first, ties by first member, so ids are stable and readable.
    sizes = np.bincount(labels, minlength=len(centroids))
    first = np.array(
        [np.flatnonzero(labels == c)[0] if sizes[c] else n for c in range(len(centroids))]
    )
    order = sorted(
        (c for c in range(len(centroids)) if sizes[c]), key=lambda c: (-sizes[c], first[c])
    )
    remap = np.full(len(centroids), -1)
    remap[order] = np.arange(len(order))
    labels = remap[labels]
    centroids = centroids[order]
    distance = np.linalg.norm(x - centroids[labels], axis=1)  # [N]
    outlier = np.zeros(n)
    for c in range(len(centroids)):
        members = labels == c
        mean = distance[members].mean()
        outlier[members] = distance[members] / mean if mean > 1e-12 else 0.0
    return Clustering(labels=labels, centroids=centroids, outlier=outlier)


def cluster_line(
    set_root: str | Path,
    line: int,
    *,
    k: int = DEFAULT_K,
    features: FeatureOptions | None = None,  # None = the built-in descriptor
    verify: VerifyOptions | None = None,  # None = VerifyOptions()
    layout: SheetLayout | None = None,  # None = SheetLayout()
    describe: str | None = None,  # rank images against this text with CLIP (kind "clip")
    clip: ClipModel | None = None,  # a loaded CLIP model; None loads features.clip
    progress: bool = False,
) -> dict:
    """Verify, embed and cluster line `line` (0-based) of a set; write sheets and clusters.json.

    Returns the clusters.json document:
        {"line": NN, "features": kind, "k": k, "groups": [{"slug", "query", "clusters":
          [{"id", "count", "sheet", "images": [{"file", "sha256", "query", "outlier"}]}]}]}
    where the first group is MERGED (query null) and `sheet` is relative to the line's
    clusters folder. With `describe`, images and clusters also get a "text_score" (cosine
    similarity of their CLIP embedding to the description's) and the document a "describe".
    """
    features = features or FeatureOptions()
    verify = verify or VerifyOptions()
    layout = layout or SheetLayout()
    if describe is not None and features.kind != "clip":
        raise DatasetError("ranking images against a description needs CLIP: use --features clip")
    if features.kind == "clip" and clip is None:
        clip = load_clip_from(features)
    report = verify_line(images_dir(set_root, line), options=verify, progress=progress)
    accepted = report.accepted
    if not accepted:
        found = (
            f"of {len(report.records)} images, "
            + rejections_in_words(report.rejected, min_side=verify.min_side)
            if report.records
            else "the folder has no images; run `lyriscope collect` first"
        )
        raise DatasetError(f"{report.line_dir}: no usable images for line {line + 1} ({found})")
    images = [
        _working_copy(load_rgb(report.line_dir / r["file"], background=verify.background))
        for r in accepted
    ]
    vectors = extract_features(images, options=features, clip=clip, progress=progress)  # [N, D]
    text_score = None
    if describe is not None:
        _, text_score = rank_by_text(vectors, clip.embed_texts([describe])[0])  # [N]
    out_dir = clusters_dir(set_root, line)
    groups = [(MERGED, None, list(range(len(accepted))))]
    queries = sorted({r["query"] for r in accepted})
    if len(queries) > 1:
        groups += [
            (slug, q, [i for i, r in enumerate(accepted) if r["query"] == q])
            for slug, q in zip(unique_slugs(queries), queries, strict=True)
        ]
    doc_groups = []
    for slug, query, members in groups:
        clustering = kmeans(vectors[members], k=k)
        clusters = []
        for c in range(clustering.k):
            idx = [members[j] for j in np.flatnonzero(clustering.labels == c)]
            scores = clustering.outlier[clustering.labels == c]
            ranked = sorted(zip(idx, scores, strict=True), key=lambda p: (p[1], p[0]))
            sheet = f"{slug}/cluster-{c:02d}.png"
            write_contact_sheet(
                out_dir / sheet,
                [images[i] for i, _ in ranked],
                layout=layout,
                title=f"line {line + 1} · {query or 'all queries'} · cluster {c} · {len(idx)} images",
            )
            entry = {
                "id": c,
                "count": len(idx),
                "sheet": sheet,
                "images": [
                    {
                        "file": accepted[i]["file"],
                        "sha256": accepted[i]["sha256"],
                        "query": accepted[i]["query"],
                        "outlier": round(float(s), 4),
                    }
                    for i, s in ranked
                ],
            }
            if text_score is not None:
                for img, (i, _) in zip(entry["images"], ranked, strict=True):
                    img["text_score"] = round(float(text_score[i]), 4)
                entry["text_score"] = round(float(np.mean([text_score[i] for i in idx])), 4)
            clusters.append(entry)
        doc_groups.append({"slug": slug, "query": query, "clusters": clusters})
    doc = {
        "line": line + 1,
        "features": features.kind,
        "k": k,
        "groups": doc_groups,
        "rejected": dict(report.rejected),
    }
    if describe is not None:
        doc["describe"] = describe
    atomic.write_text(out_dir / CLUSTERS_FILE, json.dumps(doc, indent=1) + "\n")
    _remove_stale_sheets(out_dir, {c["sheet"] for g in doc_groups for c in g["clusters"]})
    return doc


def _remove_stale_sheets(out_dir: Path, current: set[str]) -> None:
    # Sheets of an earlier clustering (more clusters, other queries) would mislead a reader.
    for sheet in out_dir.glob("*/cluster-*.png"):
        if f"{sheet.parent.name}/{sheet.name}" not in current:
            sheet.unlink()
    for folder in out_dir.iterdir():
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _working_copy(img: Image.Image) -> Image.Image:
    # Features and sheets need no more than WORKING_SIDE pixels on the shorter side; keeping
    # thousands of full-size photos in memory would not fit.
    scale = WORKING_SIDE / min(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def read_clusters(set_root: str | Path, line: int) -> dict | None:
    """A line's clusters.json document, or None when the line was not clustered."""
    path = clusters_dir(set_root, line) / CLUSTERS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: not valid JSON ({exc.msg}); run `lyriscope cluster` again"
        ) from None


def select_lines(count: int, line: int | None, *, source: str) -> list[int]:
    """0-based lines to work on: all `count` lines, or the one 1-based `line` given, checked."""
    if line is None:
        return list(range(count))
    if not 1 <= line <= count:
        raise DatasetError(f"{source}: --line {line}: expected a line number 1..{count}")
    return [line - 1]
