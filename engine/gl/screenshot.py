"""A renderer's last frame as a PNG: the live show's --screenshot, post chain and HUD included."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from lyriscope.atomic import atomic_path
from lyriscope.engine.gl.renderer import Renderer


def save_screenshot(renderer: Renderer, path: str | Path) -> Path:
    """The last rendered frame as a PNG, written atomically (folders made as needed)."""
    path = Path(path)
    pixels = renderer.read()  # uint8 [size, size, 3], top row first
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return path


__all__ = ["save_screenshot"]
