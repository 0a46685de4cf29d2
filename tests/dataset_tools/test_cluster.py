"""Clusters: K-means separates clearly different images, sheets and clusters.json are written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.dataset_tools.cluster import (
    MERGED,
    cluster_line,
    kmeans,
    read_clusters,
    slugify,
    unique_slugs,
)
from lyriscope.dataset_tools.contact_sheet import SheetLayout, contact_sheet, sheet_size
from lyriscope.dataset_tools.features import descriptor
from lyriscope.errors import DatasetError

COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 1.0, 0.15), "blue": (0.1, 0.15, 1.0)}


def tinted(seed: int, tint: tuple[float, float, float], size: int = 256) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (0.55 + 0.45 * rng.random((6, 6, 1))) * np.array(tint)
    return Image.fromarray((small * 255).astype(np.uint8)).resize(
        (size, size), Image.Resampling.BICUBIC
    )


def write_line_images(
    set_root: Path, line: int, images: list[tuple[Image.Image, str]]
) -> list[str]:
    """Save images as the collector does (sha256 names + manifest); returns the file names in order."""
    folder = set_root / "images" / f"line-{line:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    names, manifest = [], []
    for img, query in images:
        path = folder / "tmp.png"
        img.save(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        path.rename(folder / f"{sha}.png")
        names.append(f"{sha}.png")
        manifest.append({"sha256": sha, "file": f"{sha}.png", "query": query, "source": "test"})
    with open(folder / "manifest.jsonl", "a") as f:
        f.writelines(json.dumps(m) + "\n" for m in manifest)
    return names


@pytest.fixture
def colour_set(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A set whose line 1 has 4 red, 4 green and 4 blue pictures from two queries."""
    root = tmp_path / "song"
    root.mkdir()
    write_set(root, lines=["line 1", "line 2"], output={"size": 64})
    images, colours = [], []
    for ci, (colour, tint) in enumerate(COLOURS.items()):
        for s in range(4):
            images.append((tinted(ci * 10 + s, tint), "ray of light" if s % 2 else "beam"))
            colours.append(colour)
    names = write_line_images(root, 1, images)
    return root, dict(zip(names, colours, strict=True))


def test_kmeans_separates_colours() -> None:
    feats, truth = [], []
    for ci, tint in enumerate(COLOURS.values()):
        for s in range(5):
            feats.append(descriptor(tinted(100 + ci * 10 + s, tint, size=96)))
            truth.append(ci)
    result = kmeans(np.stack(feats), k=3)
    truth = np.array(truth)
    for c in range(3):
        assert len(set(truth[result.labels == c])) == 1
    assert sorted(np.bincount(result.labels).tolist()) == [5, 5, 5]
    again = kmeans(np.stack(feats), k=3)
    assert np.array_equal(result.labels, again.labels)


def test_kmeans_numbers_by_size_and_caps_k() -> None:
    x = np.array([[0.0, 0], [0.1, 0], [0, 0.1], [5, 5], [5.1, 5]])
    result = kmeans(x, k=10)
    assert result.k == 5  # never more clusters than images
    two = kmeans(x, k=2)
    assert two.labels.tolist() == [0, 0, 0, 1, 1]  # the larger cluster is number 0


def test_outlier_score_marks_the_odd_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.05, (12, 4))
    x[7] += 1.0  # far from the others
    result = kmeans(x, k=1)
    assert int(np.argmax(result.outlier)) == 7
    assert np.isclose(result.outlier.mean(), 1.0)  # normalised by the cluster's mean distance
    assert result.outlier[7] > 2.5


def test_cluster_line_writes_sheets_and_json(colour_set) -> None:
    root, colour_of = colour_set
    doc = cluster_line(root, 0, k=3)
    assert doc == read_clusters(root, 0)
    slugs = [g["slug"] for g in doc["groups"]]
    assert slugs == [MERGED, "beam", "ray-of-light"]
    merged = doc["groups"][0]
    for cluster in merged["clusters"]:
        assert len({colour_of[img["file"]] for img in cluster["images"]}) == 1
        assert cluster["count"] == len(cluster["images"]) == 4
        sheet = root / "clusters" / "line-01" / cluster["sheet"]
        with Image.open(sheet) as png:
            assert png.format == "PNG"
            assert png.size == sheet_size(4)
    for group in doc["groups"][1:]:
        assert sum(c["count"] for c in group["clusters"]) == 6
        assert all(img["query"] == group["query"] for c in group["clusters"] for img in c["images"])
        assert (root / "clusters" / "line-01" / group["slug"] / "cluster-00.png").is_file()


def test_contact_sheet_size_and_grid() -> None:
    layout = SheetLayout(thumb=64, columns=8, pad=4, title_height=28, max_images=48)
    five = contact_sheet(
        [tinted(i, (1, 1, 1), 80) for i in range(5)], title="cluster 0 · 5", layout=layout
    )
    assert five.size == (5 * 64 + 6 * 4, 28 + 64 + 2 * 4)
    many = contact_sheet([tinted(i, (1, 1, 1), 80) for i in range(20)], title="x", layout=layout)
    assert many.size == (8 * 64 + 9 * 4, 28 + 3 * 64 + 4 * 4)
    # The first thumbnail sits at (pad, title + pad) and shows a downscaled red image.
    red = contact_sheet([Image.new("RGB", (100, 50), (250, 0, 0))], title="r", layout=layout)
    assert np.asarray(red)[28 + 4 + 32, 4 + 32].tolist() == [250, 0, 0]


def test_slugify() -> None:
    assert slugify("Ray of Light!") == "ray-of-light"
    assert slugify("ÄÖÜ") == "no-query"
    assert unique_slugs(["Ray of light", "ray of light!", "beam"]) == [
        "ray-of-light",
        "ray-of-light-2",
        "beam",
    ]


def test_cluster_cli(colour_set, capsys) -> None:
    root, _ = colour_set
    assert main(["cluster", str(root), "--line", "1", "--k", "3"]) == 0
    assert "line 1: 12 images in 3 clusters" in capsys.readouterr().out
    assert main(["cluster", str(root), "--line", "5"]) == 2
    assert "--line 5: expected a line number 1..2" in capsys.readouterr().err
    assert main(["cluster", str(root), "--line", "2"]) == 2  # line 2 has no images
    assert "run `lyriscope collect` first" in capsys.readouterr().err


def test_images_under_the_size_limit_are_refused_in_words_naming_min_side(colour_set, capsys):
    root, _ = colour_set  # 12 pictures of 256 px
    assert main(["cluster", str(root), "--line", "1", "--k", "3", "--min-side", "300"]) == 2
    err = capsys.readouterr().err
    assert (
        "no usable images for line 1 (of 12 images, 12 smaller than 300 px on the short side "
        "(--min-side lowers the limit))" in err
    )
    assert "{" not in err  # no Python dict for people


def test_reclustering_removes_stale_sheets(colour_set) -> None:
    root, _ = colour_set
    cluster_line(root, 0, k=3)
    sheets = root / "clusters" / "line-01" / MERGED
    assert (sheets / "cluster-02.png").is_file()
    doc = cluster_line(root, 0, k=2)
    assert len(doc["groups"][0]["clusters"]) == 2
    assert sorted(p.name for p in sheets.iterdir()) == ["cluster-00.png", "cluster-01.png"]


class ColourClip:
    """A stand-in for an open_clip model: images embed as their mean colour, words as colours."""

    WORDS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}

    def encode_image(self, x):
        return x.mean(dim=(2, 3))  # [N, 3]

    def encode_text(self, tokens):
        return tokens


def test_describe_scores_clusters_with_clip(colour_set) -> None:
    import torch

    from lyriscope.dataset_tools.features import ClipModel, FeatureOptions

    root, colour_of = colour_set
    clip = ClipModel(
        model=ColourClip(),
        transform=lambda img: torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(
            2, 0, 1
        ),
        tokenizer=lambda texts: torch.tensor([ColourClip.WORDS[t.split()[-1]] for t in texts]),
    )
    doc = cluster_line(
        root, 0, k=3, features=FeatureOptions(kind="clip"), clip=clip, describe="something blue"
    )
    assert doc["describe"] == "something blue"
    clusters = doc["groups"][0]["clusters"]
    best = max(clusters, key=lambda c: c["text_score"])
    assert {colour_of[i["file"]] for i in best["images"]} == {"blue"}
    assert all(-1 <= i["text_score"] <= 1 for c in clusters for i in c["images"])
    with pytest.raises(DatasetError, match="needs CLIP: use --features clip"):
        cluster_line(root, 0, k=3, describe="something blue")
