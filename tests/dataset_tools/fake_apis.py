"""Loopback HTTP server imitating the image APIs (Openverse, Wikimedia, Unsplash, Pexels, Pixabay)
and an image host with good files and every kind of trouble, for the collect tests.

Not a test module: the tests import it after putting this folder on sys.path.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image

PIL_FORMATS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
}


def image_bytes(index: int, fmt: str = "PNG", size: tuple[int, int] = (48, 32)) -> bytes:
    """A small real image, different for every index."""
    img = Image.new("RGB", size, ((index * 53) % 256, (index * 97) % 256, (index * 151) % 256))
    img.putpixel((index % size[0], 0), (255 - index % 256, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG whose header claims width×height 8-bit grey pixels, with a tiny compressed body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # One row of zeros, compressed: a decoder would have to invent the other 20000² bytes.
    idat = zlib.compress(b"\x00" * (width + 1), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass
class Served:
    body: bytes = b""
    content_type: str = "image/jpeg"
    kind: str = "ok"  # ok, 429-once, slow, redirect, stream (no Content-Length), truncated,
    #                   declare-huge, 404, trickle (one byte every delay_s)
    target: str = ""  # redirect Location
    delay_s: float = 0.0  # wait before answering (a slow but working host)


@dataclass
class FakeState:
    files: dict[str, Served] = field(default_factory=dict)  # path -> what it serves
    catalogue: dict[str, list[str]] = field(default_factory=dict)  # source -> image paths
    keys: dict[str, str] = field(default_factory=dict)  # source -> expected key
    remaining: dict[str, int] = field(default_factory=dict)  # source -> rate-limit budget left
    hits: Counter = field(default_factory=Counter)  # path -> requests
    tracked: Counter = field(default_factory=Counter)  # Unsplash photo id -> download pings
    agents: list[str] = field(default_factory=list)  # User-Agent of API requests
    api_requests: list[str] = field(default_factory=list)  # full request lines of API calls
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)


class FakeApis:
    """Start with `with FakeApis() as fake:`; `fake.url` is http://127.0.0.1:PORT."""

    def __init__(self, slow_s: float = 3.0) -> None:
        self.state = FakeState()
        self.slow_s = slow_s
        handler = _make_handler(self.state, self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeApis:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.state.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def add_file(self, path: str, served: Served) -> str:
        """Serve `served` at `path`; return its full URL."""
        self.state.files[path] = served
        return self.url + path

    def hits(self, path: str) -> int:
        with self.state.lock:
            return self.state.hits[path]


def _page(items: list, page: int, size: int) -> tuple[list, bool]:
    start = (page - 1) * size
    return items[start : start + size], start + size < len(items)


def _make_handler(state: FakeState, fake: FakeApis):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            with state.lock:
                state.hits[parts.path] += 1
            try:
                route = {
                    "/v1/images/": self.openverse,
                    "/w/api.php": self.wikimedia,
                    "/search/photos": self.unsplash,
                    "/v1/search": self.pexels,
                    "/api/": self.pixabay,
                }.get(parts.path)
                if route is not None:
                    with state.lock:
                        state.agents.append(self.headers.get("User-Agent", ""))
                        state.api_requests.append(self.requestline)
                    route(query)
                elif parts.path.startswith("/photos/") and parts.path.endswith("/download"):
                    self.unsplash_track(parts.path.split("/")[2])
                elif parts.path in state.files:
                    self.serve_file(parts.path)
                else:
                    self.send_error(404)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeouts, byte caps): expected

        # --- APIs ---------------------------------------------------------------------------
        def json(self, data, *, source: str, status: int = 200) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if source in state.remaining:
                with state.lock:
                    state.remaining[source] = max(0, state.remaining[source] - 1)
                    left = state.remaining[source]
                self.send_header("X-RateLimit-Limit", "100")
                self.send_header("X-RateLimit-Remaining", str(left))
            self.end_headers()
            self.wfile.write(body)

        def items(self, source: str) -> list[str]:
            return state.catalogue.get(source, [])

        def openverse(self, q: dict) -> None:
            size = int(q.get("page_size", 20))
            if size > 20:
                return self.json(
                    {"detail": "page_size > 20 needs auth"}, source="openverse", status=401
                )
            paths = self.items("openverse")
            page, _ = _page(paths, int(q.get("page", 1)), size)
            results = [
                {
                    "id": str(i),
                    "title": f"Picture {path}",
                    "url": fake.url + path,
                    "foreign_landing_url": f"https://example.org/photo{path}",
                    "creator": f"Creator {i}",
                    "license": "by-sa",
                    "license_version": "4.0",
                    "license_url": "https://creativecommons.org/licenses/by-sa/4.0/",
                    "attribution": f'"Picture {path}" by Creator {i} is licensed under CC BY-SA 4.0.',
                    "width": 48,
                    "height": 32,
                }
                for i, path in enumerate(page)
            ]
            page_count = max(1, -(-len(paths) // size))
            self.json(
                {
                    "result_count": len(paths),
                    "page_count": page_count,
                    "page_size": size,
                    "page": int(q.get("page", 1)),
                    "results": results,
                },
                source="openverse",
            )

        def wikimedia(self, q: dict) -> None:
            assert q.get("generator") == "search" and q.get("gsrnamespace") == "6", q
            size, offset = int(q.get("gsrlimit", 10)), int(q.get("gsroffset", 0))
            paths = self.items("wikimedia")
            chunk = paths[offset : offset + size]
            pages = [
                {
                    "pageid": 100 + offset + i,
                    "ns": 6,
                    "title": f"File:Thing {offset + i}.jpg",
                    "index": offset + i + 1,
                    "imageinfo": [
                        {
                            "url": fake.url + path + "?original",
                            "thumburl": fake.url + path,
                            "thumbwidth": 48,
                            "thumbheight": 32,
                            "width": 4000,
                            "height": 3000,
                            "mime": "image/svg+xml" if path.endswith(".svg") else "image/jpeg",
                            "descriptionurl": f"https://commons.example/wiki/File:Thing_{offset + i}",
                            "extmetadata": {
                                "Artist": {"value": f'<a href="//x/u{i}">Artist &amp; {i}</a>'},
                                "LicenseShortName": {"value": "CC BY 4.0"},
                                "LicenseUrl": {
                                    "value": "https://creativecommons.org/licenses/by/4.0"
                                },
                            },
                        }
                    ],
                }
                for i, path in enumerate(chunk)
            ]
            data: dict = {"batchcomplete": True, "query": {"pages": pages}}
            if offset + size < len(paths):
                data["continue"] = {"gsroffset": offset + size, "continue": "gsroffset||"}
            self.json(data, source="wikimedia")

        def unsplash(self, q: dict) -> None:
            if self.headers.get("Authorization") != f"Client-ID {state.keys.get('unsplash')}":
                return self.json(
                    {"errors": ["OAuth error: The access token is invalid"]},
                    source="unsplash",
                    status=401,
                )
            size = int(q.get("per_page", 10))
            paths = self.items("unsplash")
            page, _ = _page(paths, int(q.get("page", 1)), size)
            results = [
                {
                    "id": f"u{i}",
                    "width": 48,
                    "height": 32,
                    "alt_description": "light",
                    "urls": {"full": fake.url + path, "regular": fake.url + path + "?w=1080"},
                    "links": {
                        "html": f"https://unsplash.example/photos/u{i}",
                        "download_location": f"{fake.url}/photos/u{i}/download",
                    },
                    "user": {"name": f"Photographer {i}", "links": {"html": "https://u.example"}},
                }
                for i, path in enumerate(page)
            ]
            self.json(
                {
                    "total": len(paths),
                    "total_pages": max(1, -(-len(paths) // size)),
                    "results": results,
                },
                source="unsplash",
            )

        def unsplash_track(self, photo_id: str) -> None:
            if self.headers.get("Authorization") != f"Client-ID {state.keys.get('unsplash')}":
                return self.json({"errors": ["bad key"]}, source="track", status=401)
            with state.lock:
                state.tracked[photo_id] += 1
            self.json({"url": fake.url + "/img/unused"}, source="track")

        def pexels(self, q: dict) -> None:
            if self.headers.get("Authorization") != state.keys.get("pexels"):
                return self.json({"error": "unauthorized"}, source="pexels", status=401)
            size, number = int(q.get("per_page", 15)), int(q.get("page", 1))
            page, more = _page(self.items("pexels"), number, size)
            data = {
                "page": number,
                "per_page": size,
                "total_results": len(self.items("pexels")),
                "photos": [
                    {
                        "id": i,
                        "width": 48,
                        "height": 32,
                        "url": f"https://pexels.example/p{i}",
                        "photographer": f"Pex {i}",
                        "src": {"original": fake.url + path + "?o", "large2x": fake.url + path},
                    }
                    for i, path in enumerate(page)
                ],
            }
            if more:
                data["next_page"] = f"{fake.url}/v1/search?page={number + 1}"
            self.json(data, source="pexels")

        def pixabay(self, q: dict) -> None:
            if q.get("key") != state.keys.get("pixabay"):
                return self.json(
                    {"error": "[ERROR 400] Invalid or missing API key"},
                    source="pixabay",
                    status=400,
                )
            size, number = int(q.get("per_page", 20)), int(q.get("page", 1))
            paths = self.items("pixabay")
            page, _ = _page(paths, number, size)
            self.json(
                {
                    "total": len(paths),
                    "totalHits": len(paths),
                    "hits": [
                        {
                            "id": i,
                            "pageURL": f"https://pixabay.example/p-{i}/",
                            "largeImageURL": fake.url + path,
                            "imageWidth": 48,
                            "imageHeight": 32,
                            "user": f"pixuser{i}",
                            "user_id": i,
                        }
                        for i, path in enumerate(page)
                    ],
                },
                source="pixabay",
            )

        # --- image host ---------------------------------------------------------------------
        def serve_file(self, path: str) -> None:
            served = state.files[path]
            if served.kind == "404":
                return self.send_error(404)
            if served.kind == "429-once" and fake.hits(path) == 1:
                self.send_response(429)
                self.send_header("Retry-After", "30")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if served.kind == "slow":
                state.closing.wait(fake.slow_s)
            if served.delay_s and served.kind != "trickle":
                state.closing.wait(served.delay_s)
            if served.kind == "redirect":
                self.send_response(302)
                self.send_header("Location", served.target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", served.content_type)
            if served.kind == "declare-huge":
                self.send_header("Content-Length", str(10 * 2**30))
                self.end_headers()
                return
            if served.kind == "truncated":  # promises twice the bytes it sends
                self.send_header("Content-Length", str(2 * len(served.body)))
            elif served.kind != "stream":  # "stream": no length; the body ends when we close
                self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            if served.kind == "trickle":
                for i in range(len(served.body)):
                    if state.closing.wait(served.delay_s):
                        return
                    self.wfile.write(served.body[i : i + 1])
                    self.wfile.flush()
                return
            for start in range(0, len(served.body), 16384):
                self.wfile.write(served.body[start : start + 16384])

    return Handler
