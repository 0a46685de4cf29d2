"""Contact sheets: a cluster's images as thumbnails in a grid under a title line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lyriscope import atomic


@dataclass(frozen=True)
class SheetLayout:
    thumb: int = 128  # thumbnail side in pixels (images are centre-cropped square)
    columns: int = 8  # most thumbnails per row
    max_images: int = 48  # thumbnails shown at most; the title gives the full count
    pad: int = 4  # pixels between and around thumbnails
    title_height: int = 28  # pixels of the title band on top


def sheet_size(count: int, layout: SheetLayout = SheetLayout()) -> tuple[int, int]:
    """(width, height) in pixels of the sheet of `count` images."""
    shown = max(1, min(count, layout.max_images))
    columns = min(shown, layout.columns)
    rows = math.ceil(shown / columns)
    return (
        columns * layout.thumb + (columns + 1) * layout.pad,
        layout.title_height + rows * layout.thumb + (rows + 1) * layout.pad,
    )


def square_thumbnail(img: Image.Image, side: int) -> Image.Image:
    """Centre-cropped square RGB thumbnail of `side` pixels."""
    img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return img.resize((side, side), Image.Resampling.LANCZOS, box=box, reducing_gap=2.0)


def contact_sheet(
    images: Sequence[Image.Image], *, title: str, layout: SheetLayout = SheetLayout()
) -> Image.Image:
    """A grid of the first `layout.max_images` images under `title`, as one RGB image."""
    width, height = sheet_size(len(images), layout)
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, layout.title_height - 10))
    draw.text(
        (layout.pad + 2, layout.title_height // 2),
        title,
        fill=(235, 235, 235),
        font=font,
        anchor="lm",
    )
    columns = min(max(1, min(len(images), layout.max_images)), layout.columns)
    for i, img in enumerate(images[: layout.max_images]):
        row, col = divmod(i, columns)
        x = layout.pad + col * (layout.thumb + layout.pad)
        y = layout.title_height + layout.pad + row * (layout.thumb + layout.pad)
        sheet.paste(square_thumbnail(img, layout.thumb), (x, y))
    return sheet


def write_contact_sheet(
    path: str | Path,
    images: Sequence[Image.Image],
    *,
    title: str,
    layout: SheetLayout = SheetLayout(),
) -> Path:
    """Render a contact sheet and write it as PNG atomically; returns the path."""
    sheet = contact_sheet(images, title=title, layout=layout)
    with atomic.atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=False)
    return Path(path)
