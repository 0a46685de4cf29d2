"""`lyriscope collect` end to end against the loopback APIs: stored once, refused counted, resumable."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MAX_BYTES, SLOW_TIMEOUT_S, TROUBLE, good_path
from fake_apis import Served
from PIL import Image
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.dataset_tools.collect import collect
from lyriscope.dataset_tools.download import DownloadOptions
from lyriscope.dataset_tools.manifest import FIELDS, read_jsonl
from lyriscope.dataset_tools.sources.registry import make_source
from lyriscope.dataset_tools.verify import VerifyOptions, verify_line
from lyriscope.setmodel import load_set

OPTIONS = DownloadOptions(
    workers=3,
    max_bytes=MAX_BYTES,
    read_timeout_s=SLOW_TIMEOUT_S,
    connect_timeout_s=2.0,
    retries=1,
    backoff_s=0.05,
    max_wait_s=0.2,
    allow_private=True,  # the fake APIs and their images are on loopback
)
KEYS = {
    "UNSPLASH_ACCESS_KEY": "unsplash-secret-9c1d",
    "PEXELS_API_KEY": "pexels-secret-4e7a",
    "PIXABAY_API_KEY": "pixabay-secret-2b8f",
}
# What the openverse catalogue must give: the six good images, the bomb, the 429 and the redirect.
STORED_FROM_OPENVERSE = [good_path(i) for i in range(6)] + [
    p for p, r in TROUBLE.items() if r is None
]


def sources(*names: str):
    return [make_source(n, min_interval_s=0.0, max_wait_s=0.2) for n in names]


@pytest.fixture
def song_set(tmp_path, fake, point_sources_at):
    point_sources_at(fake)
    root = write_set(
        tmp_path / "sets" / "demo",
        lines=[
            {"text": "I'm the first ray of light", "queries": ["Ray of light"], "tags": ["art"]},
            {"text": "Second line", "queries": ["night"], "tags": []},
        ],
        title="Test song",
    )
    return load_set(root)


def manifest(song_set, line: int = 0) -> list[dict]:
    return read_jsonl(song_set.root / "images" / f"line-{line + 1:02d}" / "manifest.jsonl")


def test_collect_stores_good_images_once_and_counts_the_rest(fake, song_set):
    report = collect(song_set, sources("openverse"), lines=[0], per_query=50, options=OPTIONS)
    records = manifest(song_set)
    assert sorted(r["image_url"] for r in records) == sorted(
        fake.url + p for p in STORED_FROM_OPENVERSE
    )
    assert report.stored == len(STORED_FROM_OPENVERSE)
    expected = {}
    for reason in TROUBLE.values():
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert dict(report.refused) == expected
    folder = song_set.root / "images" / "line-01"
    for record in records:
        assert set(record) == set(FIELDS)
        data = (folder / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert record["file"].startswith(record["sha256"])
        assert record["query"] == "Ray of light"  # the first term that found it
        assert record["license"] == "CC BY-SA 4.0" and record["creator"].startswith("Creator")
    images = [p for p in folder.iterdir() if not p.name.endswith(".jsonl")]
    assert len(images) == len(records)  # nothing else, no .part files
    assert not (song_set.root / "images" / "line-02").exists()  # --line respected
    credits = (song_set.root / "images" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert all(r["file"] in credits and r["creator"] in credits for r in records)
    assert "Test song" in credits


def test_second_run_fetches_nothing_again(fake, song_set):
    collect(song_set, sources("openverse"), lines=[0], per_query=50, options=OPTIONS)
    hits = dict(fake.state.hits)
    report = collect(song_set, sources("openverse"), lines=[0], per_query=50, options=OPTIONS)
    assert report.stored == 0
    image_hits_now = {p: n for p, n in fake.state.hits.items() if p.startswith("/img/")}
    image_hits_before = {p: n for p, n in hits.items() if p.startswith("/img/")}
    # Only the transient failure (the slow one) is tried again.
    changed = {p for p in image_hits_now if image_hits_now[p] != image_hits_before.get(p)}
    assert changed == {"/img/slow"}
    assert dict(report.refused) == {"timeout": 1}
    assert len(manifest(song_set)) == len(STORED_FROM_OPENVERSE)


def test_interrupted_collect_resumes_without_loss_or_duplicates(fake, song_set):
    stored_before = []

    def stop_after_three(record):
        stored_before.append(record)
        if len(stored_before) == 3:
            raise KeyboardInterrupt

    options = DownloadOptions(**{**OPTIONS.__dict__, "workers": 1})
    with pytest.raises(KeyboardInterrupt):
        collect(
            song_set,
            sources("openverse"),
            lines=[0],
            per_query=50,
            options=options,
            on_image=stop_after_three,
        )
    kept = manifest(song_set)
    assert len(kept) >= 3  # what was stored before the interrupt is on disk and in the manifest
    collect(song_set, sources("openverse"), lines=[0], per_query=50, options=options)
    records = manifest(song_set)
    urls = [r["image_url"] for r in records]
    assert sorted(urls) == sorted(fake.url + p for p in STORED_FROM_OPENVERSE)  # each once
    assert len({r["sha256"] for r in records}) == len(records)
    for record in kept:  # never fetched again
        assert fake.hits(record["image_url"].removeprefix(fake.url)) == 1
    folder = song_set.root / "images" / "line-01"
    assert len([p for p in folder.iterdir() if not p.name.endswith(".jsonl")]) == len(records)


def test_torn_manifest_line_is_ignored_and_repaired(fake, song_set):
    folder = song_set.root / "images" / "line-01"
    folder.mkdir(parents=True)
    (folder / "manifest.jsonl").write_text('{"sha256": "ab', encoding="utf-8")  # killed mid-write
    collect(song_set, sources("openverse"), lines=[0], per_query=50, options=OPTIONS)
    assert len(manifest(song_set)) == len(STORED_FROM_OPENVERSE)


def test_every_source_together_with_keys_that_are_never_written(
    fake, song_set, monkeypatch, tmp_path, caplog
):
    for var, key in KEYS.items():
        monkeypatch.setenv(var, key)
    fake.state.keys = {
        "unsplash": KEYS["UNSPLASH_ACCESS_KEY"],
        "pexels": KEYS["PEXELS_API_KEY"],
        "pixabay": KEYS["PIXABAY_API_KEY"],
    }
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{fake.url}{good_path(18)}\n{fake.url}/img/gone\n", encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "own.png").write_bytes(fake.bodies[19])
    caplog.set_level("DEBUG")
    cache = song_set.root / "images" / ".cache"
    chosen = [
        make_source(n, min_interval_s=0.0, max_wait_s=0.2, cache_dir=cache)
        for n in ("wikimedia", "unsplash", "pexels", "pixabay", f"urls:{listing}", f"folder:{mine}")
    ]
    report = collect(song_set, chosen, lines=[1], per_query=10, options=OPTIONS)
    records = manifest(song_set, 1)
    by_source = {}
    for r in records:
        by_source.setdefault(r["source"], set()).add(r["image_url"].removeprefix(fake.url))
    assert by_source["wikimedia"] == {good_path(10), good_path(11)}  # the SVG was never offered
    assert by_source["unsplash"] == {good_path(12), good_path(13)}
    assert by_source["pexels"] == {good_path(14), good_path(15)}
    assert by_source["pixabay"] == {good_path(16), good_path(17)}
    assert by_source["urls"] == {good_path(18)}
    assert len(by_source["folder"]) == 1
    assert report.refused["http_error"] == 1
    assert sum(fake.state.tracked.values()) == 2  # Unsplash heard of both downloads
    written = [p for p in song_set.root.rglob("*") if p.is_file()]
    assert cache.is_dir() and any(p.parent == cache for p in written)
    for path in written:
        data = path.read_bytes()
        for key in KEYS.values():
            assert key.encode() not in data and key not in path.name, path
    for key in KEYS.values():
        assert key not in caplog.text


def test_a_failing_source_is_noted_and_the_others_go_on(fake, song_set, monkeypatch):
    monkeypatch.setenv("PEXELS_API_KEY", "not-the-right-one")
    report = collect(
        song_set, sources("pexels", "wikimedia"), lines=[1], per_query=10, options=OPTIONS
    )
    assert report.stored == 2
    assert any("pexels" in note and "HTTP 401" in note for note in report.notes)


def _run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lyriscope", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_collects_and_prints_refusals_without_leaking_keys(fake, song_set, tmp_path):
    key = KEYS["PIXABAY_API_KEY"]
    fake.state.keys = {"pixabay": key}
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{fake.url}/img/page.html\n{fake.url}/img/gone\n", encoding="utf-8")
    env = {**os.environ, "PIXABAY_API_KEY": key, "LYRISCOPE_PIXABAY_URL": fake.url}
    done = _run_cli(
        [
            "-vv",
            "collect",
            str(song_set.root),
            "--line",
            "2",
            "--sources",
            f"pixabay,urls:{listing}",
            "--max-mb",
            "1",
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    assert "stored 2 new images" in done.stdout
    assert "not image 1" in done.stdout and "http error 1" in done.stdout
    assert "GET /api/?" in done.stderr  # -vv shows urllib3's request lines...
    assert key not in done.stdout + done.stderr  # ...with the key replaced
    assert len(manifest(song_set, 1)) == 2


def test_cli_bad_input_is_one_sentence(song_set):
    done = _run_cli(
        ["collect", str(song_set.root), "--line", "7", "--sources", "openverse"], dict(os.environ)
    )
    assert done.returncode == 2
    assert "--line 7: the set has lines 1..2" in done.stderr
    done = _run_cli(["collect", str(song_set.root), "--sources", "flickr"], dict(os.environ))
    assert done.returncode == 2 and "unknown source 'flickr'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_collect_help_works_and_lyriscope_help_imports_no_web_stack():
    done = _run_cli(["collect", "--help"], dict(os.environ))
    assert done.returncode == 0 and "--per-query" in done.stdout
    # A command loads its libraries when it runs; the dispatcher itself stays light.
    probe = (
        "import sys, lyriscope.cli\ntry:\n    lyriscope.cli.main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('requests', 'PIL', 'tomlkit', 'tqdm') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_an_api_answer_of_the_wrong_shape_is_a_note_not_a_crash(fake, song_set, monkeypatch):
    fake.add_file("/odd/v1/images/", Served(b'{"results": [1, 2]}', "application/json"))
    monkeypatch.setenv("LYRISCOPE_OPENVERSE_URL", fake.url + "/odd")
    report = collect(
        song_set, sources("openverse", "wikimedia"), lines=[1], per_query=10, options=OPTIONS
    )
    assert report.stored == 2  # wikimedia still ran
    assert any("openverse: the answer had an unexpected shape" in n for n in report.notes)


def test_collected_folder_is_what_verify_reads(fake, song_set):
    collect(song_set, sources("openverse"), lines=[0], per_query=50, options=OPTIONS)
    report = verify_line(song_set.root / "images" / "line-01", options=VerifyOptions(min_side=16))
    reasons = {r["file"]: r["reason"] for r in report.records}
    by_url = {r["image_url"]: r["file"] for r in manifest(song_set)}
    assert reasons.pop(by_url[fake.url + "/img/bomb.png"]) == "bomb"  # accepted here, caught there
    # Every other file decodes (flat test colours may still look alike to the perceptual hash).
    assert not set(reasons.values()) & {"unreadable", "corrupt", "bomb"}
    assert {r["query"] for r in report.records} == {"Ray of light"}  # read from our manifest


def test_ctrl_c_on_the_cli_keeps_what_was_stored_and_the_rerun_finishes(fake, song_set, tmp_path):
    import signal
    import time

    paths = [f"/img/paced-{i}" for i in range(12)]
    for i, path in enumerate(paths):
        fake.add_file(path, Served(fake.bodies[i], delay_s=0.15))
    listing = tmp_path / "urls.txt"
    listing.write_text("".join(f"{fake.url}{p}\n" for p in paths), encoding="utf-8")
    args = [
        sys.executable,
        "-m",
        "lyriscope",
        "collect",
        str(song_set.root),
        "--line",
        "2",
        "--sources",
        f"urls:{listing}",
        "--workers",
        "1",
    ]
    folder = song_set.root / "images" / "line-02"
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(read_jsonl(folder / "manifest.jsonl")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "run the same command to continue" in err
    kept = read_jsonl(folder / "manifest.jsonl")
    assert 3 <= len(kept) < len(paths)
    assert not list(folder.glob(".dl-*"))
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = read_jsonl(folder / "manifest.jsonl")
    assert sorted(r["image_url"] for r in records) == sorted(fake.url + p for p in paths)
    for record in kept:
        assert fake.hits(record["image_url"].removeprefix(fake.url)) == 1


def _pictures(folder: Path, n: int, colour: tuple[int, int, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (40 + i, 40), colour).save(folder / f"p{i}.png")
    return folder


def test_each_line_collects_from_its_own_sources_and_an_empty_line_fails_last(tmp_path, capsys):
    root = tmp_path / "song"
    _pictures(root / "img" / "one", 3, (200, 0, 0))
    _pictures(root / "img" / "two", 2, (0, 0, 200))
    (root / "img" / "none").mkdir()
    lines = [
        {"text": "red", "sources": ["folder:img/one"]},
        {"text": "blue", "sources": ["folder:img/two"]},
        {"text": "nothing", "sources": ["folder:img/none"]},
    ]
    write_set(root, lines=lines)
    assert main(["collect", str(root)]) == 2  # no network needed: every line has its own
    out, err = capsys.readouterr()
    assert "stored 5 new images" in out
    assert [len(read_jsonl(root / "images" / f"line-0{n}" / "manifest.jsonl")) for n in (1, 2)] == [
        3,
        2,
    ]
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "lyriscope collect: line 3 has no images: no source gave any; give a line its own "
            'folder (sources = ["folder:DIR"] in its [[line]], or --sources folder:DIR)'
        )
    )
    assert main(["collect", str(root), "--line", "1"]) == 0  # a line with images is fine again


def test_a_line_source_that_is_not_one_names_the_set_key(tmp_path, capsys):
    root = write_set(tmp_path / "song", lines=[{"text": "a", "sources": ["flickr"]}])
    assert main(["collect", str(root)]) == 2
    err = capsys.readouterr().err
    assert "set.toml: [[line]] 1 sources: unknown source 'flickr'" in err
