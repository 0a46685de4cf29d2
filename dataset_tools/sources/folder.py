"""A local folder of images the user already has: every file in it is offered once per line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lyriscope.dataset_tools.sources.base import Candidate, Source, SourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")


class FolderSource(Source):
    """Offer the image files of `folder` (not recursive, sorted by name); credit is left blank."""

    uses_queries = False

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise SourceError(
                f"folder:{folder}: no such folder; give an existing folder of "
                f"images, e.g. --sources folder:~/Pictures/rays"
            )
        self.name = "folder"

    def search(self, query: str, *, limit: int) -> Iterator[Candidate]:
        files = sorted(
            p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        for path in files[:limit]:
            yield Candidate(
                source=self.name,
                query=query,
                image_url=path.as_uri(),
                attribution=f"Local file {path.name}",
                local_path=path,
            )
