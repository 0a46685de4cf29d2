"""Contact sheets: images of one size tiled in rows, as training's sample grids and `lyriscope sample --grid`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def contact_sheet(images: Sequence[np.ndarray], *, columns: int | None = None) -> np.ndarray:
    """uint8 images [H, W, C] of one size tiled row by row -> uint8 [rows * H, columns * W, C].

    columns None: a near-square sheet (ceil(sqrt(N)) columns). A last row that is not full
    stays black.
    """
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"the images differ in shape ({sorted(shapes)}); a sheet needs one size")
    columns = columns or math.ceil(math.sqrt(len(images)))
    height, width, channels = images[0].shape
    rows = math.ceil(len(images) / columns)
    sheet = np.zeros([rows * height, columns * width, channels], dtype=np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        sheet[row * height : (row + 1) * height, col * width : (col + 1) * width] = image
    return sheet
