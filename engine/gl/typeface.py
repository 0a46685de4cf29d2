"""The one text face of lyriscope's pictures: the bundled DejaVu Sans Bold, or a font file.

The lyric (engine.gl.lyric) and the live HUD (engine.show.hud) draw with it, so both look
the same on every machine: the font ships with the package (engine/gl/fonts/, with its
licence) instead of being looked up among the system's fonts.

Example:
    >>> face = font(24)  # PIL FreeTypeFont, 24 px, the bundled face
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

BUNDLED_FONT = Path(__file__).resolve().parent / "fonts" / "DejaVuSans-Bold.ttf"
MIN_PIXELS = 4  # FreeType draws nothing legible below this


@lru_cache(maxsize=16)
def font(pixels: int, path: Path | None = None) -> ImageFont.FreeTypeFont:
    """The face at `pixels` pixels (cached): the file at `path`, None: the bundled one."""
    return ImageFont.truetype(str(path or BUNDLED_FONT), max(MIN_PIXELS, int(pixels)))


__all__ = ["BUNDLED_FONT", "font"]
