"""Procedural pictures for the demo set's four lyric lines, one kind of picture per line.

Line 1 "I'm the first ray of light": light beams fanning out of a bright source.
Line 2 "Over a calm horizon": skies over a sea or hills, with a sun or moon disc.
Line 3 "Seeds become circles": concentric rings, sunflower seed spirals, packed circles.
Line 4 "And the fire flows on": flame fields of domain-warped noise flowing upward.

Every picture is a function of (seed, line, index) alone, so the same call gives the same
pixels on every machine and any one picture can be made without the others.

    python scripts/demo_images.py --out sets/demo/generated --count 256 --size 256
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

LINE_KINDS: tuple[str, ...] = ("rays", "horizon", "circles", "fire")  # index = line (0-based)
GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))  # radians, ~137.5 degrees

Rng = np.random.Generator


# ---------------------------------------------------------------------------------------------
# Shared helpers: coordinates, noise, colour.


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates x, y in [0, 1], each [size, size]; y grows downwards."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(c, c, indexing="xy")


def lattice(rng: Rng, cells: int) -> np.ndarray:
    """A random value lattice [cells, cells] in [0, 1) that tiles (noise wraps around)."""
    return rng.random((cells, cells), dtype=np.float32)


def lattice_noise(table: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth value noise of `table` [n, n] (n a power of two) at lattice coordinates x, y (wrapping)."""
    n = table.shape[0]
    flat = table.ravel()
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = x - x0
    fy = y - y0
    fx = fx * fx * (3 - 2 * fx)  # smoothstep: no creases at cell edges
    fy = fy * fy * (3 - 2 * fy)
    ix = x0.astype(np.int32) & (n - 1)  # wrap; a bit mask is much cheaper than %
    iy = (y0.astype(np.int32) & (n - 1)) * n
    jx = (ix + 1) & (n - 1)
    jy = (iy + n) & (n * n - 1)
    top = flat.take(iy + ix) * (1 - fx) + flat.take(iy + jx) * fx
    bottom = flat.take(jy + ix) * (1 - fx) + flat.take(jy + jx) * fx
    return top * (1 - fy) + bottom * fy


def fbm(
    rng: Rng, x: np.ndarray, y: np.ndarray, *, octaves: int = 5, cells: int = 64, gain: float = 0.5
) -> np.ndarray:
    """Fractal value noise at coordinates x, y (lattice units of the first octave), about [0, 1]."""
    total = np.zeros_like(x)
    amplitude, frequency, norm = 1.0, 1.0, 0.0
    for _ in range(octaves):
        table = lattice(rng, cells)
        shift = rng.random(2, dtype=np.float32) * cells  # octaves do not line up at the origin
        total += amplitude * lattice_noise(
            table, x * frequency + shift[0], y * frequency + shift[1]
        )
        norm += amplitude
        amplitude *= gain
        frequency *= 2.0
    return total / norm


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear blend of colours a and b by t ([..., 1] or scalar) in [0, 1]."""
    return a + (b - a) * t


def ramp(t: np.ndarray, stops: list[tuple[float, tuple[float, float, float]]]) -> np.ndarray:
    """Colour ramp: t [H, W] in [0, 1] -> RGB [H, W, 3] through (position, colour) stops."""
    positions = np.array([p for p, _ in stops], dtype=np.float32)
    colours = np.array([c for _, c in stops], dtype=np.float32)  # [S, 3]
    flat = np.clip(t, 0, 1).ravel()
    rgb = np.stack([np.interp(flat, positions, colours[:, k]) for k in range(3)], axis=-1)
    return rgb.reshape(*t.shape, 3).astype(np.float32)


def jitter_colour(rng: Rng, rgb: tuple[float, float, float], amount: float) -> np.ndarray:
    """`rgb` moved by up to `amount` per channel, kept in [0, 1]."""
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 1)


def to_uint8(rgb: np.ndarray, rng: Rng) -> np.ndarray:
    """Float RGB [H, W, 3] in [0, 1] -> uint8, with a little dither so gradients do not band."""
    dither = rng.uniform(-0.5, 0.5, rgb.shape).astype(np.float32) / 255.0
    return (np.clip(rgb + dither, 0, 1) * 255 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Line 1: rays of light.

RAY_SKIES: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.05, 0.04, 0.12), (0.45, 0.22, 0.10)),  # night blue to ember
    ((0.10, 0.05, 0.02), (0.55, 0.35, 0.12)),  # umber to amber
    ((0.12, 0.06, 0.16), (0.62, 0.30, 0.22)),  # plum to rose
    ((0.02, 0.06, 0.10), (0.30, 0.28, 0.20)),  # deep teal to khaki haze
    ((0.18, 0.10, 0.04), (0.70, 0.48, 0.20)),  # brown to gold
)
RAY_LIGHTS: tuple[tuple[float, float, float], ...] = (
    (1.00, 0.86, 0.55),
    (1.00, 0.75, 0.40),
    (1.00, 0.95, 0.80),
    (1.00, 0.68, 0.45),
)


def rays(rng: Rng, size: int) -> np.ndarray:
    """Light beams fanning out of a source (often just off the frame), in warm colours."""
    x, y = grid(size)
    dark, haze = RAY_SKIES[rng.integers(len(RAY_SKIES))]
    dark = jitter_colour(rng, dark, 0.04)
    haze = jitter_colour(rng, haze, 0.08)
    light = jitter_colour(rng, RAY_LIGHTS[rng.integers(len(RAY_LIGHTS))], 0.05)
    # Source in the top half or just outside the frame; the fan points into the frame.
    sx = rng.uniform(-0.2, 1.2)
    sy = rng.uniform(-0.35, 0.45)
    main = np.arctan2(0.5 - sy, 0.5 - sx)  # towards the centre of the frame
    spread = rng.uniform(0.5, 1.6)  # radians covered by the fan
    count = int(rng.integers(5, 28))
    dx, dy = x - sx, y - sy
    angle = np.arctan2(dy, dx)
    dist = np.sqrt(dx * dx + dy * dy)
    beams = np.zeros_like(x)
    for _ in range(count):
        a = main + rng.uniform(-spread, spread) / 2
        width = rng.uniform(0.006, 0.05)  # radians (Gaussian sigma)
        strength = rng.uniform(0.3, 1.0)
        diff = (angle - a + np.pi) % (2 * np.pi) - np.pi  # wrapped to [-pi, pi)
        beams += strength * np.exp(-0.5 * (diff / width) ** 2)
    # Light fades with distance and passes through drifting dust (elongated noise).
    reach = rng.uniform(0.6, 1.6)
    beams *= np.exp(-dist / reach)
    dust = fbm(rng, angle * 6.0, dist * 3.0, octaves=4, cells=32)
    beams *= 0.55 + 0.9 * dust
    glow = np.exp(-dist / rng.uniform(0.06, 0.2)) * rng.uniform(1.0, 2.5)
    height = np.clip(y * rng.uniform(0.8, 1.3), 0, 1)[..., None]
    sky = mix(dark, haze, 1.0 - height)  # the sky lightens towards the light's side
    energy = (beams * rng.uniform(0.35, 0.7) + glow)[..., None]
    rgb = sky + light * (1.0 - np.exp(-energy))  # soft tone map keeps highlights white-gold
    return to_uint8(rgb, rng)


# ---------------------------------------------------------------------------------------------
# Line 2: calm horizons.

HORIZON_SKIES: tuple[tuple[tuple[float, float, float], ...], ...] = (
    # (top of the sky, horizon, sun or moon)
    ((0.10, 0.16, 0.40), (0.98, 0.70, 0.50), (1.00, 0.92, 0.70)),  # dawn
    ((0.20, 0.10, 0.35), (0.98, 0.52, 0.30), (1.00, 0.80, 0.45)),  # dusk
    ((0.18, 0.42, 0.78), (0.80, 0.90, 0.98), (1.00, 1.00, 0.92)),  # clear day
    ((0.02, 0.04, 0.12), (0.12, 0.24, 0.36), (0.92, 0.94, 1.00)),  # moonlit night
    ((0.55, 0.55, 0.78), (0.98, 0.78, 0.82), (1.00, 0.96, 0.90)),  # pastel
    ((0.30, 0.48, 0.62), (0.92, 0.84, 0.66), (1.00, 0.95, 0.80)),  # hazy noon
)


def horizon(rng: Rng, size: int) -> np.ndarray:
    """A gradient sky over still water or soft hills, a sun or moon disc and its glow."""
    x, y = grid(size)
    top, low, disc = (
        jitter_colour(rng, c, 0.05) for c in HORIZON_SKIES[rng.integers(len(HORIZON_SKIES))]
    )
    level = rng.uniform(0.42, 0.78)  # horizon height from the top
    curve = rng.uniform(0.6, 1.8)
    sky_t = np.clip(y / level, 0, 1) ** curve
    sky = mix(top, low, sky_t[..., None])
    # Long flat clouds: noise stretched sideways, only above the horizon.
    if rng.random() < 0.7:
        clouds = fbm(rng, x * 3.0, y * 18.0, octaves=4, cells=32)
        amount = np.clip((clouds - rng.uniform(0.45, 0.6)) * 3.0, 0, 1) * rng.uniform(0.2, 0.6)
        cloud_colour = mix(low, np.ones(3, np.float32), 0.4)
        sky = mix(sky, cloud_colour, (amount * (y < level))[..., None])
    # The disc sits above (or half behind) the horizon; its glow warms the sky around it.
    cx = rng.uniform(0.15, 0.85)
    cy = level - rng.uniform(-0.02, 0.3)
    radius = rng.uniform(0.03, 0.1)
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    glow = np.exp(-d / rng.uniform(0.08, 0.25)) * rng.uniform(0.3, 0.8)
    sky = sky + (disc - sky) * glow[..., None] * 0.6
    edge = np.clip((radius - d) * size / 1.5, 0, 1)  # ~1.5 px antialiased edge
    sky = mix(sky, disc, (edge * (y < level))[..., None])
    below = y >= level
    if rng.random() < 0.6:  # still water: the sky mirrored, darker, broken by ripples
        mirror_y = np.clip(2 * level - y, 0, 1)
        rows = np.clip((mirror_y * size).astype(np.int64), 0, size - 1)
        reflected = sky[rows, np.arange(size)[None, :]]
        ripples = fbm(rng, x * 8.0, y * 120.0, octaves=3, cells=64)
        water = reflected * rng.uniform(0.45, 0.75) * (0.8 + 0.4 * ripples[..., None])
        path = np.exp(-(((x - cx) / (radius * rng.uniform(1.0, 2.5))) ** 2))
        sparkle = np.clip((ripples - 0.5) * 4, 0, 1) * path
        water = water + disc * (sparkle * 0.6 * (y - level < 0.5))[..., None]
        rgb = np.where(below[..., None], water, sky)
    else:  # soft hills in two layers, the far one paler
        rgb = sky
        for layer, fade in ((0, rng.uniform(0.45, 0.6)), (1, rng.uniform(0.15, 0.3))):
            phase = rng.uniform(0, 2 * np.pi, 3)
            freq = rng.uniform([1.0, 3.0, 7.0], [2.5, 6.0, 12.0])
            ridge = (
                level
                + layer * rng.uniform(0.04, 0.12)
                - 0.02
                - sum(
                    rng.uniform(0.005, 0.03) * np.sin(2 * np.pi * f * x + p)
                    for f, p in zip(freq, phase, strict=True)
                )
            )
            land = mix(top * 0.35, low, fade)
            inside = np.clip((y - ridge) * size, 0, 1)[..., None]
            rgb = mix(rgb, land, inside)
    return to_uint8(rgb, rng)


# ---------------------------------------------------------------------------------------------
# Line 3: seeds and circles.

SEED_PALETTES: tuple[tuple[tuple[float, float, float], ...], ...] = (
    # (background, inner, outer, accent)
    ((0.08, 0.06, 0.03), (0.35, 0.20, 0.08), (0.95, 0.75, 0.20), (0.55, 0.65, 0.20)),  # sunflower
    ((0.94, 0.90, 0.82), (0.50, 0.30, 0.20), (0.85, 0.50, 0.30), (0.30, 0.45, 0.35)),  # paper
    ((0.05, 0.10, 0.12), (0.10, 0.45, 0.45), (0.85, 0.85, 0.55), (0.95, 0.55, 0.35)),  # teal
    ((0.16, 0.10, 0.20), (0.70, 0.30, 0.45), (0.98, 0.78, 0.55), (0.45, 0.70, 0.60)),  # berry
    ((0.20, 0.26, 0.14), (0.45, 0.35, 0.15), (0.80, 0.82, 0.45), (0.95, 0.90, 0.70)),  # moss
)


def seeds_and_circles(rng: Rng, size: int) -> np.ndarray:
    """One of: a sunflower seed spiral, concentric rings, or a field of packed circles."""
    palette = [jitter_colour(rng, c, 0.05) for c in SEED_PALETTES[rng.integers(len(SEED_PALETTES))]]
    kind = rng.integers(3)
    pick: Callable[[Rng, int, list[np.ndarray]], np.ndarray] = (phyllotaxis, rings, packed_circles)[
        kind
    ]
    return to_uint8(pick(rng, size, palette), rng)


def _disc_render(
    size: int, centres: np.ndarray, radii: np.ndarray, colours: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """Discs [N] (centres [N, 2] and radii in frame units, colours [N, 3]) over `background`.

    Each disc is painted in its own bounding box, later discs over earlier ones; a disc is
    shaded darker towards its rim so it reads as a seed or a bead rather than a flat dot.
    """
    rgb = np.empty((size, size, 3), np.float32)
    rgb[:] = background
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    for (cx, cy), r, colour in zip(centres, radii, colours, strict=True):
        x0, x1 = np.clip([int((cx - r) * size) - 1, int((cx + r) * size) + 2], 0, size)
        y0, y1 = np.clip([int((cy - r) * size) - 1, int((cy + r) * size) + 2], 0, size)
        if x0 >= x1 or y0 >= y1:
            continue
        d = np.sqrt((c[None, x0:x1] - cx) ** 2 + (c[y0:y1, None] - cy) ** 2)
        cover = np.clip((r - d) * size / 1.2, 0, 1)[..., None]  # ~1 px antialiased edge
        shade = (1.0 - 0.35 * np.clip(d / r, 0, 1))[..., None]
        patch = rgb[y0:y1, x0:x1]
        rgb[y0:y1, x0:x1] = mix(patch, colour * shade, cover)
    return rgb


def phyllotaxis(rng: Rng, size: int, palette: list[np.ndarray]) -> np.ndarray:
    """Seeds at the golden angle, r ~ sqrt(i), as in a sunflower head."""
    background, inner, outer, _ = palette
    count = int(rng.integers(120, 420))
    extent = rng.uniform(0.35, 0.65)  # radius of the head, frame units
    i = np.arange(count, dtype=np.float32)
    angle = i * (GOLDEN_ANGLE + rng.uniform(-0.004, 0.004)) + rng.uniform(0, 2 * np.pi)
    r = extent * np.sqrt((i + 0.5) / count)
    centre = rng.uniform(0.35, 0.65, 2)
    centres = np.stack([centre[0] + r * np.cos(angle), centre[1] + r * np.sin(angle)], axis=1)
    spacing = extent * np.sqrt(np.pi / count)  # mean distance between neighbours
    radii = spacing * rng.uniform(0.35, 0.55) * (0.7 + 0.6 * np.sqrt(i / count))
    colours = mix(inner, outer, np.sqrt(i / count)[:, None])
    return _disc_render(size, centres, radii, colours, background)


def rings(rng: Rng, size: int, palette: list[np.ndarray]) -> np.ndarray:
    """Concentric rings around one or two centres, like ripples or tree rings."""
    x, y = grid(size)
    background, inner, outer, accent = palette
    centres = rng.uniform(0.2, 0.8, (1 if rng.random() < 0.7 else 2, 2))  # two: interference
    spacing = rng.uniform(0.05, 0.13)  # >= 3 px per ring even at 64 px
    wobble = fbm(rng, x * 4, y * 4, octaves=3, cells=16) * rng.uniform(0.0, 0.04)
    field = np.zeros_like(x)
    for cx, cy in centres:
        d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) + wobble
        field += 0.5 + 0.5 * np.cos(2 * np.pi * d / spacing)
    field /= len(centres)
    sharp = np.clip((field - 0.5) * rng.uniform(3, 12) + 0.5, 0, 1)[..., None]
    d0 = np.sqrt((x - centres[0, 0]) ** 2 + (y - centres[0, 1]) ** 2)[..., None]
    ink = mix(inner, outer, np.clip(d0 * 1.6, 0, 1))
    rgb = mix(background, ink, sharp)
    return mix(rgb, accent, (np.exp(-d0 / (spacing * 0.8)) * 0.8))


def packed_circles(rng: Rng, size: int, palette: list[np.ndarray]) -> np.ndarray:
    """Non-overlapping circles of many sizes, placed largest first (a greedy packing)."""
    background, inner, outer, accent = palette
    biggest = rng.uniform(0.08, 0.2)
    trials = 1500
    points = rng.random((trials, 2)).astype(np.float32)
    wanted = np.sort(biggest * rng.random(trials).astype(np.float32) ** 2 + 0.012)[::-1]
    c = np.zeros((0, 2), np.float32)
    r = np.zeros(0, np.float32)
    gap = 0.006
    for p, want in zip(points, wanted, strict=True):
        room = np.min(np.sqrt(((c - p) ** 2).sum(1)) - r) - gap if len(r) else want
        if room >= 0.012:  # shrink a circle to fit its free room, or skip it if too little
            c = np.vstack([c, p[None]])
            r = np.append(r, np.float32(min(want, room)))
        if len(r) >= 220:
            break
    choice = rng.random(len(r))
    colours = np.where(choice[:, None] < 0.15, accent, mix(inner, outer, rng.random((len(r), 1))))
    return _disc_render(size, c, r, colours.astype(np.float32), background)


# ---------------------------------------------------------------------------------------------
# Line 4: flowing fire.

FIRE_RAMPS: tuple[list[tuple[float, tuple[float, float, float]]], ...] = (
    [
        (0.0, (0.02, 0.0, 0.0)),
        (0.3, (0.45, 0.03, 0.01)),
        (0.55, (0.90, 0.30, 0.03)),
        (0.8, (1.00, 0.70, 0.15)),
        (1.0, (1.00, 0.97, 0.75)),
    ],  # classic
    [
        (0.0, (0.03, 0.01, 0.02)),
        (0.35, (0.60, 0.05, 0.05)),
        (0.6, (0.95, 0.40, 0.08)),
        (0.85, (1.00, 0.85, 0.35)),
        (1.0, (1.00, 1.00, 0.90)),
    ],  # crimson
    [
        (0.0, (0.01, 0.01, 0.01)),
        (0.25, (0.30, 0.06, 0.00)),
        (0.5, (0.85, 0.45, 0.05)),
        (0.78, (1.00, 0.80, 0.30)),
        (1.0, (1.00, 1.00, 1.00)),
    ],  # golden
)


def fire(rng: Rng, size: int) -> np.ndarray:
    """Flames: domain-warped fractal noise stretched upward, hottest at the base."""
    x, y = grid(size)
    up = 1.0 - y  # 0 at the bottom of the frame
    scale = rng.uniform(2.0, 4.0)
    stretch = rng.uniform(0.35, 0.6)  # < 1: flame tongues taller than wide
    flow = rng.uniform(0, 100)  # where along the upward flow this picture is
    warp = rng.uniform(1.0, 2.5)
    qx = fbm(rng, x * scale, up * scale * stretch - flow, octaves=4, cells=32)
    qy = fbm(rng, x * scale + 5.2, up * scale * stretch - flow + 1.3, octaves=4, cells=32)
    n = fbm(
        rng,
        x * scale * 1.5 + warp * qx,
        (up * scale * stretch - flow) * 1.5 + warp * 2 * qy,
        octaves=5,
        cells=64,
    )
    # The base: a wall of fire, one bonfire, or a few separate tongues.
    shape = rng.integers(3)
    if shape == 0:
        base = np.ones_like(x)
    elif shape == 1:
        base = np.exp(-(((x - rng.uniform(0.3, 0.7)) / rng.uniform(0.18, 0.35)) ** 2))
    else:
        base = np.zeros_like(x)
        for cx in rng.uniform(0.1, 0.9, int(rng.integers(2, 5))):
            base = np.maximum(base, np.exp(-(((x - cx) / rng.uniform(0.1, 0.2)) ** 2)))
    height = rng.uniform(0.7, 1.3)  # how far up the flames reach
    # Noise contrast carves tongues; heat falls with height so the tips turn red then dark.
    flame = base * (rng.uniform(0.55, 0.7) + rng.uniform(1.6, 2.4) * (n - 0.5)) - up / height * 0.8
    heat = np.clip(flame * rng.uniform(1.3, 1.8), 0, 1) ** 1.2
    embers = rng.uniform(0.25, 0.4) * np.exp(-up / rng.uniform(0.15, 0.35)) * (0.6 + 0.8 * n)
    heat = np.maximum(heat, embers)  # a glowing bed under the flames, never a black frame
    rgb = ramp(heat, FIRE_RAMPS[rng.integers(len(FIRE_RAMPS))])
    # Sparks drifting up out of the flames: small dots, a little longer than wide.
    sparks = np.zeros_like(x)
    count = int(rng.integers(0, 40))
    for px, py, r, glow in zip(
        rng.uniform(0, 1, count),
        1 - rng.uniform(0.1, 1, count) * height,
        rng.uniform(0.8, 2.0, count) / size,
        rng.uniform(0.4, 1.0, count),
        strict=True,
    ):
        sparks += glow * np.exp(-(((x - px) / r) ** 2 + ((y - py) / (2 * r)) ** 2))
    rgb = rgb + np.array([1.0, 0.65, 0.25], np.float32) * np.clip(sparks, 0, 1)[..., None]
    return to_uint8(rgb, rng)


# ---------------------------------------------------------------------------------------------
# The public entry points.

PAINTERS: dict[str, Callable[[Rng, int], np.ndarray]] = {
    "rays": rays,
    "horizon": horizon,
    "circles": seeds_and_circles,
    "fire": fire,
}


def line_image(line: int, index: int, *, size: int = 256, seed: int = 0) -> np.ndarray:
    """Picture `index` of line `line` (0-based) as uint8 [size, size, 3]; a pure function."""
    if not 0 <= line < len(LINE_KINDS):
        raise ValueError(f"line {line}: the demo has lines 0..{len(LINE_KINDS) - 1}")
    rng = np.random.default_rng([seed, line, index])
    return PAINTERS[LINE_KINDS[line]](rng, size)


def write_line_images(
    out_dir: str | Path, line: int, *, count: int, size: int = 256, seed: int = 0, workers: int = 1
) -> list[Path]:
    """Write line `line`'s pictures as out_dir/line-NN/img-IIII.png (NN 1-based); returns paths.

    `workers` > 1 paints in that many processes; the files are the same either way.
    """
    folder = Path(out_dir) / f"line-{line + 1:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"img-{index:04d}.png", line, index, size, seed) for index in range(count)]
    if workers <= 1:
        return [_write_one(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_write_one, jobs, chunksize=16))


def _write_one(job: tuple[Path, int, int, int, int]) -> Path:
    path, line, index, size, seed = job
    tmp = path.with_suffix(".png.part")
    Image.fromarray(line_image(line, index, size=size, seed=seed)).save(
        tmp, format="PNG", compress_level=1
    )
    tmp.replace(path)  # a stopped run leaves whole files only
    return path


def write_preview(
    path: str | Path, line: int, *, count: int = 48, size: int = 96, seed: int = 0, columns: int = 8
) -> Path:
    """A grid of line `line`'s first `count` pictures, to look at them at a glance."""
    rows = -(-count // columns)
    sheet = np.zeros((rows * size, columns * size, 3), np.uint8)
    for index in range(count):
        r, c = divmod(index, columns)
        sheet[r * size : (r + 1) * size, c * size : (c + 1) * size] = line_image(
            line, index, size=size, seed=seed
        )
    Image.fromarray(sheet).save(path)
    return Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for line-NN/ subfolders")
    parser.add_argument("--count", type=int, default=256, help="pictures per line (default 256)")
    parser.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="changes every picture (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--line",
        type=int,
        action="append",
        help="only line N (1-based); repeatable; default all four",
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="write out/preview-line-NN.png grids instead of the pictures",
    )
    args = parser.parse_args()
    lines = [n - 1 for n in args.line] if args.line else list(range(len(LINE_KINDS)))
    for line in lines:
        if not 0 <= line < len(LINE_KINDS):
            parser.error(f"--line {line + 1}: the demo has lines 1..{len(LINE_KINDS)}")
    for line in lines:
        start = time.perf_counter()
        if args.preview:
            args.out.mkdir(parents=True, exist_ok=True)
            path = write_preview(
                args.out / f"preview-line-{line + 1:02d}.png", line, seed=args.seed
            )
            print(f"line {line + 1} ({LINE_KINDS[line]}): {path}")
            continue
        paths = write_line_images(
            args.out, line, count=args.count, size=args.size, seed=args.seed, workers=args.workers
        )
        print(
            f"line {line + 1} ({LINE_KINDS[line]}): {len(paths)} pictures in "
            f"{paths[0].parent} ({time.perf_counter() - start:.1f} s)"
        )


if __name__ == "__main__":
    main()
