"""The HUD panel: the renderer's text face drawn on a translucent backing sized to the rows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lyriscope.engine.gl.renderer import text_font
from lyriscope.engine.show.hud import PANEL_ALPHA, hud_panel

ROWS = ["0:12.50  playing", "line 2/5 (song) 'ray of light'", "error: grade.frag.glsl breaks"]


@pytest.mark.parametrize("size", [96, 512])
def test_panel_fits_the_rows_in_the_renderer_font(size: int) -> None:
    panel = hud_panel(ROWS, size)
    h, w, channels = panel.shape
    assert channels == 4 and panel.dtype == np.uint8
    assert w <= size and h <= size
    # Independent measure of the widest row with the same public face and pixel size.
    font = text_font(max(9, size // 42))
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    widest = max(probe.textlength(row, font=font) for row in ROWS)
    assert w == min(size, int(widest) + 2 * max(3, font.size // 2))
    assert panel[0, 0, 3] == round(255 * PANEL_ALPHA)  # the backing, not text, in the corner
    opaque = panel[..., 3] == 255
    assert opaque.any()  # the text itself is drawn opaque
    rows_with_text = np.flatnonzero(opaque.any(axis=1))
    last_third = panel[rows_with_text[-1] - 2 : rows_with_text[-1] + 1]
    text_pixels = last_third[last_third[..., 3] == 255]
    assert (text_pixels[:, 0] > text_pixels[:, 2]).any()  # the error row is drawn in red


def test_more_rows_make_a_taller_panel() -> None:
    assert hud_panel(ROWS + ["osc: 9000"], 256).shape[0] > hud_panel(ROWS, 256).shape[0]


def test_text_font_is_cached_per_pixel_size() -> None:
    assert text_font(20) is text_font(20)
    assert text_font(20).size == 20 and text_font(12).size == 12
