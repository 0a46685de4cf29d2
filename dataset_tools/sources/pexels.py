"""Pexels: photos under the Pexels License; needs PEXELS_API_KEY in the environment.

API facts used (pexels.com/api/documentation, help.pexels.com):
- GET {root}/v1/search?query=TERM&page=P&per_page=S (S at most 80) with header
  "Authorization: KEY" returns {"page", "per_page", "total_results", "next_page",
  "photos": [...]}; each photo has "width", "height", "url" (its page), "photographer",
  "photographer_url", "alt", "src" {"original", "large2x", "large", ...}.
  next_page is absent on the last page.
- 200 requests an hour and 20,000 a month; X-Ratelimit-Remaining says what is left and we
  stop at 0. Guidelines: credit "Photo by NAME on Pexels" with a link to the photo page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lyriscope.dataset_tools.sources.base import (
    ApiClient,
    Candidate,
    Source,
    SourceError,
    env_key,
    source_url,
)

DEFAULT_ROOT = "https://api.pexels.com"
URL_ENV = "LYRISCOPE_PEXELS_URL"
KEY_ENV = "PEXELS_API_KEY"
PAGE_SIZE = 80  # per_page maximum
MIN_INTERVAL_S = 1.0
LICENSE = "Pexels License"
LICENSE_URL = "https://www.pexels.com/license/"


class PexelsSource(Source):
    """Search Pexels photos."""

    name = "pexels"

    def __init__(self, *, min_interval_s: float = MIN_INTERVAL_S, max_wait_s: float = 60.0,
                 cache_dir: Path | None = None) -> None:
        key = env_key(KEY_ENV)
        if key is None:
            raise SourceError(f"{self.name}: set the environment variable {KEY_ENV} to your "
                              f"Pexels API key (pexels.com/api)")
        self.root = source_url(URL_ENV, DEFAULT_ROOT)
        self.client = ApiClient(name=self.name, min_interval_s=min_interval_s,
                                max_wait_s=max_wait_s, headers={"Authorization": key},
                                secrets=(key,), cache_dir=cache_dir)

    def search(self, query: str, *, limit: int) -> Iterator[Candidate]:
        found, page = 0, 1
        while True:
            data = self.client.get_json(f"{self.root}/v1/search",
                                        {"query": query, "page": page, "per_page": PAGE_SIZE})
            photos = data.get("photos") or []
            for photo in photos:
                src = photo.get("src") or {}
                image_url = src.get("large2x") or src.get("original") or ""
                if not image_url:
                    continue
                creator = photo.get("photographer") or ""
                yield Candidate(
                    source=self.name, query=query, image_url=image_url,
                    page_url=photo.get("url", ""), creator=creator, license=LICENSE,
                    license_url=LICENSE_URL,
                    attribution=f"Photo by {creator or 'unknown'} on Pexels",
                    width=photo.get("width"), height=photo.get("height"),
                )
                found += 1
                if found >= limit:
                    return
            if not data.get("next_page") or not photos:
                return
            page += 1
