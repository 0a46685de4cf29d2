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

from collections.abc import Iterator
from typing import Any

from lyriscope.dataset_tools.sources.base import Candidate, WebSource

PAGE_SIZE = 200  # per_page maximum
MAX_QUERY_CHARS = 100


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

    def candidates(self, query: str, *, limit: int) -> Iterator[Candidate]:
        page = 1
        per_page = max(3, min(PAGE_SIZE, limit))
        while True:
            data = self.client.get_json(
                f"{self.root}/api/",
                {
                    "key": self._key,
                    "q": query[:MAX_QUERY_CHARS],
                    "image_type": "photo",
                    "page": page,
                    "per_page": per_page,
                },
            )
            hits = data.get("hits") or []
            for hit in hits:
                image_url = hit.get("largeImageURL") or hit.get("webformatURL") or ""
                if not image_url:
                    continue
                yield self.licensed_candidate(
                    query,
                    image_url=image_url,
                    page_url=hit.get("pageURL", ""),
                    creator=hit.get("user") or "",
                    width=hit.get("imageWidth"),
                    height=hit.get("imageHeight"),
                )
            if len(hits) < per_page or page * per_page >= int(data.get("totalHits") or 0):
                return
            page += 1
