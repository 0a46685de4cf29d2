"""The studio's HTTP side: routes of the page onto Studio's methods, on the standard library's server.

Every request must carry the studio's token (?t=TOKEN, or the X-Studio-Token header):
without it the answer is 403 and nothing else happens. Bodies are bounded before they are
read (413), JSON is parsed with its depth limited and checked field by field (400 with the
reason), files are served from inside their set only (studio.files), and the server listens
on 127.0.0.1 unless told otherwise. Job progress reaches the page as server-sent events
(/api/events), the whole job table each time it changes.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from lyriscope.errors import LyriscopeError
from lyriscope.studio.app import Studio
from lyriscope.studio.errors import BadRequest, NotFound, StudioRequestError, TooLarge
from lyriscope.studio.files import byte_range, content_type

log = logging.getLogger(__name__)

STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_STATIC_NAME = re.compile(r"[a-z][a-z0-9_-]*\.(?:html|js|css)")
EVENT_HEARTBEAT_S = 15.0  # a comment line this often keeps proxies and the browser patient
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never pass it on
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}

Route = tuple[str, re.Pattern[str], str]  # method, path pattern, handler method name
ROUTES: tuple[Route, ...] = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("GET", r"/", "page"),
        ("GET", r"/static/(?P<file>[^/]+)", "static"),
        ("GET", r"/api/sets", "list_sets"),
        ("POST", r"/api/sets", "create_set"),
        ("POST", r"/api/uploads", "upload"),
        ("GET", r"/api/sets/(?P<set>[^/]+)", "view_set"),
        ("GET", r"/api/sets/(?P<set>[^/]+)/waveform", "waveform"),
        ("POST", r"/api/sets/(?P<set>[^/]+)/edit", "edit_set"),
        ("POST", r"/api/sets/(?P<set>[^/]+)/queries", "fill_queries"),
        ("GET", r"/api/sets/(?P<set>[^/]+)/curation", "curation"),
        ("POST", r"/api/sets/(?P<set>[^/]+)/curation", "decide"),
        ("GET", r"/api/sets/(?P<set>[^/]+)/thumb", "thumbnail"),
        ("GET", r"/api/sets/(?P<set>[^/]+)/training", "training"),
        ("POST", r"/api/sets/(?P<set>[^/]+)/jobs", "start_job"),
        ("GET", r"/api/jobs", "list_jobs"),
        ("POST", r"/api/jobs/(?P<job>\d{1,9})/cancel", "cancel_job"),
        ("GET", r"/api/events", "events"),
        ("GET", r"/files/(?P<set>[^/]+)/(?P<path>.+)", "file"),
    )
)


class StudioServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its Studio and tells event streams when it stops."""

    daemon_threads = True

    def __init__(self, studio: Studio, address: tuple[str, int]) -> None:
        self.studio = studio
        self.stopping = threading.Event()
        super().__init__(address, StudioHandler)

    @property
    def url(self) -> str:
        """The page's address, token included."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/?t={self.studio.token}"

    def stop(self) -> None:
        """End the event streams and the serving loop (call from another thread)."""
        self.stopping.set()
        self.shutdown()


def make_server(studio: Studio) -> StudioServer:
    """The studio's HTTP server on options.host:options.port; run serve_forever() on it."""
    return StudioServer(studio, (studio.options.host, studio.options.port))


class StudioHandler(BaseHTTPRequestHandler):
    server: StudioServer
    server_version = "lyriscope-studio"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's name
        log.debug("%s " + format, self.address_string(), *args)

    # -- dispatch --------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            self.query = parse_qs(url.query, max_num_fields=20)
        except ValueError:  # more fields than any route takes
            self.close_connection = True
            self._send(HTTPStatus.BAD_REQUEST, b"too many query fields\n")
            return
        if not self._authorised():
            self.close_connection = True  # its body, if any, is not read
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: open the studio's URL with its token\n")
            return
        handler, params = self._route(method, url.path)
        try:
            if handler is None:
                raise NotFound(f"no {method} {url.path[:80]}")
            handler(**params)
        except StudioRequestError as exc:
            if isinstance(exc, TooLarge):
                self.close_connection = True
            self._json({"error": str(exc)}, exc.status)
        except LyriscopeError as exc:  # the CLI's one sentence, shown in the page
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - one request fails, the studio goes on
            log.exception("%s %s", method, url.path)
            self._json(
                {"error": f"internal error: {type(exc).__name__}: {exc}"},
                HTTPStatus.INTERNAL_SERVER_ERROR,
            )

    def _route(self, method: str, path: str) -> tuple[Callable | None, dict]:
        for route_method, pattern, name in ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return getattr(self, "_" + name), {
                    k: unquote(v) for k, v in match.groupdict().items()
                }
        return None, {}

    def _authorised(self) -> bool:
        given = (self.query.get("t") or [""])[0] or self.headers.get("X-Studio-Token", "")
        return secrets.compare_digest(given.encode(), self.server.studio.token.encode())

    # -- answers ---------------------------------------------------------------------------

    def _send(
        self,
        status: HTTPStatus | int,
        body: bytes,
        kind: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: object, status: HTTPStatus | int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

    def _body(self, limit: int) -> bytes:
        declared = self.headers.get("Content-Length") or ""
        if not declared.isdigit():
            raise BadRequest("expected a body with a Content-Length")
        length = int(declared)
        if length > limit:
            raise TooLarge(f"the body has {length} bytes; at most {limit} are taken here")
        return self.rfile.read(length)

    def _json_body(self) -> object:
        raw = self._body(self.server.studio.options.max_json_bytes)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("the body is not JSON") from None

    def _arg(self, name: str) -> str:
        return (self.query.get(name) or [""])[0]

    def _line_arg(self) -> int:
        text = self._arg("line")
        if not text.isdigit() or not 0 < int(text) < 10_000:
            raise BadRequest("line: expected a line number from 1")
        return int(text)

    # -- routes ----------------------------------------------------------------------------

    def _page(self) -> None:
        # The page links its script and style with the token: every request carries it.
        page = (
            resources.files("lyriscope.studio").joinpath("static", "index.html").read_text("utf-8")
        )
        body = page.replace("__TOKEN__", self.server.studio.token).encode("utf-8")
        self._send(HTTPStatus.OK, body, STATIC_TYPES[".html"])

    def _static(self, file: str) -> None:
        if not _STATIC_NAME.fullmatch(file):
            raise NotFound(f"no static file {file!r:.60}")
        resource = resources.files("lyriscope.studio").joinpath("static", file)
        if not resource.is_file():
            raise NotFound(f"no static file {file!r:.60}")
        self._send(HTTPStatus.OK, resource.read_bytes(), STATIC_TYPES[Path(file).suffix])

    def _list_sets(self) -> None:
        studio = self.server.studio
        self._json(
            {
                **studio.list_sets(),
                "limits": {
                    "audio": studio.options.max_audio_bytes,
                    "lyrics": studio.options.max_lyrics_bytes,
                },
            }
        )

    def _create_set(self) -> None:
        self._json(self.server.studio.create(self._json_body()), HTTPStatus.CREATED)

    def _upload(self) -> None:
        uploads = self.server.studio.uploads
        name = self._arg("name")
        declared = self.headers.get("Content-Length") or ""
        if not declared.isdigit():
            raise BadRequest("expected a body with a Content-Length")
        length = int(declared)
        if length > uploads.limit_for(name):
            raise TooLarge(
                f"{name}: {length} bytes is more than the {uploads.limit_for(name)} a file may have"
            )
        upload = uploads.receive(name, self.rfile, length)
        self._json(upload.as_json(), HTTPStatus.CREATED)

    def _view_set(self, set: str) -> None:  # noqa: A002 - the route's name
        self._json(self.server.studio.view(set))

    def _waveform(self, set: str) -> None:  # noqa: A002
        self._json(self.server.studio.waveform(set))

    def _edit_set(self, set: str) -> None:  # noqa: A002
        self._json(self.server.studio.edit(set, self._json_body()))

    def _fill_queries(self, set: str) -> None:  # noqa: A002
        self._json(self.server.studio.queries(set, self._json_body()))

    def _curation(self, set: str) -> None:  # noqa: A002
        self._json(self.server.studio.curation(set))

    def _decide(self, set: str) -> None:  # noqa: A002
        self._json(self.server.studio.decide(set, self._json_body()))

    def _thumbnail(self, set: str) -> None:  # noqa: A002
        jpeg = self.server.studio.thumbnail(set, self._line_arg(), self._arg("sha"))
        self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _training(self, set: str) -> None:  # noqa: A002
        self._json(self.server.studio.training(set, self._line_arg()))

    def _start_job(self, set: str) -> None:  # noqa: A002
        self._json(self.server.studio.start_job(set, self._json_body()), HTTPStatus.CREATED)

    def _list_jobs(self) -> None:
        jobs = self.server.studio.jobs
        self._json({"version": jobs.version, "jobs": jobs.jobs()})

    def _cancel_job(self, job: str) -> None:
        self._json(self.server.studio.jobs.cancel(int(job)))

    def _events(self) -> None:
        """Server-sent events: the job table now and after every change, until the page leaves."""
        jobs, stopping = self.server.studio.jobs, self.server.stopping
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b"retry: 2000\n\n")
        version = -1
        while not stopping.is_set():
            now = jobs.wait(version, timeout=EVENT_HEARTBEAT_S)
            if stopping.is_set():
                break
            if now == version:
                self.wfile.write(b": still here\n\n")
            else:
                version = now
                payload = json.dumps({"version": now, "jobs": jobs.jobs()})
                self.wfile.write(f"data: {payload}\n\n".encode())
            self.wfile.flush()

    def _file(self, set: str, path: str) -> None:  # noqa: A002
        found = self.server.studio.file(set, path)
        size = found.stat().st_size
        span = byte_range(self.headers.get("Range"), size)
        headers = {"Accept-Ranges": "bytes"}
        if self._arg("download"):
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(found.name)}"
        start, end = span if span is not None else (0, size - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK)
        self.send_header("Content-Type", content_type(found))
        self.send_header("Content-Length", str(max(0, end - start + 1)))
        if span:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        for name, value in {**SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        with open(found, "rb") as f:
            f.seek(start)
            _copy(f, self.wfile, end - start + 1)


def _copy(source, target, length: int) -> None:
    """length bytes from one file object to another, in chunks."""
    while length > 0:
        chunk = source.read(min(1 << 20, length))
        if not chunk:
            return
        target.write(chunk)
        length -= len(chunk)
