"""Fixtures of the collect tests: the loopback fake APIs with their image catalogue, tiny sets."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fake_apis import FakeApis, Served, image_bytes, png_bomb  # noqa: E402

GOOD_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
EXTENSIONS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
}
# Trouble on the image host: path -> the refusal the downloader must give (None: stored).
TROUBLE = {
    "/img/dup-of-0": "duplicate",
    "/img/page.html": "not_image",
    "/img/broken": "not_image",
    "/img/huge-stream": "too_large",
    "/img/huge-declared": "too_large",
    "/img/slow": "timeout",
    "/img/to-file": "bad_url",
    "/img/gone": "http_error",
    "/img/bomb.png": None,  # under the byte cap: stored here, rejected later by verify
    "/img/limited": None,  # 429 with Retry-After once, then the image
    "/img/moved": None,  # redirect to /img/good-7
}
MAX_BYTES = 200_000
SLOW_TIMEOUT_S = 0.3


def good_path(i: int) -> str:
    return f"/img/good-{i}"


@pytest.fixture
def fake():
    """The fake APIs serving good images in six formats and every kind of broken one."""
    with FakeApis() as server:
        bodies = {}
        for i in range(20):
            fmt = GOOD_FORMATS[i % len(GOOD_FORMATS)]
            bodies[i] = image_bytes(i, fmt)
            server.add_file(good_path(i), Served(bodies[i], f"image/{fmt.lower()}"))
        server.bodies = bodies
        add = server.add_file
        add("/img/dup-of-0", Served(bodies[0]))
        add("/img/page.html", Served(b"<!doctype html><html><body>Not found</body></html>"))
        add("/img/broken", Served(bytes(range(256)) * 4))
        add("/img/huge-stream", Served(b"\xff\xd8\xff" + b"\x00" * 300_000, kind="stream"))
        add("/img/huge-declared", Served(b"", kind="declare-huge"))
        add("/img/slow", Served(bodies[9], kind="slow"))
        add("/img/to-file", Served(kind="redirect", target="file:///etc/passwd"))
        add("/img/gone", Served(kind="404"))
        add("/img/bomb.png", Served(png_bomb(), "image/png"))
        add("/img/limited", Served(bodies[6], kind="429-once"))
        add("/img/moved", Served(kind="redirect", target="/img/good-7"))
        server.state.catalogue = {
            "openverse": [good_path(i) for i in range(6)] + list(TROUBLE),
            "wikimedia": [good_path(10), "/img/drawing.svg", good_path(11)],
            "unsplash": [good_path(12), good_path(13)],
            "pexels": [good_path(14), good_path(15)],
            "pixabay": [good_path(16), good_path(17)],
        }
        yield server


@pytest.fixture
def point_sources_at(monkeypatch):
    """Point every web source's URL variable at a fake server."""

    def point(server: FakeApis) -> None:
        for name in ("OPENVERSE", "WIKIMEDIA", "UNSPLASH", "PEXELS", "PIXABAY"):
            monkeypatch.setenv(f"LYRISCOPE_{name}_URL", server.url)

    return point
