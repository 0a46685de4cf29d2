"""The studio's operations over HTTP: sets made and edited as the CLI does, curation, training views."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_harness import write_song

from lyriscope.dataset_tools.cluster import MERGED, cluster_line
from lyriscope.dataset_tools.queries import fill_queries
from lyriscope.dataset_tools.verify import VerifyOptions
from lyriscope.setmodel import load_set


def upload(client, path: Path) -> str:
    answer = client.request(
        "POST", "/api/uploads", params={"name": path.name}, body=path.read_bytes()
    )
    assert answer.status == 201, answer.body
    return answer.json()["id"]


def test_a_set_from_paths_lists_and_shows_its_lines_on_the_songs_time(
    studio, tmp_path: Path
) -> None:
    _, _, client = studio
    audio, lyrics = write_song(tmp_path / "in", seconds=6.0, lines=("first light", "calm horizon"))
    answer = client.post(
        "/api/sets",
        {"name": "song", "audio": {"path": str(audio)}, "lyrics": {"path": str(lyrics)}},
    )
    assert answer.status == 201 and answer.json() == {"name": "song"}
    assert load_set(tmp_path / "sets" / "song").song.title == "test song"
    listed = {s["name"]: s for s in client.get("/api/sets").json()["sets"]}
    assert listed["song"]["lines"] == 2 and listed["song"]["models"] == 0
    view = client.get("/api/sets/song").json()
    assert view["duration"] == pytest.approx(6.0)
    assert [line["start"] for line in view["lines"]] == pytest.approx([1.0, 3.0])
    assert view["lines"][0]["end"] == pytest.approx(3.0)
    assert view["lines"][1]["text"] == "calm horizon"
    assert view["lines"][0]["status"]["images"] == 0 and view["lines"][0]["status"]["model"] is None


def test_a_set_from_uploads_keeps_the_files_bytes(studio, tmp_path: Path) -> None:
    _, _, client = studio
    audio, lyrics = write_song(tmp_path / "in")
    body = {"name": "uploaded", "audio": {"upload": upload(client, audio)}}
    body["lyrics"] = {"upload": upload(client, lyrics)}
    assert client.post("/api/sets", body).status == 201
    root = tmp_path / "sets" / "uploaded"
    assert (root / "song.wav").read_bytes() == audio.read_bytes()
    assert (root / "song.lrc").read_bytes() == lyrics.read_bytes()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"name": "bad name!", "audio": {"path": "x.wav"}, "lyrics": {"path": "x.lrc"}},
            400,
            "set name 'bad name!'",
        ),
        (
            {"name": "tiny", "audio": {"path": "SONG"}, "lyrics": {"path": "LRC"}},
            400,
            "tiny: already exists",
        ),
        (
            {"name": "new", "audio": {"upload": "A" * 24}, "lyrics": {"path": "x"}},
            404,
            "is not here",
        ),
        (
            {"name": "new", "audio": {}, "lyrics": {"path": "x"}},
            400,
            "audio: upload a file or give its path",
        ),
        (
            {"name": "new", "audio": {"path": "/no/such.wav"}, "lyrics": {"path": "x"}},
            400,
            "--audio /no/such.wav: no such file",
        ),
    ],
)
def test_bad_new_sets_get_create_sets_sentence(studio, tmp_path: Path, body, status, error) -> None:
    audio, lyrics = write_song(tmp_path / "in")
    text = (
        json.dumps(body)
        .replace('"SONG"', json.dumps(str(audio)))
        .replace('"LRC"', json.dumps(str(lyrics)))
    )
    answer = studio[2].post("/api/sets", body=text.encode())
    assert answer.status == status and error in answer.json()["error"]
    assert sorted(p.name for p in (tmp_path / "sets").iterdir()) == ["tiny"]


@pytest.fixture
def fake_lrclib(monkeypatch):
    """A loopback LRCLIB that knows one song of 6 s."""
    record = {
        "id": 7,
        "trackName": "Dawn",
        "artistName": "Tester",
        "albumName": "",
        "duration": 6.0,
        "instrumental": False,
        "plainLyrics": "",
        "syncedLyrics": "[00:01.00]first light\n[00:03.00]calm horizon\n",
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = json.dumps([record]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("LYRISCOPE_LRCLIB_URL", f"http://127.0.0.1:{server.server_port}")
    yield
    server.shutdown()
    server.server_close()


def test_a_set_with_lyrics_from_lrclib(studio, tmp_path: Path, fake_lrclib) -> None:
    audio, _ = write_song(tmp_path / "in", seconds=6.0)
    answer = studio[2].post(
        "/api/sets", {"name": "dawn", "audio": {"path": str(audio)}, "lrclib": "Tester - Dawn"}
    )
    assert answer.status == 201, answer.body
    songset = load_set(tmp_path / "sets" / "dawn")
    assert [line.text for line in songset.lines] == ["first light", "calm horizon"]
    assert songset.song.artist == "Tester"


def test_edits_reach_set_toml_with_its_comments_kept(studio, sets_dir: Path) -> None:
    path = sets_dir / "tiny" / "set.toml"
    changes = [
        {"line": 1, "key": "text", "value": "first ray of light"},
        {"line": 1, "key": "queries", "value": ["rays", "beams"]},
        {"line": 1, "key": "sources", "value": ["folder:img/line1"]},
        {"line": 2, "key": "pulse", "value": 0.9},
        {
            "table": "walk",
            "key": "bands",
            "value": {"low": "fine", "mid": "middle", "high": "coarse"},
        },
        {"table": "post", "key": "vignette", "value": 0.5},
        {"table": "output", "key": "size", "value": 128},
    ]
    (sets_dir / "tiny" / "img" / "line1").mkdir(parents=True)
    answer = studio[2].post("/api/sets/tiny/edit", {"changes": changes})
    assert answer.status == 200, answer.body
    view = answer.json()
    assert view["lines"][0]["text"] == "first ray of light"
    assert view["lines"][0]["sources"] == ["folder:img/line1"]
    assert view["lines"][1]["walk"]["pulse"] == 0.9 and view["lines"][1]["overrides"] == ["pulse"]
    text = path.read_text()
    assert text.startswith("# a test set") and 'bands = {low = "fine"' in text
    songset = load_set(path)
    assert songset.lines[0].queries == ("rays", "beams") and songset.output.size == 128
    assert songset.post.vignette == 0.5 and songset.walk.bands.low == "fine"
    # null removes a key: the line follows [walk] again
    answer = studio[2].post(
        "/api/sets/tiny/edit", {"changes": [{"line": 2, "key": "pulse", "value": None}]}
    )
    assert (
        answer.json()["lines"][1]["overrides"] == []
        and "pulse" not in path.read_text().split("second line")[1]
    )


def test_queries_are_filled_as_lyriscope_queries_does(studio, sets_dir: Path, tmp_path) -> None:
    by_hand = shutil.copytree(sets_dir / "tiny", tmp_path / "by-hand")
    fill_queries(by_hand, lines=[1], force=True)
    answer = studio[2].post("/api/sets/tiny/queries", {"lines": [2], "force": True})
    assert answer.status == 200 and answer.json()["filled"] == [2]
    filled = load_set(sets_dir / "tiny").lines[1].queries
    assert filled == load_set(by_hand).lines[1].queries and filled[0] == "second line"
    assert studio[2].post("/api/sets/tiny/queries", {"lines": [3]}).status == 400


def test_the_waveform_is_the_songs_peaks(studio) -> None:
    wave = studio[2].get("/api/sets/tiny/waveform").json()
    assert wave["duration"] == pytest.approx(4.0) and len(wave["min"]) == len(wave["max"]) == 1200
    assert max(wave["max"]) == pytest.approx(0.05, abs=0.002)  # setfiles' tone is 0.05 loud
    assert all(lo <= hi for lo, hi in zip(wave["min"], wave["max"], strict=True))


def clustered(sets_dir: Path) -> Path:
    """Line 1 of the tiny set with 6 pictures in two colours, clustered into 2."""
    folder = sets_dir / "tiny" / "images" / "line-01"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        colour = np.array([220, 40, 40] if i % 2 else [40, 40, 220])
        pixels = np.clip(colour + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
        tmp = folder / "tmp.png"
        Image.fromarray(pixels).save(tmp)
        tmp.rename(folder / f"{hashlib.sha256(tmp.read_bytes()).hexdigest()}.png")
    cluster_line(sets_dir / "tiny", 0, k=2, verify=VerifyOptions(min_side=32))
    return sets_dir / "tiny"


def test_curation_in_the_studio_is_the_curation_pages(studio, sets_dir: Path) -> None:
    root = clustered(sets_dir)
    client = studio[2]
    state = client.get("/api/sets/tiny/curation").json()
    line = state["lines"][0]
    assert line["line"] == 1 and line["count"] == 6 and state["sheet_row_width"] > 0
    answer = client.post(
        "/api/sets/tiny/curation",
        {"line": 1, "action": "cluster", "group": MERGED, "cluster": 1, "decision": "drop"},
    )
    assert answer.status == 200 and answer.json()["kept_count"] == 3
    assert json.loads((root / "curation.json").read_text())["lines"]["1"]["clusters"][MERGED] == {
        "1": "drop"
    }
    bad = client.post(
        "/api/sets/tiny/curation", {"line": 1, "action": "cluster", "group": MERGED, "cluster": 9}
    )
    assert bad.status == 400 and "line 1 has no cluster 9" in bad.json()["error"]
    sha = line["groups"][0]["clusters"][0]["images"][0]["sha256"]
    thumb = client.get("/api/sets/tiny/thumb", params={"line": "1", "sha": sha})
    assert thumb.status == 200 and thumb.body.startswith(b"\xff\xd8")
    assert client.get("/api/sets/tiny/thumb", params={"line": "1", "sha": "0" * 64}).status == 404
    sheet = line["groups"][0]["clusters"][0]["sheet"]
    assert client.get(f"/files/tiny/clusters/line-01/{sheet}").body.startswith(b"\x89PNG")
    status = client.get("/api/sets/tiny").json()["lines"][0]["status"]
    assert status["images"] == 0 and status["clusters"] == 2 and status["kept"] == 3


def test_the_training_view_reads_the_run_folder(studio, sets_dir: Path) -> None:
    run = sets_dir / "tiny" / "runs" / "line-02"
    run.mkdir(parents=True)
    rows = [
        {"tick": 1, "kimg": 4.0, "loss_G": 1.5, "loss_D": 1.2, "p": 0.0, "sec_per_kimg": 60.0},
        {
            "tick": 2,
            "kimg": 8.0,
            "loss_G": 1.1,
            "loss_D": 1.3,
            "p": 0.02,
            "sec_per_kimg": 58.0,
            "metrics": {"kid": 0.25},
        },
    ]
    (run / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"torn')
    Image.new("RGB", (8, 8)).save(run / "samples-000004.png")
    Image.new("RGB", (8, 8)).save(run / "samples-000008.png")
    view = studio[2].get("/api/sets/tiny/training", params={"line": "2"}).json()
    assert [r["loss_G"] for r in view["rows"]] == [1.5, 1.1]
    assert view["kid"] == [{"kimg": 8.0, "kid": 0.25}]
    assert view["kimg"] == 8.0 and view["p"] == 0.02 and view["sec_per_kimg"] == 58.0
    assert view["sample"] == "runs/line-02/samples-000008.png" and not view["model"]
    assert studio[2].get("/api/sets/tiny").json()["lines"][1]["status"]["kimg"] == 8.0
    assert studio[2].get("/api/sets/tiny/training", params={"line": "3"}).status == 400
