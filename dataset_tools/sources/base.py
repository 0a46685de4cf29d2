"""The interface every image source implements, the web APIs' common base and paced JSON client.

A source turns a search term into `Candidate`s: where an image can be fetched and who made
it. Downloading is not its job (see lyriscope.dataset_tools.download); a source only hears
back through `on_downloaded` (Unsplash counts downloads that way).

API keys come from environment variables only. They live in memory, are sent only to the
API's own host, and are replaced by "***" in every message this module builds.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from lyriscope import __version__ as _version
from lyriscope import atomic
from lyriscope.errors import LyriscopeError

log = logging.getLogger(__name__)

CONTACT_ENV = "LYRISCOPE_CONTACT"  # an e-mail or URL the API operators can reach you at
RATE_LIMIT_REMAINING = "X-RateLimit-Remaining"  # header name; lookups are case-insensitive


class SourceError(LyriscopeError):
    """An image API failed or refused us (bad key, bad response); the message names the source."""


class RateLimitReached(SourceError):
    """The API's request budget is spent; running collect again later continues."""


@dataclass(frozen=True)
class Candidate:
    """One image a source offers, with the credit a reuser must give."""

    source: str  # source name, e.g. "openverse"
    query: str  # the search term that found it ("" for folder and URL-list sources)
    image_url: str  # what is fetched (http/https), or the file:// URI of a local file
    page_url: str = ""  # the human page describing the image (licence, author)
    creator: str = ""
    license: str = ""  # short name, e.g. "CC BY-SA 4.0"
    license_url: str = ""
    attribution: str = ""  # one line of credit text
    width: int | None = None  # as the source reports it, pixels
    height: int | None = None
    local_path: Path | None = None  # set by the folder source: read this file instead of HTTP
    track_url: str = field(default="", repr=False)  # Unsplash download_location to hit once


class Source(abc.ABC):
    """A place images come from; `search` yields at most `limit` candidates for a term."""

    name: str = ""
    uses_queries: bool = True  # False: one search per line with an empty term (folder, URL list)
    download_slots: int | None = None  # images fetched at once from this source; None = any

    @abc.abstractmethod
    def search(self, query: str, *, limit: int) -> Iterator[Candidate]:
        """Yield up to `limit` candidates for `query`, paging through the API as needed."""

    def on_downloaded(self, candidate: Candidate) -> None:  # noqa: B027 - optional hook
        """Called once after a candidate's image was stored (new, not a duplicate)."""

    def __repr__(self) -> str:  # never show attributes: some hold keys
        return f"<{type(self).__name__} {self.name}>"


class WebSource(Source):
    """A source behind a JSON web API: its root URL, its key if it needs one, a paced client.

    A subclass names its API in the class attributes, may add client options (headers that
    carry the key) in `client_options`, and says how to fetch a page, read its items, find
    the next page and turn an item into a candidate; `candidates` pages through the API
    lazily and `search` stops it after `limit` candidates, so no page beyond them is requested.
    An API whose images all come under one licence names it too, for `licensed_candidate`.
    """

    url_env: str = ""  # environment variable that points the source elsewhere (mirrors, tests)
    default_root: str = ""  # the API's root URL
    key_env: str = ""  # environment variable holding the API key; "" for a keyless API
    key_help: str = ""  # what the key is and where to get one, for the missing-key message
    default_interval_s: float = 1.0  # the API's published pace: seconds between requests
    license: str = ""  # the one licence of all the API's images ("": each image names its own)
    license_url: str = ""
    credit: str = ""  # credit line its guidelines ask for, with {creator}: "Photo by {creator}"

    def __init__(
        self,
        *,
        min_interval_s: float | None = None,  # seconds between requests; None: the API's pace
        max_wait_s: float = 60.0,  # cap on one Retry-After/backoff wait, seconds
        cache_dir: Path | None = None,  # where to keep API responses (None: no cache)
    ) -> None:
        key = None
        if self.key_env:
            key = env_key(self.key_env)
            if key is None:
                raise SourceError(
                    f"{self.name}: set the environment variable {self.key_env} to "
                    f"your {self.key_help}"
                )
        self._key = key
        self.root = source_url(self.url_env, self.default_root)
        self.client = ApiClient(
            name=self.name,
            min_interval_s=self.default_interval_s if min_interval_s is None else min_interval_s,
            max_wait_s=max_wait_s,
            cache_dir=cache_dir,
            secrets=(key,) if key else (),
            **self.client_options(key),
        )

    def client_options(self, key: str | None) -> dict[str, Any]:
        """Extra ApiClient options (headers, cache_ignore) for this API; `key` is None if keyless."""
        return {}

    first_page: Any = 1  # the cursor of the first page: a page number, or an offset

    def candidates(self, query: str, *, limit: int) -> Iterator[Candidate]:
        """Every candidate the API has for `query`, page by page, until a page says it is last."""
        page = self.first_page
        while page is not None:
            data = self.fetch_page(query, page, limit=limit)
            items = self.page_items(data)
            # None: nothing usable to fetch (no image URL, not a raster image)
            yield from filter(None, (self.item_candidate(item, query) for item in items))
            page = self.next_page(data, page, count=len(items), limit=limit) if items else None

    @abc.abstractmethod
    def fetch_page(self, query: str, page: Any, *, limit: int) -> dict:
        """One page of results for `query` at cursor `page` (`limit` may size the pages)."""

    @abc.abstractmethod
    def page_items(self, data: dict) -> list[dict]:
        """The result items of one page, in the API's order."""

    @abc.abstractmethod
    def next_page(self, data: dict, page: Any, *, count: int, limit: int) -> Any | None:
        """The cursor after `page` (which held `count` items), or None when it was the last."""

    @abc.abstractmethod
    def item_candidate(self, item: dict, query: str) -> Candidate | None:
        """The candidate of one result item; None when it has nothing usable to fetch."""

    def search(self, query: str, *, limit: int) -> Iterator[Candidate]:
        return itertools.islice(self.candidates(query, limit=limit), max(0, limit))

    def licensed_candidate(
        self,
        query: str,
        *,
        image_url: str,
        page_url: str,
        creator: str,
        width: int | None,
        height: int | None,
        **extra: Any,
    ) -> Candidate:
        """A candidate under the API's one licence, credited the way the API asks."""
        return Candidate(
            source=self.name,
            query=query,
            image_url=image_url,
            page_url=page_url,
            creator=creator,
            license=self.license,
            license_url=self.license_url,
            attribution=self.credit.format(creator=creator or "unknown"),
            width=width,
            height=height,
            **extra,
        )


class TooSlow(Exception):
    """A body that took longer in all than allowed (a server trickling bytes)."""


def timed_chunks(response: Any, *, total_s: float, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """The body of a streamed `requests` response as it arrives; TooSlow after total_s in all.

    read1 returns what has arrived, so a server that sends a byte every few seconds (never
    silent long enough for the read timeout) still meets the deadline.
    """
    deadline = time.monotonic() + total_s
    while chunk := response.raw.read1(chunk_bytes, decode_content=True):
        if time.monotonic() > deadline:
            raise TooSlow(f"took over {total_s:g} s")
        yield chunk


def user_agent() -> str:
    """Our User-Agent: name/version, purpose, and contact from LYRISCOPE_CONTACT when set.

    Wikimedia's policy asks every client for a descriptive agent with a way to reach its user.
    """
    contact = os.environ.get(CONTACT_ENV, "").strip()
    return (
        f"lyriscope/{_version} (GAN lyric-video image collector"
        f"{'; ' + contact if contact else ''}) python-requests"
    )


class RedactSecrets(logging.Filter):
    """A log filter replacing given secrets by *** in the records it sees."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for s in self.secrets:
                text = text.replace(s, "***")
            record.msg, record.args = text, ()
        return True


# urllib3 logs every request line at DEBUG, query string included (Pixabay's key travels there).
HTTP_LOGGERS: tuple[str, ...] = ("urllib3.connectionpool", "urllib3.util.retry", "requests")


def hide_in_http_logs(secret: str) -> None:
    """Redact `secret` from the HTTP libraries' own log records, once per secret."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) and secret in f.secrets for f in logger.filters):
            logger.addFilter(RedactSecrets([secret]))


def source_url(env_name: str, default: str) -> str:
    """The API root: `default`, or the value of the environment variable `env_name` (mirrors, tests)."""
    return (os.environ.get(env_name) or default).rstrip("/")


def env_key(env_name: str) -> str | None:
    """An API key from the environment, or None when unset or blank."""
    value = os.environ.get(env_name, "").strip()
    return value or None


def public_url(url: str) -> str:
    """`url` without its query and fragment: safe to print (keys travel in queries)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(malformed URL)"
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def same_host(url_a: str, url_b: str) -> bool:
    """Whether two URLs point at the same scheme and host:port (keys go only to the API host)."""
    try:
        a, b = urlsplit(url_a), urlsplit(url_b)
    except ValueError:
        return False
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def retry_after_s(value: str | None, *, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date; RFC 9110 10.2.3)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


class ApiClient:
    """Serial, paced JSON GETs to one API, with retries on 429/5xx and rate-limit tracking.

    Requests are made one at a time (a lock), at least `min_interval_s` apart. A 429 or 5xx
    is retried up to `retries` times after Retry-After (or exponential backoff), capped at
    `max_wait_s`. When the API reports X-RateLimit-Remaining: 0, or keeps answering 429,
    `RateLimitReached` is raised and no further request is sent.
    """

    def __init__(
        self,
        *,
        name: str,  # source name for messages
        min_interval_s: float,  # pause between two requests, seconds
        headers: Mapping[str, str] | None = None,  # extra headers (may hold a key)
        secrets: Sequence[str] = (),  # strings never to show in a message
        retries: int = 3,  # extra tries after a 429/5xx/timeout
        max_wait_s: float = 60.0,  # cap on one Retry-After/backoff wait, seconds
        timeout_s: tuple[float, float] = (10.0, 30.0),  # connect, read
        total_s: float = 60.0,  # one answer may take this long in all
        max_answer_bytes: int = 32 * 2**20,  # an API answer larger than this is refused
        cache_dir: Path | None = None,  # where to keep responses (None: no cache)
        cache_max_age_s: float = 24 * 3600.0,  # how long a cached response is used
        cache_ignore: Sequence[str] = (),  # query parameters left out of the cache key
    ) -> None:
        self.name = name
        self.min_interval_s = min_interval_s
        self.retries = retries
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self.total_s = total_s
        self.max_answer_bytes = max_answer_bytes
        self.cache_dir = cache_dir
        self.cache_max_age_s = cache_max_age_s
        self.cache_ignore = frozenset(cache_ignore)
        self.requests_sent = 0
        self._secrets = tuple(s for s in secrets if s)
        for secret in self._secrets:
            hide_in_http_logs(secret)
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent()
        self._session.headers.update(headers or {})
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._spent = False

    def __repr__(self) -> str:
        return f"<ApiClient {self.name}>"

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def get_json(
        self, url: str, params: Mapping[str, Any] | None = None, *, auth: bool = True
    ) -> Any:
        """GET `url` with `params` and return the decoded JSON body.

        auth=False drops the session's headers that may hold a key (for foreign hosts).
        """
        params = dict(params or {})
        cached = self._cache_read(url, params)
        if cached is not None:
            return cached
        with self._lock:
            if self._spent:
                raise RateLimitReached(
                    f"{self.name}: the API's rate limit is reached; run "
                    f"collect again later to continue"
                )
            response = self._send(url, params, auth=auth)
            body = self._body(response, url)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise SourceError(
                f"{self.name}: {public_url(url)} answered HTTP "
                f"{response.status_code} with no usable JSON body"
            ) from None
        self._cache_write(url, params, data)
        return data

    def get(self, url: str, *, auth: bool = True) -> int:
        """GET `url` and drop the body (Unsplash download tracking); return the status code."""
        with self._lock:
            response = self._send(url, {}, auth=auth, want_ok=False)
            response.close()
            return response.status_code

    def _body(self, response: Any, url: str) -> bytes:
        """The whole answer, within total_s and max_answer_bytes."""
        parts, size = [], 0
        try:
            with contextlib.closing(response):
                for chunk in timed_chunks(response, total_s=self.total_s):
                    size += len(chunk)
                    if size > self.max_answer_bytes:
                        raise SourceError(
                            f"{self.name}: {public_url(url)} answered more than "
                            f"{self.max_answer_bytes // 2**20} MiB; not the API?"
                        )
                    parts.append(chunk)
        except TooSlow as exc:
            raise SourceError(f"{self.name}: {public_url(url)} {exc}; try again later") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SourceError(
                f"{self.name}: the answer of {public_url(url)} broke off ({type(exc).__name__})"
            ) from None
        return b"".join(parts)

    def _send(self, url: str, params: dict, *, auth: bool, want_ok: bool = True):
        headers = None if auth else {"Authorization": None}  # None removes a session header
        for attempt in range(self.retries + 1):
            wait = self._next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._next_at = time.monotonic() + self.min_interval_s
            self.requests_sent += 1
            try:
                response = self._session.get(
                    url, params=params, headers=headers, timeout=self.timeout_s, stream=True
                )
            except requests.RequestException as exc:
                if attempt < self.retries:
                    time.sleep(min(self.max_wait_s, 2.0**attempt))
                    continue
                raise SourceError(
                    f"{self.name}: cannot reach {public_url(url)} "
                    f"({type(exc).__name__}); check the network or the "
                    f"LYRISCOPE_{self.name.upper()}_URL setting"
                ) from None
            if response.headers.get(RATE_LIMIT_REMAINING, "").strip() == "0":
                self._spent = True  # this answer still counts; the next request would not
            retryable = response.status_code == 429 or response.status_code >= 500
            if response.status_code >= 400 or (retryable and attempt < self.retries):
                response.close()  # a streamed answer holds its connection until closed
            if retryable and attempt < self.retries:
                backoff = min(self.max_wait_s, 2.0**attempt)
                delay = retry_after_s(response.headers.get("Retry-After"), default=backoff)
                time.sleep(min(delay, self.max_wait_s))
                continue
            if response.status_code == 429:
                self._spent = True
                raise RateLimitReached(
                    f"{self.name}: the API keeps answering 429 Too Many "
                    f"Requests; run collect again later to continue"
                )
            if want_ok and response.status_code in (401, 403):
                raise SourceError(
                    f"{self.name}: {public_url(url)} refused the request (HTTP "
                    f"{response.status_code}); check the API key in the "
                    f"environment"
                )
            if want_ok and response.status_code >= 400:
                raise SourceError(
                    f"{self.name}: {public_url(url)} answered HTTP {response.status_code}"
                )
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def _cache_path(self, url: str, params: Mapping[str, Any]) -> Path | None:
        if self.cache_dir is None:
            return None
        keyed = sorted((k, str(v)) for k, v in params.items() if k not in self.cache_ignore)
        digest = hashlib.sha256(json.dumps([public_url(url), keyed]).encode()).hexdigest()
        return self.cache_dir / f"{self.name}-{digest[:32]}.json"

    def _cache_read(self, url: str, params: Mapping[str, Any]) -> Any:
        path = self._cache_path(url, params)
        if path is None or not path.is_file():
            return None
        if time.time() - path.stat().st_mtime > self.cache_max_age_s:
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _cache_write(self, url: str, params: Mapping[str, Any], data: Any) -> None:
        path = self._cache_path(url, params)
        if path is None:
            return

        atomic.write_text(path, self.redact(json.dumps(data)))
