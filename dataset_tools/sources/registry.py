"""Source names on the command line -> Source objects (`openverse`, `folder:DIR`, `urls:FILE`)."""

from __future__ import annotations

import os
from pathlib import Path

from lyriscope.dataset_tools.sources.base import Source, SourceError

KEYLESS: tuple[str, ...] = ("openverse", "wikimedia")
KEYED: dict[str, str] = {  # source -> environment variable holding its key
    "unsplash": "UNSPLASH_ACCESS_KEY",
    "pexels": "PEXELS_API_KEY",
    "pixabay": "PIXABAY_API_KEY",
}
WEB_SOURCES: tuple[str, ...] = KEYLESS + tuple(KEYED)


def default_source_names() -> list[str]:
    """The keyless web sources plus every keyed one whose key is set in the environment."""
    return list(KEYLESS) + [name for name, var in KEYED.items() if os.environ.get(var, "").strip()]


def make_source(
    spec: str,
    *,
    cache_dir: Path | None = None,
    min_interval_s: float | None = None,
    max_wait_s: float = 60.0,
) -> Source:
    """Build a source from its name, or `folder:DIR` / `urls:FILE`.

    min_interval_s: pause between API requests; None keeps each API's published pace.
    """
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "folder" and arg:
        from lyriscope.dataset_tools.sources.folder import FolderSource

        return FolderSource(arg)
    if kind == "urls" and arg:
        from lyriscope.dataset_tools.sources.urls import UrlListSource

        return UrlListSource(arg)
    if kind not in WEB_SOURCES or arg:
        raise SourceError(
            f"unknown source {spec!r}; expected one of {', '.join(WEB_SOURCES)}, "
            f"folder:DIR or urls:FILE"
        )
    options = {"cache_dir": cache_dir, "max_wait_s": max_wait_s, "min_interval_s": min_interval_s}
    if kind == "openverse":
        from lyriscope.dataset_tools.sources.openverse import OpenverseSource

        return OpenverseSource(**options)
    if kind == "wikimedia":
        from lyriscope.dataset_tools.sources.wikimedia import WikimediaSource

        return WikimediaSource(**options)
    if kind == "unsplash":
        from lyriscope.dataset_tools.sources.unsplash import UnsplashSource

        return UnsplashSource(**options)
    if kind == "pexels":
        from lyriscope.dataset_tools.sources.pexels import PexelsSource

        return PexelsSource(**options)
    from lyriscope.dataset_tools.sources.pixabay import PixabaySource

    return PixabaySource(**options)
