"""Wikimedia Commons: freely licensed media files, no key needed.

API facts used (MediaWiki Action API, commons.wikimedia.org/w/api.php, API:Etiquette):
- GET ?action=query&format=json&formatversion=2&generator=search&gsrsearch=TERM
  &gsrnamespace=6 (File:) &gsrlimit=N (at most 50 for clients without bot rights)
  &gsroffset=K &prop=imageinfo&iiprop=url|extmetadata|size|mime&iiurlwidth=W.
  query.pages[] each hold imageinfo[0] with "url" (original), "thumburl" (scaled to W),
  "descriptionurl" (the file page), "width", "height", "mime", and "extmetadata" whose
  entries are {"value": ...}: Artist (HTML), LicenseShortName, LicenseUrl, Attribution,
  ObjectName. "continue": {"gsroffset": K} gives the next offset. The search keyword
  "filetype:bitmap" keeps to raster images (CirrusSearch); we also check each "mime".
- Etiquette: a descriptive User-Agent with contact information (set LYRISCOPE_CONTACT), requests made serially
  (never in parallel), maxlag=5 so we back off when replicas lag (the answer is then an
  error "maxlag" with a Retry-After header). We also fetch files one at a time.
"""

from __future__ import annotations

import html
import re
import time

from lyriscope.dataset_tools.sources.base import Candidate, SourceError, WebSource

PAGE_SIZE = 50  # gsrlimit maximum without bot rights
THUMB_WIDTH = 2048  # px; enough for 1024² training, far smaller than many originals
RASTER_MIMES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/tiff", "image/bmp"}
)
MAXLAG_RETRIES = 3
MAXLAG_WAIT_S = 5.0  # the API suggests 5 s when it reports maxlag
_TAG = re.compile(r"<[^>]+>")


def plain_text(value: str) -> str:
    """Text of an HTML fragment (extmetadata's Artist is HTML): tags dropped, entities decoded."""
    return " ".join(html.unescape(_TAG.sub(" ", value or "")).split())


class WikimediaSource(WebSource):
    """Search File: pages on Wikimedia Commons (keyless; serial by the API's etiquette)."""

    name = "wikimedia"
    download_slots = 1
    url_env = "LYRISCOPE_WIKIMEDIA_URL"
    default_root = "https://commons.wikimedia.org"
    default_interval_s = 1.0

    first_page = 0  # gsroffset: Commons pages by offset

    def fetch_page(self, query: str, page: int, *, limit: int) -> dict:
        return self._query(query, page)

    def page_items(self, data: dict) -> list[dict]:
        pages = (data.get("query") or {}).get("pages") or []
        return sorted(pages, key=lambda p: p.get("index", 0))

    def next_page(self, data: dict, page: int, *, count: int, limit: int) -> int | None:
        offset = (data.get("continue") or {}).get("gsroffset")
        return None if offset is None else int(offset)

    def _query(self, query: str, offset: int) -> dict:
        params = {
            "action": "query",
            "format": "json",
            "formatversion": 2,
            "maxlag": 5,
            "generator": "search",
            "gsrsearch": f"{query} filetype:bitmap",
            "gsrnamespace": 6,
            "gsrlimit": PAGE_SIZE,
            "gsroffset": offset,
            "prop": "imageinfo",
            "iiprop": "url|extmetadata|size|mime",
            "iiurlwidth": THUMB_WIDTH,
        }
        for _ in range(MAXLAG_RETRIES + 1):
            data = self.client.get_json(f"{self.root}/w/api.php", params)
            error = data.get("error") or {}
            if error.get("code") != "maxlag":
                if error:
                    raise SourceError(
                        f"{self.name}: the API answered error "
                        f"{error.get('code')!r}: {error.get('info', '')}"
                    )
                return data
            time.sleep(min(self.client.max_wait_s, MAXLAG_WAIT_S))
        raise SourceError(f"{self.name}: the servers stay lagged (maxlag); try again later")

    def item_candidate(self, page: dict, query: str) -> Candidate | None:
        infos = page.get("imageinfo") or []
        if not infos:
            return None
        info = infos[0]
        if info.get("mime") not in RASTER_MIMES:
            return None  # SVG, PDF, DjVu, video: not photos to train on
        meta = {k: (v or {}).get("value", "") for k, v in (info.get("extmetadata") or {}).items()}
        creator = plain_text(str(meta.get("Artist", "")))
        license_ = plain_text(str(meta.get("LicenseShortName", "")))
        title = plain_text(str(meta.get("ObjectName", ""))) or page.get("title", "")
        attribution = plain_text(str(meta.get("Attribution", "")))
        if not attribution:
            who = f" by {creator}" if creator else ""
            attribution = f"{title}{who}, {license_}, via Wikimedia Commons".strip(", ")
        return Candidate(
            source=self.name,
            query=query,
            image_url=info.get("thumburl") or info.get("url", ""),
            page_url=info.get("descriptionurl", ""),
            creator=creator,
            license=license_,
            license_url=str(meta.get("LicenseUrl", "")),
            attribution=attribution,
            width=info.get("thumbwidth") or info.get("width"),
            height=info.get("thumbheight") or info.get("height"),
        )
