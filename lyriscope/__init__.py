"""lyriscope: GAN lyric videos, one StyleGAN2 per lyric line, walked in time with the song.

The notebook API: `load_set(path)`, `render(set, out=...)`, `Walk`, `Generator`. The engine
parts load on first use, so `import lyriscope` stays light.
"""

from __future__ import annotations

from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet, load_set

__version__ = "0.1.0"

# Public names served from the engine on first access (PEP 562), never at import time.
_LAZY = {
    "render": "lyriscope.engine.offline.render",
    "Walk": "lyriscope.engine.synth.walk",
    "Generator": "lyriscope.engine.synth.runtime",
}

__all__ = ["LyriscopeError", "SongSet", "load_set", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lyriscope' has no attribute {name!r}")
