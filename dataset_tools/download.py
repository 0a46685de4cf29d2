"""Fetch one candidate image to disk safely: http(s) only, byte-capped, checked by its bytes.

A file is stored as <sha256><ext> in the line folder, the extension taken from the file's
magic bytes (JPEG, PNG, GIF, WebP, BMP, TIFF), never from the URL or the Content-Type. It is
written to a hidden .part file and renamed only when complete. 429 and 5xx answers are
retried after Retry-After (capped) or an exponential backoff; redirects are followed by hand
so that one to file:, ftp: or data: is refused. `Downloader.fetch` is thread-safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import socket
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from PIL import Image
from requests.adapters import HTTPAdapter

from lyriscope.dataset_tools.sources.base import (
    Candidate,
    TooSlow,
    public_url,
    retry_after_s,
    timed_chunks,
    user_agent,
)

log = logging.getLogger(__name__)

# Why an image was not stored; "duplicate" is decided by the caller, which knows the manifest.
REFUSAL_REASONS: tuple[str, ...] = (
    "too_large",
    "not_image",
    "http_error",
    "timeout",
    "duplicate",
    "bad_url",
)
ALLOWED_SCHEMES = ("http", "https")
PART_PREFIX = ".dl-"
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class DownloadOptions:
    workers: int = 4  # images fetched at once
    max_bytes: int = 40 * 2**20  # larger bodies are refused as too_large (streamed, then cut)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0  # longest silence while waiting for bytes
    retries: int = 2  # extra tries after a 429, 5xx, timeout or dropped connection
    backoff_s: float = 1.0  # first wait when no Retry-After is given; doubles per try
    max_wait_s: float = 30.0  # cap on any one wait (a Retry-After of an hour is not honoured)
    max_redirects: int = 5
    max_total_s: float = 120.0  # one image may take this long in all (a trickle is cut)
    # Loopback, private and link-local hosts are refused (an image URL or a redirect must not
    # reach the machine's own services), except these origins ("http://127.0.0.1:8080": the
    # endpoints the user configured) or everything with allow_private.
    allowed_origins: frozenset[str] = frozenset()
    allow_private: bool = False


@dataclass(frozen=True)
class Fetched:
    """What became of one candidate."""

    candidate: Candidate
    path: Path | None = None  # the stored file, when it was stored
    sha256: str | None = None  # hex digest of the file's bytes
    width: int | None = None  # from the file's header (None if it cannot be read cheaply)
    height: int | None = None
    reason: str | None = None  # one of REFUSAL_REASONS; None when stored
    permanent: bool = False  # the same URL would fail again: later runs skip it
    detail: str = ""  # for logs, e.g. "HTTP 404"

    @property
    def ok(self) -> bool:
        return self.reason is None


def sniff_image_type(head: bytes) -> str | None:
    """The file extension for an image's first bytes (".jpg", ".png", ...), or None if not an image."""
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    if head[:2] == b"BM" and len(head) >= 26:
        return ".bmp"
    return None


class _Refused(Exception):
    def __init__(self, reason: str, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.permanent = reason, detail, permanent


class Downloader:
    """Thread-safe image fetcher with one pooled requests Session; `stop` aborts downloads."""

    def __init__(self, options: DownloadOptions = DownloadOptions()) -> None:
        self.options = options
        self.stop = threading.Event()  # set it to make every fetch give up soon
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=max(4, options.workers))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    def fetch(self, candidate: Candidate, folder: Path) -> Fetched:
        """Download (or copy, for a local file) `candidate` into `folder` as <sha256><ext>."""
        folder.mkdir(parents=True, exist_ok=True)
        try:
            if candidate.local_path is not None:
                return self._store(
                    candidate, folder, _read_local(candidate.local_path, self.options.max_bytes)
                )
            return self._store(candidate, folder, self._stream(candidate.image_url))
        except _Refused as refused:
            log.info(
                "refused %s: %s (%s)",
                public_url(candidate.image_url),
                refused.reason,
                refused.detail,
            )
            return Fetched(
                candidate, reason=refused.reason, permanent=refused.permanent, detail=refused.detail
            )

    def _stream(self, url: str):
        """Yield the body's chunks of `url` after following redirects; raises _Refused."""
        response = self._open(url)
        with contextlib.closing(response):
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.options.max_bytes:
                raise _Refused("too_large", f"Content-Length {declared}", permanent=True)
            yield from self._chunks(response)

    def _chunks(self, response):
        try:
            for chunk in timed_chunks(response, total_s=self.options.max_total_s):
                if self.stop.is_set():
                    raise _Refused("timeout", "stopped", permanent=False)
                yield chunk
        except TooSlow as exc:
            raise _Refused("timeout", str(exc), permanent=False) from None
        except (urllib3.exceptions.TimeoutError, urllib3.exceptions.NewConnectionError) as exc:
            raise _Refused(
                "timeout", f"body stalled ({type(exc).__name__})", permanent=False
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # cut short, bad chunking
            raise _Refused(
                "http_error", f"broken body ({type(exc).__name__})", permanent=False
            ) from None

    def _open(self, url: str):
        """The response to `url` (headers read, body not), following redirects by hand."""
        for _ in range(self.options.max_redirects + 1):
            try:
                scheme = urlsplit(url).scheme.lower()
            except ValueError:  # e.g. an unclosed IPv6 bracket
                raise _Refused("bad_url", "malformed URL", permanent=True) from None
            if scheme not in ALLOWED_SCHEMES:
                raise _Refused(
                    "bad_url", f"scheme of {url[:40]!r} is not http/https", permanent=True
                )
            self._refuse_private(url)  # every hop: a redirect may point inwards
            response = self._get(url)
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                url = urljoin(url, location)
                continue
            if response.status_code >= 400:
                response.close()
                transient = response.status_code in (408, 429) or response.status_code >= 500
                raise _Refused(
                    "http_error", f"HTTP {response.status_code}", permanent=not transient
                )
            return response
        raise _Refused("http_error", "too many redirects", permanent=True)

    def _refuse_private(self, url: str) -> None:
        opts = self.options
        if opts.allow_private or origin(url) in opts.allowed_origins:
            return
        inner = private_address(url)
        if inner is not None:
            raise _Refused("bad_url", f"points at the private address {inner}", permanent=True)

    def _get(self, url: str):
        opts = self.options
        for attempt in range(opts.retries + 1):
            backoff = min(opts.max_wait_s, opts.backoff_s * 2**attempt)
            last = attempt == opts.retries
            try:
                response = self._session.get(
                    url,
                    stream=True,
                    allow_redirects=False,
                    timeout=(opts.connect_timeout_s, opts.read_timeout_s),
                )
            except (
                requests.exceptions.InvalidURL,
                requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema,
            ):
                raise _Refused("bad_url", "not a usable URL", permanent=True) from None
            except requests.Timeout:
                if last:
                    raise _Refused("timeout", "no answer in time", permanent=False) from None
                self._pause(backoff)
                continue
            except requests.RequestException as exc:
                if last:
                    raise _Refused("http_error", type(exc).__name__, permanent=False) from None
                self._pause(backoff)
                continue
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                wait = retry_after_s(response.headers.get("Retry-After"), default=backoff)
                response.close()
                self._pause(min(wait, opts.max_wait_s))
                continue
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def _pause(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise _Refused("timeout", "stopped", permanent=False)

    def _store(self, candidate: Candidate, folder: Path, chunks) -> Fetched:
        fd, part_name = tempfile.mkstemp(prefix=PART_PREFIX, suffix=".part", dir=folder)
        part = Path(part_name)
        try:
            digest, size, head = hashlib.sha256(), 0, b""
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.options.max_bytes:
                        raise _Refused(
                            "too_large", f"more than {self.options.max_bytes} bytes", permanent=True
                        )
                    if len(head) < 32:
                        head = (head + chunk)[:32]
                    digest.update(chunk)
                    f.write(chunk)
            ext = sniff_image_type(head)
            if ext is None:
                raise _Refused("not_image", f"starts with {head[:8]!r}", permanent=True)
            sha = digest.hexdigest()
            final = folder / f"{sha}{ext}"
            os.replace(part, final)  # same name, same bytes: replacing a twin is harmless
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise
        width, height = header_size(final)
        return Fetched(candidate, path=final, sha256=sha, width=width, height=height)


def origin(url: str) -> str:
    """scheme://host:port of a URL (the port written out), "" when it does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def private_address(url: str) -> str | None:
    """The first loopback, private, link-local or reserved address url's host resolves to.

    None when every address is public, or when the name does not resolve (the request
    then fails on its own). The check runs before each request and each redirect.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 0
    except ValueError:
        return None
    try:
        infos = socket.getaddrinfo(host, port or None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            return str(address)
    return None


def header_size(path: Path) -> tuple[int | None, int | None]:
    """(width, height) from an image's header without decoding pixels; (None, None) if refused."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: verify decides on bombs
            with Image.open(path) as img:
                return img.size
    except Exception:  # noqa: BLE001 - broken or bomb: verify reports it properly
        return None, None


def clean_parts(folder: Path) -> int:
    """Remove .part files a killed run left in `folder`; return how many."""
    removed = 0
    for part in folder.glob(f"{PART_PREFIX}*.part"):
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
            removed += 1
    return removed


def _read_local(path: Path, max_bytes: int):
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _Refused("too_large", f"{size} bytes", permanent=True)
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                yield chunk
    except OSError as exc:
        raise _Refused("not_image", f"cannot read ({exc.strerror})", permanent=True) from None
