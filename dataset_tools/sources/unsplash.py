"""Unsplash: photos under the Unsplash License; needs UNSPLASH_ACCESS_KEY in the environment.

API facts used (unsplash.com/documentation and its API guidelines):
- GET {root}/search/photos?query=TERM&page=P&per_page=S (S at most 30) with headers
  "Authorization: Client-ID KEY" and "Accept-Version: v1" returns
  {"total", "total_pages", "results": [...]}; each photo has "width", "height",
  "urls" {"raw", "full", "regular", ...}, "links" {"html", "download_location"},
  "user" {"name", "links": {"html"}}, "alt_description".
- Demo applications get 50 requests an hour (production 5000); X-Ratelimit-Remaining says
  what is left and we stop at 0. Image files (images.unsplash.com) do not count.
- Guidelines: when a photo is downloaded, GET its links.download_location (with the key)
  so the photographer's download count goes up; credit "Photo by NAME on Unsplash".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from lyriscope.dataset_tools.sources.base import (
    ApiClient,
    Candidate,
    Source,
    SourceError,
    env_key,
    same_host,
    source_url,
)

log = logging.getLogger(__name__)

DEFAULT_ROOT = "https://api.unsplash.com"
URL_ENV = "LYRISCOPE_UNSPLASH_URL"
KEY_ENV = "UNSPLASH_ACCESS_KEY"
PAGE_SIZE = 30  # per_page maximum
MIN_INTERVAL_S = 1.0
LICENSE = "Unsplash License"
LICENSE_URL = "https://unsplash.com/license"


class UnsplashSource(Source):
    """Search Unsplash photos and report each download back to Unsplash."""

    name = "unsplash"

    def __init__(self, *, min_interval_s: float = MIN_INTERVAL_S, max_wait_s: float = 60.0,
                 cache_dir: Path | None = None) -> None:
        key = env_key(KEY_ENV)
        if key is None:
            raise SourceError(f"{self.name}: set the environment variable {KEY_ENV} to your "
                              f"Unsplash access key (unsplash.com/developers)")
        self.root = source_url(URL_ENV, DEFAULT_ROOT)
        self.client = ApiClient(
            name=self.name, min_interval_s=min_interval_s, max_wait_s=max_wait_s,
            headers={"Authorization": f"Client-ID {key}", "Accept-Version": "v1"},
            secrets=(key,), cache_dir=cache_dir,
        )
        self.tracked = 0  # downloads reported back

    def search(self, query: str, *, limit: int) -> Iterator[Candidate]:
        found, page = 0, 1
        while True:
            data = self.client.get_json(f"{self.root}/search/photos",
                                        {"query": query, "page": page, "per_page": PAGE_SIZE})
            results = data.get("results") or []
            for photo in results:
                candidate = self._candidate(photo, query)
                if candidate is None:
                    continue
                yield candidate
                found += 1
                if found >= limit:
                    return
            if len(results) < PAGE_SIZE or page >= int(data.get("total_pages") or 0):
                return
            page += 1

    def on_downloaded(self, candidate: Candidate) -> None:
        if not candidate.track_url:
            return
        if not same_host(candidate.track_url, self.root):
            log.warning("unsplash: download_location is not on %s; not sending the key there",
                        self.root)
            return
        try:
            self.client.get(candidate.track_url)
            self.tracked += 1
        except SourceError as exc:  # tracking must not stop the collect
            log.warning("%s", exc)

    def _candidate(self, photo: dict, query: str) -> Candidate | None:
        urls = photo.get("urls") or {}
        image_url = urls.get("full") or urls.get("regular") or ""
        if not image_url:
            return None
        links = photo.get("links") or {}
        user = photo.get("user") or {}
        creator = user.get("name") or user.get("username") or ""
        return Candidate(
            source=self.name, query=query, image_url=image_url,
            page_url=links.get("html", ""), creator=creator, license=LICENSE,
            license_url=LICENSE_URL, attribution=f"Photo by {creator or 'unknown'} on Unsplash",
            width=photo.get("width"), height=photo.get("height"),
            track_url=links.get("download_location", ""),
        )
