"""The HUD panel: the bundled text face drawn on a translucent backing sized to the rows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lyriscope.engine.gl.typeface import BUNDLED_FONT, font
from lyriscope.engine.show.hud import PANEL_ALPHA, hud_margin, hud_panel

ROWS = ["0:12.50  playing", "line 2/5 (song) 'ray of light'", "error: grade.frag.glsl breaks"]


BACKING = round(255 * PANEL_ALPHA)
# What the HUD shows on a bad day: a long set path in the error, MIDI and OSC status rows.
LONG_ROWS = [
    "0:12.50  playing  [freeze]  [blackout]",
    "line 2/5 (song) 'I am the first ray of light over a calm horizon'",
    " 59.9 fps  frame   3.1 ms  synth  12.4 ms",
    "midi: nanoKONTROL Studio:nanoKONTROL Studio _ CTRL 20:0 (channel 1, 6 cc, 9 notes)",
    "error: set.toml: [post] text_color: expected a colour as #rrggbb, got 'reddish-orange'",
]


def assert_error_row_is_red(panel: np.ndarray) -> None:
    opaque = panel[..., 3] == 255
    assert opaque.any()  # the text itself is drawn opaque
    rows_with_text = np.flatnonzero(opaque.any(axis=1))
    last_third = panel[rows_with_text[-1] - 2 : rows_with_text[-1] + 1]
    text_pixels = last_third[last_third[..., 3] == 255]
    assert (text_pixels[:, 0] > text_pixels[:, 2]).any()  # the error row is drawn in red


def test_panel_fits_the_rows_in_the_bundled_font() -> None:
    size = 512
    panel = hud_panel(ROWS, size)
    h, w, channels = panel.shape
    assert channels == 4 and panel.dtype == np.uint8
    assert w <= size and h <= size
    # Independent measure of the widest row with the same public face and pixel size.
    face = font(max(9, size // 42))
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    widest = max(probe.textlength(row, font=face) for row in ROWS)
    assert w == min(size, int(widest) + 2 * max(3, face.size // 2))
    assert h == int(face.size * 1.3) * len(ROWS) + 2 * max(3, face.size // 2)  # no row wrapped
    assert panel[0, 0, 3] == BACKING  # the backing, not text, in the corner
    assert_error_row_is_red(panel)


@pytest.mark.parametrize("size", [96, 256])
def test_on_a_small_window_rows_wrap_and_no_glyph_is_cut(size: int) -> None:
    panel = hud_panel(LONG_ROWS, size)
    h, w = panel.shape[:2]
    margin = hud_margin(size)
    # The overlay puts the panel `margin` from the top left: it ends inside the window.
    assert margin + w <= size - margin and margin + h <= size - margin
    # The panel's edges are backing only: every glyph is whole, none is cut by the panel.
    for edge in (panel[:, -1], panel[:, 0], panel[0], panel[-1]):
        assert (edge[:, 3] == BACKING).all()
    face = font(max(9, size // 42))
    step = int(face.size * 1.3)
    if size >= 256:  # room for every row once wrapped (at 96 px the last rows are left out)
        assert h > step * len(LONG_ROWS) + 2 * max(3, face.size // 2)  # wrapped, not clipped
        assert_error_row_is_red(panel)


def test_more_rows_make_a_taller_panel() -> None:
    assert hud_panel(ROWS + ["osc: 9000"], 256).shape[0] > hud_panel(ROWS, 256).shape[0]


def test_the_bundled_font_is_cached_per_pixel_size() -> None:
    assert font(20) is font(20)
    assert font(20).size == 20 and font(12).size == 12
    assert font(20).path == str(BUNDLED_FONT) and BUNDLED_FONT.is_file()
