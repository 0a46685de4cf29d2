"""The studio's guards: the token on every request, files from inside the set only, bounded bodies."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from studio_harness import running_studio

from lyriscope.errors import SetError
from lyriscope.setmodel import edit_set

ROUTES = [
    ("GET", "/"),
    ("GET", "/static/app.js"),
    ("GET", "/static/app.css"),
    ("GET", "/api/sets"),
    ("GET", "/api/sets/tiny"),
    ("GET", "/api/sets/tiny/waveform"),
    ("GET", "/api/sets/tiny/curation"),
    ("GET", "/api/sets/tiny/training?line=1"),
    ("GET", "/api/sets/tiny/thumb?line=1&sha=00"),
    ("GET", "/api/jobs"),
    ("GET", "/api/events"),
    ("GET", "/files/tiny/set.toml"),
    ("GET", "/no/such/route"),
    ("POST", "/api/sets"),
    ("POST", "/api/uploads?name=song.wav"),
    ("POST", "/api/sets/tiny/edit"),
    ("POST", "/api/sets/tiny/queries"),
    ("POST", "/api/sets/tiny/curation"),
    ("POST", "/api/sets/tiny/jobs"),
    ("POST", "/api/jobs/1/cancel"),
]


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_every_route_refuses_a_request_without_the_token(studio, sets_dir: Path, token) -> None:
    app, server, client = studio
    before = (sets_dir / "tiny" / "set.toml").read_bytes()
    edit = {"changes": [{"line": 1, "key": "text", "value": "changed"}]}
    for method, target in ROUTES:
        path, _, query = target.partition("?")
        params = dict(p.split("=") for p in query.split("&")) if query else {}
        if token is not None:
            params["t"] = token
        answer = client.request(
            method,
            path,
            params=params,
            body=json.dumps(edit).encode() if method == "POST" else None,
            token=None,
        )
        assert answer.status == 403, (method, target, answer.status)
        assert b"token" in answer.body and b"first line" not in answer.body
    assert (sets_dir / "tiny" / "set.toml").read_bytes() == before
    assert app.jobs.jobs() == [] and not any(app.uploads.folder.iterdir())


def test_the_token_may_come_as_a_header_and_the_server_listens_on_loopback(studio) -> None:
    _, server, client = studio
    assert server.server_address[0] == "127.0.0.1"
    answer = client.get("/api/sets", token=None, headers={"X-Studio-Token": client.token})
    assert answer.status == 200 and answer.json()["sets"][0]["name"] == "tiny"
    page = client.get("/")
    assert page.status == 200 and client.token.encode() in page.body  # its script and style
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def raw_get(client, path: str) -> int:
    """A GET with the path sent exactly as written (no client-side normalising)."""
    conn = http.client.HTTPConnection(client.host, client.port, timeout=10)
    try:
        conn.putrequest("GET", f"{path}?t={client.token}", skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture
def planted(sets_dir: Path, tmp_path: Path) -> Path:
    """A secret beside the sets folder and links from inside the set to it and to the set itself."""
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    root = sets_dir / "tiny"
    os.symlink(secret, root / "leak.txt")
    os.symlink(tmp_path, root / "outside")
    os.symlink(root / "song.lrc", root / "lyrics-link.lrc")  # inside to inside: fine
    (root / "folder").mkdir()
    return secret


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/files/tiny/set.toml", 200),
        ("/files/tiny/lyrics-link.lrc", 200),
        ("/files/tiny/../../secret.txt", 404),
        ("/files/tiny/%2e%2e/%2e%2e/secret.txt", 404),
        ("/files/tiny/..%2F..%2Fsecret.txt", 404),
        ("/files/tiny//etc/passwd", 404),
        ("/files/tiny/%2Fetc%2Fpasswd", 404),
        ("/files/tiny/leak.txt", 404),
        ("/files/tiny/outside/secret.txt", 404),
        ("/files/tiny/folder", 404),
        ("/files/tiny/set.toml%00.png", 404),
        ("/files/..%2F..%2Fsecret.txt/x", 404),
        ("/files/%2e%2e/secret.txt", 404),
    ],
)
def test_files_are_served_only_from_inside_the_set(
    studio, planted: Path, path: str, status: int
) -> None:
    assert raw_get(studio[2], path) == status


def test_byte_ranges_for_the_video_player(studio, sets_dir: Path) -> None:
    client = studio[2]
    whole = (sets_dir / "tiny" / "song.wav").read_bytes()
    answer = client.get("/files/tiny/song.wav", headers={"Range": "bytes=4-11"})
    assert answer.status == 206 and answer.body == whole[4:12]
    assert answer.headers["Content-Range"] == f"bytes 4-11/{len(whole)}"
    assert client.get("/files/tiny/song.wav", headers={"Range": "bytes=-4"}).body == whole[-4:]
    assert (
        client.get("/files/tiny/song.wav", headers={"Range": f"bytes={len(whole)}-"}).status == 416
    )
    download = client.get("/files/tiny/song.wav", params={"download": "1"})
    assert download.body == whole and "attachment" in download.headers["Content-Disposition"]


def upload(
    client, name: str, *, declared: int, body: bytes = b"", half_close: bool = False
) -> tuple[int, dict]:
    """POST /api/uploads with a Content-Length that may differ from what is sent."""
    sock = socket.create_connection((client.host, client.port), timeout=10)
    try:
        head = (
            f"POST /api/uploads?name={quote(name, safe='')}&t={client.token} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {declared}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1])


def test_upload_sizes_are_limited_before_the_body_is_read(sets_dir: Path) -> None:
    with running_studio(sets_dir, max_audio_bytes=1000, max_lyrics_bytes=100) as (app, _, client):
        started = time.monotonic()
        status, answer = upload(client, "song.wav", declared=10**12)  # a terabyte, never sent
        assert status == 413 and "more than the 1000 a file may have" in answer["error"]
        assert time.monotonic() - started < 5
        assert upload(client, "song.lrc", declared=101, body=b"x" * 101)[0] == 413
        status, answer = upload(client, "my song.wav", declared=1000, body=b"R" * 1000)
        assert status == 201 and answer["name"] == "my song.wav" and answer["size"] == 1000
        assert app.uploads.get(answer["id"]).path.read_bytes() == b"R" * 1000
        status, answer = upload(client, "cut.wav", declared=500, body=b"R" * 10, half_close=True)
        assert status == 400 and "ended after 10 of 500 bytes" in answer["error"]
        assert upload(client, "../escape.wav", declared=4, body=b"RIFF")[0] == 400
        assert upload(client, "tool.exe", declared=4, body=b"MZ..")[0] == 400
        assert upload(client, "", declared=4, body=b"RIFF")[0] == 400
        stored = sorted(p.name for p in app.uploads.folder.rglob("*") if p.is_file())
        assert stored == ["my song.wav"]
    assert not app.uploads.folder.exists()  # uploads go with the studio


def cli_message(root: Path, change) -> str:
    """What setmodel.edit_set (the CLI's path) says about a change, on a copy of the set."""
    copy = root.parent / "copy-for-message"
    shutil.copytree(root, copy)
    try:
        with pytest.raises(SetError) as exc:
            edit_set(copy, change)
        return str(exc.value).replace(str(copy), str(root))
    finally:
        shutil.rmtree(copy)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "the body is not JSON"),
        (b"[" * 30_000 + b"]" * 30_000, 400, "the body is not JSON"),
        (b"[1, 2]", 400, "the request: expected a JSON object"),
        (b'{"changes": "x"}', 400, "changes: expected a list of objects"),
        (
            b'{"changes": [{"line": 9, "key": "text", "value": "x"}]}',
            400,
            "line: expected a whole number in 1..2, got 9",
        ),
        (
            b'{"changes": [{"line": 1, "key": "model", "value": "../x"}]}',
            400,
            "a [[line]] key the studio edits, not 'model'",
        ),
        (
            b'{"changes": [{"table": "midi", "key": "port", "value": "x"}]}',
            400,
            "table: expected one of song, output, walk, post",
        ),
        (
            b'{"changes": [{"table": "walk", "key": "pulse", "value": {"a": [1]}}]}',
            400,
            "expected a value, a list",
        ),
        (
            b'{"changes": [{"line": 1, "key": "text", "value": "' + b"x" * 70_000 + b'"}]}',
            413,
            "at most 65536",
        ),
    ],
)
def test_bad_json_bodies_get_an_answer_that_says_why(
    studio, sets_dir: Path, body, status, error
) -> None:
    before = (sets_dir / "tiny" / "set.toml").read_bytes()
    answer = studio[2].post("/api/sets/tiny/edit", body=body)
    assert answer.status == status and error in answer.json()["error"]
    assert (sets_dir / "tiny" / "set.toml").read_bytes() == before
    assert studio[2].get("/api/sets").status == 200  # the server goes on


def test_a_bad_value_gets_the_clis_message_and_changes_nothing(studio, sets_dir: Path) -> None:
    root = sets_dir / "tiny"
    before = (root / "set.toml").read_bytes()
    answer = studio[2].post(
        "/api/sets/tiny/edit", {"changes": [{"table": "walk", "key": "pulse", "value": -1}]}
    )
    expected = cli_message(root, lambda doc: doc.setdefault("walk", {}).update(pulse=-1))
    assert answer.status == 400 and answer.json()["error"] == expected
    assert "pulse: expected a value of at least 0, got -1" in expected
    assert (root / "set.toml").read_bytes() == before


def test_a_request_without_a_length_or_for_an_unknown_set_is_refused(studio) -> None:
    client = studio[2]
    conn = http.client.HTTPConnection(client.host, client.port, timeout=10)
    conn.putrequest("POST", f"/api/sets/tiny/edit?t={client.token}")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400 and b"Content-Length" in response.read()
    conn.close()
    assert client.get("/api/sets/..%2Fsets").status == 404
    assert client.get("/api/sets", params={f"f{i}": "x" for i in range(30)}).status == 400
    assert (
        client.get("/api/sets/nosuchset").json()["error"].startswith("there is no set 'nosuchset'")
    )
    answer = client.post("/api/sets/tiny/jobs", {"kind": "rm", "line": 1})
    assert answer.status == 400 and "kind: expected one of collect" in answer.json()["error"]
