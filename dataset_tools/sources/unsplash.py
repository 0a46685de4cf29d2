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
from typing import Any

from lyriscope.dataset_tools.sources.base import Candidate, SourceError, WebSource, same_host

log = logging.getLogger(__name__)

PAGE_SIZE = 30  # per_page maximum


class UnsplashSource(WebSource):
    """Search Unsplash photos and report each download back to Unsplash."""

    name = "unsplash"
    url_env = "LYRISCOPE_UNSPLASH_URL"
    default_root = "https://api.unsplash.com"
    key_env = "UNSPLASH_ACCESS_KEY"
    key_help = "Unsplash access key (unsplash.com/developers)"
    default_interval_s = 1.0
    license = "Unsplash License"
    license_url = "https://unsplash.com/license"
    credit = "Photo by {creator} on Unsplash"

    def __init__(self, **options: Any) -> None:
        """options: as WebSource's (min_interval_s, max_wait_s, cache_dir)."""
        super().__init__(**options)
        self.tracked = 0  # downloads reported back

    def client_options(self, key: str | None) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Client-ID {key}", "Accept-Version": "v1"}}

    def fetch_page(self, query: str, page: int, *, limit: int) -> dict:
        params = {"query": query, "page": page, "per_page": PAGE_SIZE}
        return self.client.get_json(f"{self.root}/search/photos", params)

    def page_items(self, data: dict) -> list[dict]:
        return data.get("results") or []

    def next_page(self, data: dict, page: int, *, count: int, limit: int) -> int | None:
        last = count < PAGE_SIZE or page >= int(data.get("total_pages") or 0)
        return None if last else page + 1

    def on_downloaded(self, candidate: Candidate) -> None:
        if not candidate.track_url:
            return
        if not same_host(candidate.track_url, self.root):
            log.warning(
                "unsplash: download_location is not on %s; not sending the key there", self.root
            )
            return
        try:
            self.client.get(candidate.track_url)
            self.tracked += 1
        except SourceError as exc:  # tracking must not stop the collect
            log.warning("%s", exc)

    def item_candidate(self, photo: dict, query: str) -> Candidate | None:
        urls = photo.get("urls") or {}
        image_url = urls.get("full") or urls.get("regular") or ""
        if not image_url:
            return None
        links = photo.get("links") or {}
        user = photo.get("user") or {}
        return self.licensed_candidate(
            query,
            image_url=image_url,
            page_url=links.get("html", ""),
            creator=user.get("name") or user.get("username") or "",
            width=photo.get("width"),
            height=photo.get("height"),
            track_url=links.get("download_location", ""),
        )
