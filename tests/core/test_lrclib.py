"""LRCLIB: `lyriscope new --lrclib` against a loopback LRCLIB, its answers good and bad."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from lyriscope.cli import main
from lyriscope.lrclib import LrclibError, find_synced_lyrics
from lyriscope.setmodel import load_set

SYNCED = "[00:00.50]First light\n[00:01.50]<00:01.50>Second <00:02.00>line\n"


def record(id_: int, duration: float, synced: str | None = SYNCED) -> dict:
    return {
        "id": id_,
        "trackName": "First Light",
        "artistName": "Tester",
        "albumName": "Album",
        "duration": duration,
        "instrumental": False,
        "plainLyrics": "First light\nSecond line",
        "syncedLyrics": synced,
    }


class FakeLrclib:
    """A loopback server answering /api/search with whatever the test sets."""

    def __init__(self) -> None:
        self.status, self.body, self.delay_s = 200, b"[]", 0.0
        self.queries: list[dict[str, list[str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urllib.parse.urlsplit(self.path)
                fake.queries.append(urllib.parse.parse_qs(url.query))
                time.sleep(fake.delay_s)
                self.send_response(fake.status if url.path == "/api/search" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(fake.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, records, status: int = 200) -> None:
        self.status = status
        self.body = records if isinstance(records, bytes) else json.dumps(records).encode()


@pytest.fixture
def lrclib(monkeypatch):
    fake = FakeLrclib()
    monkeypatch.setenv("LYRISCOPE_LRCLIB_URL", fake.url)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def audio(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, np.zeros(3 * 8000, np.float32), 8000)  # 3.0 s
    return path


def new(tmp_path, audio, query: str) -> int:
    sets = tmp_path / "sets"
    return main(["new", "song", "--audio", str(audio), "--lrclib", query, "--sets-dir", str(sets)])


def test_new_fetches_the_synced_lyrics_of_the_version_as_long_as_the_audio(tmp_path, audio, lrclib):
    other = SYNCED.replace("First light", "Radio edit")
    lrclib.answer([record(7, 200.0, other), record(3, 4.6), record(5, 3.4), record(9, 2.9, None)])
    assert new(tmp_path, audio, "Tester - First Light") == 0
    assert lrclib.queries[0] == {"artist_name": ["Tester"], "track_name": ["First Light"]}
    root = tmp_path / "sets" / "song"
    assert (root / "song.lrc").read_text(encoding="utf-8") == SYNCED  # #5: 0.4 s from 3.0 s
    songset = load_set(root)
    assert [line.text for line in songset.lines] == ["First light", "Second line"]
    assert (songset.song.title, songset.song.artist) == ("First Light", "Tester")


@pytest.mark.parametrize(
    ("records", "status", "message"),
    [
        ([], 200, "LRCLIB has no song matching 'Tester - First Light'"),
        ({"code": 404}, 404, "LRCLIB has no song matching"),
        ([record(1, 3.0, None)], 200, "none with synced lyrics; give an LRC file with --lyrics"),
        ([record(1, 230.0)], 200, "versions lasting 3:50, but the audio lasts 0:03"),
        (b"<html>busy</html>", 200, "something other than LRCLIB's search results"),
        ([{"id": "x"}], 200, "something other than LRCLIB's search results"),
        ([], 503, "LRCLIB answered HTTP 503"),
    ],
)
def test_a_bad_answer_is_one_sentence_exit_2_and_nothing_written(
    tmp_path, audio, lrclib, capsys, records, status, message
):
    lrclib.answer(records, status)
    assert new(tmp_path, audio, "Tester - First Light") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "sets").exists()


def test_a_slow_server_times_out_with_a_message(lrclib):
    lrclib.answer([record(1, 3.0)])
    lrclib.delay_s = 2.0
    with pytest.raises(LrclibError, match=r"did not answer within 0.3 s"):
        find_synced_lyrics("First Light", duration=3.0, timeout_s=0.3)
    assert lrclib.queries[0] == {"q": ["First Light"]}  # no " - ": a free-text search


def test_an_unreachable_server_says_so(monkeypatch):
    with pytest.raises(LrclibError, match=r"cannot reach LRCLIB at http://127.0.0.1:9 "):
        find_synced_lyrics("a - b", duration=3.0, root="http://127.0.0.1:9", timeout_s=2)
