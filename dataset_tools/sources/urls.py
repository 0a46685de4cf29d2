"""A text file of image URLs: one http(s) URL per line; blank lines and # comments are skipped.

A line may add credit after a tab: URL<TAB>page URL<TAB>creator<TAB>licence<TAB>licence URL
(trailing fields may be left out).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lyriscope.dataset_tools.sources.base import Candidate, Source, SourceError


class UrlListSource(Source):
    """Offer the URLs listed in a text file, in file order."""

    uses_queries = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise SourceError(
                f"urls:{path}: no such file; give a text file with one image "
                f"URL per line, e.g. --sources urls:images.txt"
            )
        self.name = "urls"

    def search(self, query: str, *, limit: int) -> Iterator[Candidate]:
        found = 0
        for text in self.path.read_text(encoding="utf-8").splitlines():
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            fields = [f.strip() for f in text.split("\t")] + [""] * 4
            url, page_url, creator, license_, license_url = fields[:5]
            credit = f"Image by {creator}" if creator else f"Image from {url}"
            yield Candidate(
                source=self.name,
                query=query,
                image_url=url,
                page_url=page_url,
                creator=creator,
                license=license_,
                license_url=license_url,
                attribution=credit + (f", {license_}" if license_ else ""),
            )
            found += 1
            if found >= limit:
                return
