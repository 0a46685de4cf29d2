"""Pixabay: images under the Pixabay Content License; needs PIXABAY_API_KEY in the environment.

API facts used (pixabay.com/api/docs):
- GET {root}/api/?key=KEY&q=TERM&image_type=photo&page=P&per_page=S (S in 3..200; q at
  most 100 characters) returns {"total", "totalHits", "hits": [...]}; each hit has
  "pageURL", "largeImageURL" (1280 px), "webformatURL", "imageWidth", "imageHeight",
  "user", "user_id". At most totalHits (500) results are reachable.
- 100 requests per 60 seconds per key (X-RateLimit-Limit/Remaining/Reset headers); responses
  must be cached for 24 hours: we keep them under images/.cache/ (without the key).
- No hotlinking: images are downloaded to disk, never served from Pixabay's URLs.
The key travels in the query string, so it never appears in messages or cache keys.
"""

from __future__ import annotations

from typing import Any

from lyriscope.dataset_tools.sources.base import Candidate, WebSource

PAGE_SIZE = 200  # per_page maximum
MAX_QUERY_CHARS = 100


def per_page(limit: int) -> int:
    """Results per page: no more than asked for, within the API's 3..200."""
    return max(3, min(PAGE_SIZE, limit))


class PixabaySource(WebSource):
    """Search Pixabay photos (downloaded, never hotlinked)."""

    name = "pixabay"
    url_env = "LYRISCOPE_PIXABAY_URL"
    default_root = "https://pixabay.com"
    key_env = "PIXABAY_API_KEY"
    key_help = "Pixabay API key (pixabay.com/api/docs)"
    default_interval_s = 0.6  # 100 requests per 60 s
    license = "Pixabay Content License"
    license_url = "https://pixabay.com/service/license-summary/"
    credit = "Image by {creator} from Pixabay"

    def client_options(self, key: str | None) -> dict[str, Any]:
        return {"cache_ignore": ("key",)}  # the key travels in the query, never in cache names

    def fetch_page(self, query: str, page: int, *, limit: int) -> dict:
        params = {
            "key": self._key,
            "q": query[:MAX_QUERY_CHARS],
            "image_type": "photo",
            "page": page,
            "per_page": per_page(limit),
        }
        return self.client.get_json(f"{self.root}/api/", params)

    def page_items(self, data: dict) -> list[dict]:
        return data.get("hits") or []

    def next_page(self, data: dict, page: int, *, count: int, limit: int) -> int | None:
        size = per_page(limit)
        last = count < size or page * size >= int(data.get("totalHits") or 0)
        return None if last else page + 1

    def item_candidate(self, hit: dict, query: str) -> Candidate | None:
        image_url = hit.get("largeImageURL") or hit.get("webformatURL") or ""
        if not image_url:
            return None
        return self.licensed_candidate(
            query,
            image_url=image_url,
            page_url=hit.get("pageURL", ""),
            creator=hit.get("user") or "",
            width=hit.get("imageWidth"),
            height=hit.get("imageHeight"),
        )
