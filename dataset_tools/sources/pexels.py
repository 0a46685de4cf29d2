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

from typing import Any

from lyriscope.dataset_tools.sources.base import Candidate, WebSource

PAGE_SIZE = 80  # per_page maximum


class PexelsSource(WebSource):
    """Search Pexels photos."""

    name = "pexels"
    url_env = "LYRISCOPE_PEXELS_URL"
    default_root = "https://api.pexels.com"
    key_env = "PEXELS_API_KEY"
    key_help = "Pexels API key (pexels.com/api)"
    default_interval_s = 1.0
    license = "Pexels License"
    license_url = "https://www.pexels.com/license/"
    credit = "Photo by {creator} on Pexels"

    def client_options(self, key: str | None) -> dict[str, Any]:
        return {"headers": {"Authorization": key}}

    def fetch_page(self, query: str, page: int, *, limit: int) -> dict:
        params = {"query": query, "page": page, "per_page": PAGE_SIZE}
        return self.client.get_json(f"{self.root}/v1/search", params)

    def page_items(self, data: dict) -> list[dict]:
        return data.get("photos") or []

    def next_page(self, data: dict, page: int, *, count: int, limit: int) -> int | None:
        return page + 1 if data.get("next_page") else None

    def item_candidate(self, photo: dict, query: str) -> Candidate | None:
        src = photo.get("src") or {}
        image_url = src.get("large2x") or src.get("original") or ""
        if not image_url:
            return None
        return self.licensed_candidate(
            query,
            image_url=image_url,
            page_url=photo.get("url", ""),
            creator=photo.get("photographer") or "",
            width=photo.get("width"),
            height=photo.get("height"),
        )
