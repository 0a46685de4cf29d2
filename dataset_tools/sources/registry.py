"""Source names on the command line -> Source objects (`openverse`, `folder:DIR`, `urls:FILE`)."""

from __future__ import annotations

import os
from pathlib import Path

from lyriscope.dataset_tools.sources.base import Source, SourceError, WebSource
from lyriscope.dataset_tools.sources.folder import FolderSource
from lyriscope.dataset_tools.sources.openverse import OpenverseSource
from lyriscope.dataset_tools.sources.pexels import PexelsSource
from lyriscope.dataset_tools.sources.pixabay import PixabaySource
from lyriscope.dataset_tools.sources.unsplash import UnsplashSource
from lyriscope.dataset_tools.sources.urls import UrlListSource
from lyriscope.dataset_tools.sources.wikimedia import WikimediaSource

# The web APIs by name, keyless ones first (the default order of a collect).
WEB_SOURCE_CLASSES: dict[str, type[WebSource]] = {
    cls.name: cls
    for cls in (OpenverseSource, WikimediaSource, UnsplashSource, PexelsSource, PixabaySource)
}
KEYLESS: tuple[str, ...] = tuple(n for n, cls in WEB_SOURCE_CLASSES.items() if not cls.key_env)
KEYED: dict[str, str] = {  # source -> environment variable holding its key
    n: cls.key_env for n, cls in WEB_SOURCE_CLASSES.items() if cls.key_env
}
WEB_SOURCES: tuple[str, ...] = tuple(WEB_SOURCE_CLASSES)


def configured_roots() -> list[str]:
    """The API roots the user pointed elsewhere with LYRISCOPE_<SOURCE>_URL (mirrors, tests)."""
    return [
        os.environ[cls.url_env]
        for cls in WEB_SOURCE_CLASSES.values()
        if os.environ.get(cls.url_env)
    ]


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
        return FolderSource(arg)
    if kind == "urls" and arg:
        return UrlListSource(arg)
    if kind not in WEB_SOURCES or arg:
        raise SourceError(
            f"unknown source {spec!r}; expected one of {', '.join(WEB_SOURCES)}, "
            f"folder:DIR or urls:FILE"
        )
    options = {"cache_dir": cache_dir, "max_wait_s": max_wait_s, "min_interval_s": min_interval_s}
    return WEB_SOURCE_CLASSES[kind](**options)
