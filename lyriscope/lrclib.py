"""Synced lyrics from LRCLIB (lrclib.net), the open lyrics database; its API needs no key.

API facts used: GET {root}/api/search?track_name=T&artist_name=A (or ?q=TEXT) answers a JSON
list of records {id, trackName, artistName, albumName, duration (s), instrumental,
plainLyrics, syncedLyrics (LRC text or null)}. A song is matched to the audio by its
duration, within LRCLIB's own tolerance of 2 s; of several matches the closest wins.
LYRISCOPE_LRCLIB_URL points the client elsewhere (a mirror, the tests' loopback server).
Only the standard library is used, so the core stays light.

Example:
    >>> match = find_synced_lyrics("Artist - Title", duration=231.4)
    >>> lyrics = parse_lrc(match.synced, source=match.label)
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from lyriscope import __version__
from lyriscope.errors import LyriscopeError
from lyriscope.timebase import clock_text

URL_ENV = "LYRISCOPE_LRCLIB_URL"
DEFAULT_ROOT = "https://lrclib.net"
DURATION_TOLERANCE_S = 2.0  # LRCLIB matches a track's duration within this
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a search answer is a few hundred KB at most


class LrclibError(LyriscopeError):
    """LRCLIB could not give synced lyrics for the song; the message says why."""


@dataclass(frozen=True)
class LrclibMatch:
    """One LRCLIB record with synced lyrics."""

    id: int
    artist: str
    title: str
    album: str
    duration: float  # seconds
    synced: str  # the LRC text

    @property
    def label(self) -> str:
        return f"LRCLIB #{self.id} ({self.artist} - {self.title})"


def find_synced_lyrics(
    query: str,
    *,
    duration: float,  # the audio's length (s): the match must last as long
    timeout_s: float = 15.0,  # per request
    root: str | None = None,  # API root; None: $LYRISCOPE_LRCLIB_URL or lrclib.net
) -> LrclibMatch:
    """The synced lyrics of `query` ("Artist - Title", or any search text) for this audio."""
    query = " ".join(query.split())
    if not query:
        raise LrclibError('--lrclib: expected "Artist - Title", got nothing')
    root = (root or os.environ.get(URL_ENV) or DEFAULT_ROOT).rstrip("/")
    artist, sep, title = query.partition(" - ")
    params = {"artist_name": artist, "track_name": title} if sep else {"q": query}
    records = _search(root, params, timeout_s=timeout_s)
    synced = [r for r in records if r.synced]
    if not records:
        raise LrclibError(f"LRCLIB has no song matching {query!r}; check the spelling")
    if not synced:
        raise LrclibError(
            f"LRCLIB has {len(records)} match(es) for {query!r} but none with synced "
            f"lyrics; give an LRC file with --lyrics instead"
        )
    near = [r for r in synced if abs(r.duration - duration) <= DURATION_TOLERANCE_S]
    if not near:
        lengths = ", ".join(sorted({clock_text(r.duration) for r in synced}))
        raise LrclibError(
            f"LRCLIB's synced lyrics for {query!r} are for versions lasting {lengths}, "
            f"but the audio lasts {clock_text(duration)}; is it another version of the song?"
        )
    return min(near, key=lambda r: (abs(r.duration - duration), r.id))


def _search(root: str, params: dict[str, str], *, timeout_s: float) -> list[LrclibMatch]:
    url = f"{root}/api/search?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(
        url, headers={"User-Agent": f"lyriscope/{__version__}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise LrclibError(
            f"LRCLIB answered HTTP {exc.code} ({exc.reason}); try again later"
        ) from None
    except TimeoutError:
        raise LrclibError(
            f"LRCLIB did not answer within {timeout_s:g} s; try again later or give --lyrics"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError | socket.timeout):
            raise LrclibError(
                f"LRCLIB did not answer within {timeout_s:g} s; try again later or give --lyrics"
            ) from None
        raise LrclibError(
            f"cannot reach LRCLIB at {root} ({reason}); give --lyrics instead"
        ) from None
    if len(body) > MAX_ANSWER_BYTES:
        raise LrclibError(f"LRCLIB's answer is larger than {MAX_ANSWER_BYTES} bytes; not LRCLIB?")
    try:
        data = json.loads(body)
        return [_record(item) for item in data]
    except (ValueError, TypeError, KeyError):
        raise LrclibError(
            f"{root} answered with something other than LRCLIB's search results; "
            f"check {URL_ENV} or try again later"
        ) from None


def _record(item: dict) -> LrclibMatch:
    synced = item.get("syncedLyrics") or ""
    if not isinstance(synced, str):
        raise TypeError("syncedLyrics is not text")
    return LrclibMatch(
        id=int(item["id"]),
        artist=str(item.get("artistName") or ""),
        title=str(item.get("trackName") or ""),
        album=str(item.get("albumName") or ""),
        duration=float(item.get("duration") or 0.0),
        synced=synced,
    )
