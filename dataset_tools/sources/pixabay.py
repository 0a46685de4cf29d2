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
from pathlib import Path

from lyriscope.dataset_tools.sources.base import (
    ApiClient,
    Candidate,
    Source,
    SourceError,
    env_key,
    source_url,
)

DEFAULT_ROOT = "https://pixabay.com"
URL_ENV = "LYRISCOPE_PIXABAY_URL"
KEY_ENV = "PIXABAY_API_KEY"
PAGE_SIZE = 200  # per_page maximum
MAX_QUERY_CHARS = 100
MIN_INTERVAL_S = 0.6  # 100 requests per 60 s
LICENSE = "Pixabay Content License"
LICENSE_URL = "https://pixabay.com/service/license-summary/"


class PixabaySource(Source):
    """Search Pixabay photos (downloaded, never hotlinked)."""

    name = "pixabay"

    def __init__(self, *, min_interval_s: float = MIN_INTERVAL_S, max_wait_s: float = 60.0,
                 cache_dir: Path | None = None) -> None:
        key = env_key(KEY_ENV)
        if key is None:
            raise SourceError(f"{self.name}: set the environment variable {KEY_ENV} to your "
                              f"Pixabay API key (pixabay.com/api/docs)")
        self._key = key
        self.root = source_url(URL_ENV, DEFAULT_ROOT)
        self.client = ApiClient(name=self.name, min_interval_s=min_interval_s,
                                max_wait_s=max_wait_s, secrets=(key,), cache_dir=cache_dir,
                                cache_ignore=("key",))

    def search(self, query: str, *, limit: int) -> Iterator[Candidate]:
        found, page = 0, 1
        per_page = max(3, min(PAGE_SIZE, limit))
        while True:
            data = self.client.get_json(f"{self.root}/api/", {
                "key": self._key, "q": query[:MAX_QUERY_CHARS], "image_type": "photo",
                "page": page, "per_page": per_page,
            })
            hits = data.get("hits") or []
            for hit in hits:
                image_url = hit.get("largeImageURL") or hit.get("webformatURL") or ""
                if not image_url:
                    continue
                creator = hit.get("user") or ""
                yield Candidate(
                    source=self.name, query=query, image_url=image_url,
                    page_url=hit.get("pageURL", ""), creator=creator, license=LICENSE,
                    license_url=LICENSE_URL,
                    attribution=f"Image by {creator or 'unknown'} from Pixabay",
                    width=hit.get("imageWidth"), height=hit.get("imageHeight"),
                )
                found += 1
                if found >= limit:
                    return
            if len(hits) < per_page or page * per_page >= int(data.get("totalHits") or 0):
                return
            page += 1
