"""Curation: decisions from the CLI land in curation.json and decide which images are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lyriscope.cli import main
from lyriscope.dataset_tools import curation as cur
from lyriscope.dataset_tools.cluster import MERGED
from lyriscope.errors import DatasetError


def image(n: int, query: str, outlier: float = 1.0) -> dict:
    return {"file": f"{n:02d}.png", "sha256": f"sha{n:02d}", "query": query, "outlier": outlier}


def clusters_doc() -> dict:
    """Six images of two queries; merged: clusters 0 {0,1,2,3}, 1 {4}, 2 {5}; per query 2 each."""
    imgs = [
        image(0, "a"),
        image(1, "a", 3.0),
        image(2, "b"),
        image(3, "b"),
        image(4, "a"),
        image(5, "b"),
    ]

    def cluster(cid: int, members: list[int], slug: str) -> dict:
        return {
            "id": cid,
            "count": len(members),
            "sheet": f"{slug}/cluster-{cid:02d}.png",
            "images": [imgs[m] for m in members],
        }

    return {
        "line": 1,
        "features": "descriptor",
        "k": 3,
        "rejected": {},
        "groups": [
            {
                "slug": MERGED,
                "query": None,
                "clusters": [
                    cluster(0, [0, 1, 2, 3], MERGED),
                    cluster(1, [4], MERGED),
                    cluster(2, [5], MERGED),
                ],
            },
            {
                "slug": "a",
                "query": "a",
                "clusters": [cluster(0, [0, 1], "a"), cluster(1, [4], "a")],
            },
            {
                "slug": "b",
                "query": "b",
                "clusters": [cluster(0, [2, 3], "b"), cluster(1, [5], "b")],
            },
        ],
    }


def kept(doc: dict, line: int = 0) -> dict[str, str]:
    fates = cur.decide_images(clusters_doc(), cur.line_curation(doc, line))
    return {f["file"]: f["reason"] for f in fates}


@pytest.fixture
def clustered_set(tmp_path: Path) -> Path:
    root = tmp_path / "song"
    root.mkdir()
    (root / "song.wav").write_bytes(b"")
    (root / "song.lrc").write_text("")
    (root / "set.toml").write_text(
        '[song]\ntitle = "t"\naudio = "song.wav"\nlyrics = "song.lrc"\n'
        '[[line]]\ntext = "one"\n[[line]]\ntext = "two"\n'
        '[[line]]\ntext = "three"\n'
    )
    for line in (1, 3):
        folder = root / "clusters" / f"line-{line:02d}"
        folder.mkdir(parents=True)
        (folder / "clusters.json").write_text(json.dumps(clusters_doc()))
    return root


def test_no_decisions_keep_everything() -> None:
    assert set(kept(cur.empty_curation()).values()) == {"kept"}


def test_cluster_image_outlier_and_merge_rules() -> None:
    doc = cur.set_cluster(cur.empty_curation(), 0, MERGED, 1, "drop")
    assert kept(doc)["04.png"] == "cluster_dropped"
    doc = cur.set_image(doc, 0, "sha04", "keep")  # an override beats its cluster
    assert kept(doc)["04.png"] == "image_kept"
    doc = cur.set_image(doc, 0, "sha00", "drop")
    assert kept(doc)["00.png"] == "image_dropped"
    doc = cur.set_outlier(doc, 0, 2.5)
    assert kept(doc)["01.png"] == "outlier"
    doc = cur.set_outlier(doc, 0, None)
    assert kept(doc)["01.png"] == "kept"
    # Split: each query's own clustering decides; merged decisions no longer apply.
    doc = cur.set_cluster(cur.set_merged(doc, 0, False), 0, "b", 0, "drop")
    fates = kept(doc)
    assert fates["02.png"] == fates["03.png"] == "cluster_dropped"
    assert fates["05.png"] == "kept" and fates["04.png"] == "image_kept"
    assert kept(cur.set_merged(doc, 0, True))["02.png"] == "kept"


def test_functions_do_not_change_their_input() -> None:
    doc = cur.empty_curation()
    cur.set_cluster(doc, 0, MERGED, 1, "drop")
    assert doc == cur.empty_curation()


def test_cli_keep_drop_outlier_land_in_curation_json(clustered_set: Path, capsys) -> None:
    root = clustered_set
    assert main(["curate", str(root), "--keep", "3:0,2"]) == 0
    saved = json.loads((root / "curation.json").read_text())
    assert saved["lines"]["3"]["clusters"][MERGED] == {"0": "keep", "1": "drop", "2": "keep"}
    assert saved["lines"]["3"]["merged"] is True
    assert (
        main(["curate", str(root), "--drop", "1:0", "--outlier", "2.5", "--outlier", "3:1.5"]) == 0
    )
    saved = json.loads((root / "curation.json").read_text())
    assert saved["lines"]["1"]["clusters"][MERGED] == {"0": "drop"}
    assert saved["lines"]["1"]["outlier"] == 2.5
    assert saved["lines"]["3"]["outlier"] == 1.5  # the line-specific value was applied after
    assert saved["lines"]["3"]["clusters"][MERGED]["1"] == "drop"  # earlier decisions stay
    assert "2" not in saved["lines"]  # line 2 has no clusters
    assert main(["curate", str(root), "--split", "1"]) == 0
    assert json.loads((root / "curation.json").read_text())["lines"]["1"]["merged"] is False
    assert not list(root.glob(".curation.json.*"))  # written atomically, no leftovers


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--keep", "3:0,9"], "line 3 has clusters 0..2, not 9"),
        (["--keep", "three:1"], "expected LINE:CLUSTER"),
        (["--keep", "2:0"], "line 2 has no clusters; run `lyriscope cluster"),
        (["--keep", "7:0"], "line 7: expected a line number 1..3"),
        (["--outlier", "-1"], "expected a positive threshold"),
    ],
)
def test_cli_bad_decisions_exit_2(clustered_set: Path, capsys, argv, message) -> None:
    assert main(["curate", str(clustered_set), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (clustered_set / "curation.json").exists()


def test_bad_curation_file_is_named(clustered_set: Path) -> None:
    (clustered_set / "curation.json").write_text(
        json.dumps({"version": 1, "lines": {"1": {"clusters": {MERGED: {"0": "maybe"}}}}})
    )
    with pytest.raises(
        DatasetError, match=r"lines\.1\.clusters\._all\.0: expected a cluster number"
    ):
        cur.load_curation(clustered_set)
