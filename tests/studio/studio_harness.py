"""What the studio tests share: a running studio, an HTTP client, a song to bring, page steps.

Not a test module: the tests import it (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest
import soundfile as sf
from headless_chromium import Chromium, ChromiumUnavailable
from PIL import Image

from lyriscope.studio.app import Studio
from lyriscope.studio.options import StudioOptions
from lyriscope.studio.server import StudioServer, make_server

SR = 22050


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)


class Client:
    """Plain HTTP to a studio, the token added unless told otherwise."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.token = parts.hostname, parts.port, token

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = "default",
    ) -> Answer:
        query = dict(params or {})
        if token is not None:
            query["t"] = self.token if token == "default" else token
        target = path + ("?" + urlencode(query) if query else "")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            return Answer(response.status, response.read(), dict(response.getheaders()))
        finally:
            conn.close()

    def get(self, path: str, **kwargs) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, obj: object = None, **kwargs) -> Answer:
        body = kwargs.pop("body", None)
        if body is None:
            body = json.dumps(obj).encode()
        return self.request(
            "POST", path, body=body, headers={"Content-Type": "application/json"}, **kwargs
        )


@contextmanager
def running_studio(sets_dir: Path, **options) -> Iterator[tuple[Studio, StudioServer, Client]]:
    studio = Studio(StudioOptions(sets_dir=sets_dir, **options))
    server = make_server(studio)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield studio, server, Client(server.url, studio.token)
    finally:
        server.stop()
        server.server_close()
        studio.close(wait_s=60)


def write_song(
    folder: Path, *, seconds: float = 6.0, lines=("first light", "calm horizon")
) -> tuple[Path, Path]:
    """A song (a tone with a beat) and its LRC, outside any set: what a person brings."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * SR)) / SR
    beat = (np.sin(2 * np.pi * 2 * t) > 0.9).astype(np.float32)
    y = (0.1 + 0.3 * beat) * np.sin(2 * np.pi * 220 * t)
    sf.write(folder / "song.wav", y.astype(np.float32), SR)
    stamps = [1.0 + i * (seconds - 2) / len(lines) for i in range(len(lines))]
    lrc = "".join(f"[00:{s:05.2f}]{text}\n" for s, text in zip(stamps, lines, strict=True))
    (folder / "song.lrc").write_text("[ti:test song]\n" + lrc, encoding="utf-8")
    return folder / "song.wav", folder / "song.lrc"


def open_page(url: str, profile: Path) -> Chromium:
    try:
        return Chromium.start(url, profile=profile)
    except ChromiumUnavailable as exc:
        pytest.skip(str(exc))


def two_colour_pictures(folder: Path, count: int = 6, *, side: int = 64) -> None:
    """count pictures, alternately red and blue with noise: two clusters a person can tell apart."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        colour = np.array([220, 50, 40] if i % 2 else [40, 60, 220])
        pixels = np.clip(colour + rng.normal(0, 25, (side, side, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"picture-{i}.png")


def visit_tab(browser: Chromium, tab: str, *, tries: int = 3) -> None:
    """Click a tab until its view is shown and ready.

    A click is a real mouse click at the tab's place: on a busy machine the page may be
    re-rendering (a job's progress) under it, so a click that changed nothing is repeated.
    """
    ready = f"document.body.dataset.view === 'set-{tab}' && document.body.dataset.ready === '1'"
    for attempt in range(tries):
        browser.click(f'#tabs a[data-tab="{tab}"]')
        try:
            browser.wait_for(ready, timeout=30)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise


def wait_job(browser: Chromium, kind: str, timeout: float = 60) -> None:
    browser.wait_for(
        f"(() => {{ const j = document.querySelector('.job[data-kind=\"{kind}\"]');"
        " return j && ['done', 'failed', 'cancelled'].includes(j.dataset.state); })()",
        timeout=timeout,
    )
    state = browser.evaluate(f"document.querySelector('.job[data-kind=\"{kind}\"]').dataset.state")
    log = browser.evaluate(f"document.querySelector('.job[data-kind=\"{kind}\"] pre').textContent")
    assert state == "done", log
