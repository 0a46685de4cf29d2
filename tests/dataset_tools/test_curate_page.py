"""The curation page: token-guarded local server, and clicks in headless Chromium saving decisions."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from headless_chromium import Chromium, ChromiumUnavailable, wait_until  # tests/: shared helper
from PIL import Image

from lyriscope.dataset_tools.cluster import MERGED, cluster_line
from lyriscope.dataset_tools.contact_sheet import sheet_size
from lyriscope.dataset_tools.curate_server import CurationSession, make_server, page_url

TINTS = [(1.0, 0.1, 0.1), (0.1, 1.0, 0.15), (0.1, 0.15, 1.0)]
SCREENSHOT_COPY = os.environ.get("LYRISCOPE_CURATE_SCREENSHOT")  # keep the screenshot for people


def tinted(seed: int, tint) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (0.55 + 0.45 * rng.random((6, 6, 1))) * np.array(tint)
    return Image.fromarray((small * 255).astype(np.uint8)).resize(
        (256, 256), Image.Resampling.BICUBIC
    )


def clustered_set(root: Path, counts: list[int], *, k: int) -> Path:
    """A set whose line 1 has counts[c] pictures in colour c, clustered into k groups."""
    folder = root / "images" / "line-01"
    folder.mkdir(parents=True)
    for c, count in enumerate(counts):
        for s in range(count):
            path = folder / "tmp.png"
            tinted(c * 10 + s, TINTS[c]).save(path)
            path.rename(folder / f"{hashlib.sha256(path.read_bytes()).hexdigest()}.png")
    cluster_line(root, 0, k=k)
    return root


@contextmanager
def serving(root: Path):
    session = CurationSession(root, [0], titles={0: "I'm the first ray of light"})
    server = make_server(session)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield session, page_url(server, session)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A clustered set (line 1: 3 colours x 3 images) behind a running curation server."""
    root = clustered_set(tmp_path_factory.mktemp("curate") / "song", [3, 3, 3], k=3)
    with serving(root) as (session, url):
        yield root, session, url


def fetch(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def curation(root: Path) -> dict:
    path = root / "curation.json"
    return json.loads(path.read_text()) if path.is_file() else {"lines": {}}


def test_token_is_required(served) -> None:
    root, session, url = served
    base = url.split("?")[0]
    assert base.startswith("http://127.0.0.1:")
    assert fetch(base)[0] == 403
    assert fetch(base + "api/state?t=wrong")[0] == 403
    assert (
        fetch(base + "api/decide?t=wrong", {"line": 1, "action": "merge", "merged": False})[0]
        == 403
    )
    status, page = fetch(url)
    assert status == 200 and b"lyriscope curate" in page


def test_state_images_and_decisions_over_http(served) -> None:
    root, session, url = served
    base, token = url.split("?")[0], session.token
    status, body = fetch(f"{base}api/state?t={token}")
    state = json.loads(body)
    line = state["lines"][0]
    assert status == 200 and line["line"] == 1 and line["count"] == 9
    sheet = line["groups"][0]["clusters"][0]["sheet"]
    status, png = fetch(f"{base}sheet?line=1&sheet={sheet}&t={token}")
    assert status == 200 and png.startswith(b"\x89PNG")
    assert (
        fetch(f"{base}sheet?line=1&sheet=../../set.toml&t={token}")[0] == 404
    )  # only listed sheets
    sha = line["groups"][0]["clusters"][0]["images"][0]["sha256"]
    status, jpeg = fetch(f"{base}thumb?line=1&sha={sha}&t={token}")
    assert status == 200 and jpeg.startswith(b"\xff\xd8")
    status, body = fetch(
        f"{base}api/decide?t={token}",
        {"line": 1, "action": "image", "sha256": sha, "decision": "drop"},
    )
    assert status == 200 and json.loads(body)["kept"][sha] is False
    assert curation(root)["lines"]["1"]["images"][sha] == "drop"
    status, body = fetch(
        f"{base}api/decide?t={token}",
        {"line": 1, "action": "image", "sha256": sha, "decision": None},
    )
    assert sha not in curation(root)["lines"]["1"]["images"]
    status, body = fetch(
        f"{base}api/decide?t={token}",
        {"line": 1, "action": "cluster", "group": MERGED, "cluster": 7, "decision": "drop"},
    )
    assert status == 400 and "no cluster 7" in json.loads(body)["error"]


def post_raw(url: str, body: bytes, length: str) -> tuple[int, bytes]:
    """A POST with the body and Content-Length header exactly as given."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("POST", f"{parts.path}?{parts.query}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", length)
    conn.endheaders()
    conn.send(body)
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize(
    ("body", "length", "error"),
    [
        (b'{"line": 1}', "abc", "expected a small JSON body"),
        (
            b'{"line": 1, "action": "cluster", "group": "_all", "cluster": "abc"}',
            None,
            "cluster: expected a whole number",
        ),
        (
            b'{"line": 1, "action": "outlier", "threshold": "abc"}',
            None,
            "threshold: expected a number or null",
        ),
        (b"[" * 30_000 + b"]" * 30_000, None, "not a decision in JSON"),
        (b"[1, 2]", None, "a decision is a JSON object"),
        (
            b'{"line": 1, "action": "image", "sha256": "f00", "decision": "drop"}',
            None,
            "line 1 has no image 'f00'",
        ),
    ],
)
def test_bad_decisions_get_400_and_change_nothing(served, body, length, error) -> None:
    root, session, url = served
    before = curation(root)
    decide = url.split("?")[0] + f"api/decide?t={session.token}"
    status, answer = post_raw(decide, body, str(len(body)) if length is None else length)
    assert status == 400 and error in json.loads(answer)["error"]
    assert curation(root) == before
    assert fetch(url)[0] == 200  # the server goes on


def open_chromium(url: str, profile: Path) -> Chromium:
    try:
        return Chromium.start(url, profile=profile)
    except ChromiumUnavailable as exc:
        pytest.skip(str(exc))


def test_clicks_and_keys_in_chromium_save_decisions(served, tmp_path: Path) -> None:
    root, _, url = served
    browser = open_chromium(url, tmp_path / "profile")
    try:
        browser.wait_for(
            "document.body.dataset.ready === '1' && "
            "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert browser.evaluate("document.querySelectorAll('.card').length") == 3
        browser.click('.card[data-cluster="1"] button.drop')
        assert wait_until(
            lambda: (
                curation(root)["lines"].get("1", {}).get("clusters", {}).get(MERGED, {}).get("1")
                == "drop"
            )
        )
        browser.wait_for(
            "document.querySelector('.card[data-cluster=\"1\"]').classList.contains('drop')"
        )
        # Keyboard: focus cluster 2 and press D.
        browser.evaluate("document.querySelector('.card[data-cluster=\"2\"]').focus()")
        browser.call(
            "Input.dispatchKeyEvent",
            type="keyDown",
            key="d",
            code="KeyD",
            text="d",
            windowsVirtualKeyCode=68,
        )
        browser.call(
            "Input.dispatchKeyEvent", type="keyUp", key="d", code="KeyD", windowsVirtualKeyCode=68
        )
        assert wait_until(
            lambda: curation(root)["lines"]["1"]["clusters"][MERGED].get("2") == "drop"
        )
        browser.wait_for("document.querySelector('#line-1 .count').textContent.includes('3 of 9')")
        # Single images: open cluster 0's thumbnails and click the first one to drop it.
        browser.click('.card[data-cluster="0"] button.images')
        browser.wait_for("document.querySelector('.card[data-cluster=\"0\"] .thumbs img') !== null")
        browser.click('.card[data-cluster="0"] .thumbs img')
        assert wait_until(lambda: list(curation(root)["lines"]["1"]["images"].values()) == ["drop"])
        browser.wait_for(
            "document.querySelector('.card[data-cluster=\"0\"] .thumbs img.out.forced') !== null"
        )
        # The outlier slider saves its value when released.
        browser.evaluate(
            "(() => { const s = document.querySelector('#line-1 input.outlier');"
            " s.value = '2.5'; s.dispatchEvent(new Event('change')); })()"
        )
        assert wait_until(lambda: curation(root)["lines"]["1"]["outlier"] == 2.5)
        browser.click("#line-1 input.merge")
        assert wait_until(lambda: curation(root)["lines"]["1"]["merged"] is False)
        png = browser.screenshot(tmp_path / "curate.png", width=1280, height=900)
    finally:
        browser.close()
    if SCREENSHOT_COPY:
        shutil.copy(png, SCREENSHOT_COPY)
    with Image.open(png) as img:
        assert img.size == (1280, 900)
        pixels = np.asarray(img.convert("RGB"), dtype=float)
    assert pixels.std() > 10  # a page with sheets on it, not a blank window
    assert curation(root)["lines"]["1"]["clusters"][MERGED] == {"1": "drop", "2": "drop"}


def test_every_contact_sheet_shows_its_thumbnails_at_one_size(tmp_path: Path) -> None:
    root = clustered_set(tmp_path / "song", [1, 5], k=2)  # a cluster of 1 and one of 5
    with serving(root) as (_, url):
        browser = open_chromium(url, tmp_path / "profile")
        try:
            browser.wait_for(
                "document.body.dataset.ready === '1' && "
                "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            sheets = browser.evaluate(
                "[...document.querySelectorAll('.card img.sheet')].map(i => "
                "[i.naturalWidth, i.clientWidth, i.parentElement.clientWidth - 12])"
            )
        finally:
            browser.close()
    assert sorted(natural for natural, _, _ in sheets) == [sheet_size(1)[0], sheet_size(5)[0]]
    # One scale for all, the widest sheet filling its card (12 px: the card's padding).
    scales = [shown / natural for natural, shown, _ in sheets]
    assert scales[0] == pytest.approx(scales[1], rel=0.02)
    assert max(shown for _, shown, _ in sheets) == pytest.approx(sheets[0][2], abs=2)
