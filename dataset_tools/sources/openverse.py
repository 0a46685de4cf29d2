"""Openverse: openly licensed images from many collections, no key needed.

API facts used (api.openverse.org, docs.openverse.org):
- GET {root}/v1/images/?q=TERM&page=P&page_size=S returns JSON
  {"result_count", "page_count", "page_size", "page", "results": [...]}; each result has
  "url" (the image file), "foreign_landing_url" (its page at the provider), "creator",
  "license" (e.g. "by-sa", "cc0", "pdm"), "license_version", "license_url", "attribution"
  (ready-made credit text), "title", "width", "height".
- Anonymous clients: page_size at most 20 (more answers 401), at most 20 pages deep per
  search, throttled at about 20 requests a minute and 200 a day; rate-limit state comes back
  in X-RateLimit-* headers. We wait 3 s between requests and stop when Remaining reaches 0.
"""

from __future__ import annotations

from lyriscope.dataset_tools.sources.base import Candidate, WebSource

PAGE_SIZE = 20  # anonymous maximum
MAX_PAGES = 20  # the API's search depth


def license_name(code: str, version: str) -> str:
    """A readable licence name from Openverse's code and version ("by-sa", "4.0" -> "CC BY-SA 4.0")."""
    code = (code or "").lower()
    if code == "cc0":
        return "CC0 1.0"
    if code == "pdm":
        return "Public Domain Mark 1.0"
    if not code:
        return ""
    return f"CC {code.upper()} {version}".strip()


class OpenverseSource(WebSource):
    """Search Openverse's image index (keyless)."""

    name = "openverse"
    url_env = "LYRISCOPE_OPENVERSE_URL"
    default_root = "https://api.openverse.org"
    default_interval_s = 3.0  # 20 requests per minute

    def fetch_page(self, query: str, page: int, *, limit: int) -> dict:
        params = {"q": query, "page": page, "page_size": PAGE_SIZE}
        return self.client.get_json(f"{self.root}/v1/images/", params)

    def page_items(self, data: dict) -> list[dict]:
        return data.get("results") or []

    def next_page(self, data: dict, page: int, *, count: int, limit: int) -> int | None:
        last = count < PAGE_SIZE or page >= int(data.get("page_count") or MAX_PAGES)
        return None if last or page >= MAX_PAGES else page + 1

    def item_candidate(self, item: dict, query: str) -> Candidate | None:
        if not item.get("url"):
            return None
        license_ = license_name(item.get("license", ""), item.get("license_version", ""))
        creator = item.get("creator") or ""
        attribution = item.get("attribution") or _credit(item.get("title") or "", creator, license_)
        return Candidate(
            source=self.name,
            query=query,
            image_url=item["url"],
            page_url=item.get("foreign_landing_url") or "",
            creator=creator,
            license=license_,
            license_url=item.get("license_url") or "",
            attribution=attribution,
            width=item.get("width"),
            height=item.get("height"),
        )


def _credit(title: str, creator: str, license_: str) -> str:
    who = f" by {creator}" if creator else ""
    what = f'"{title}"' if title else "This image"
    return f"{what}{who} is licensed under {license_}." if license_ else f"{what}{who}."
