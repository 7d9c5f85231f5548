"""The synthetic world's pictures, drawn with numpy on a pixel grid.

Visual elements (stripes, ramps, ellipses, strokes) are masks on a grid (y (H, 1), x (1, W)).
Each scene has a picture (``_draw_*``: a still image and a layer that moves) and a texture
(``_fill_*``: what its VOC classes are filled with). A picture is filmed into frames (its
layer moving) or kept as a still, then given sensor grain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# A clip's frame (height, width); counts of drawn things are stated for this canvas (_count).
CLIP_SIZE = (96, 128)


# ---------------------------------------------------------------------------------------
# Visual elements: masks on a pixel grid (y (H, 1), x (1, W)), vectorised with numpy.


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.arange(height, dtype=np.float32)[:, None],
        np.arange(width, dtype=np.float32)[None, :],
    )


def _shape_of(y: np.ndarray, x: np.ndarray) -> tuple[int, int]:
    return y.shape[0], x.shape[1]


def _stripes(y, x, angle: float, period: float, duty: float) -> np.ndarray:
    """Parallel bands ``period`` pixels apart, across direction ``angle`` (radians), each
    ``duty`` of the period wide."""
    u = x * np.cos(angle) + y * np.sin(angle)
    return (u / period % 1.0) < duty


def _ramp(y, x, angle: float) -> np.ndarray:
    """0 -> 1 across the grid along direction ``angle``: a gradient's weights."""
    u = x * np.cos(angle) + y * np.sin(angle)
    return ((u - u.min()) / max(float(u.max() - u.min()), 1e-6)).astype(np.float32)


def _ellipses(y, x, cy, cx, ry, rx) -> np.ndarray:
    """(n, H, W): inside each of n axis-aligned ellipses."""
    dy = (y[None] - cy[:, None, None]) / ry[:, None, None]
    dx = (x[None] - cx[:, None, None]) / rx[:, None, None]
    return dy**2 + dx**2 <= 1.0


def _topmost(inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(covered (H, W), index of the last of the n shapes covering each pixel)."""
    covered = inside.any(axis=0)
    return covered, inside.shape[0] - 1 - np.argmax(inside[::-1], axis=0)


def _strokes(shape, y0, x0, angle, length) -> np.ndarray:
    """Thin straight strokes from (y0, x0) along ``angle``, ``length`` pixels long."""
    steps = np.linspace(0.0, 1.0, int(np.ceil(np.max(length, initial=1.0))) * 2)
    ys = y0[:, None] + (np.sin(angle) * length)[:, None] * steps
    xs = x0[:, None] + (np.cos(angle) * length)[:, None] * steps
    inside = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    mask = np.zeros(shape, bool)
    mask[ys[inside].astype(int), xs[inside].astype(int)] = True
    return mask


def _paint(image: np.ndarray, mask: np.ndarray, colour) -> None:
    """Paint ``colour`` ((3,) or (H, W, 3)) where ``mask`` (bool or weights in [0, 1]) is."""
    weight = np.asarray(mask, np.float32)[..., None]
    image *= 1.0 - weight
    image += weight * np.asarray(colour, np.float32)


def _blend(top, bottom, weight: np.ndarray) -> np.ndarray:
    """(H, W, 3): ``top`` where weight is 0, ``bottom`` where it is 1."""
    weight = weight[..., None]
    return (1.0 - weight) * np.asarray(top, np.float32) + weight * np.asarray(bottom, np.float32)


def _full(y, x, colour) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.float32), (*_shape_of(y, x), 3)).copy()


def _count(y, x, per_clip_area: float) -> int:
    """A count scaled from a 96x128 canvas to this one, so density does not change."""
    height, width = _shape_of(y, x)
    return max(1, round(per_clip_area * height * width / (CLIP_SIZE[0] * CLIP_SIZE[1])))


# ---------------------------------------------------------------------------------------
# Scene pictures. A palette is (4, 3): background, ground, pattern, accent.


@dataclass(frozen=True)
class Layer:
    """Part of a picture that moves ``velocity`` (rows, columns) per frame within ``region``."""

    mask: np.ndarray  # (H, W) weights in [0, 1]
    colour: np.ndarray  # (3,)
    velocity: tuple[float, float]
    region: np.ndarray | None = None  # (H, W) bool; None: everywhere


@dataclass(frozen=True)
class Picture:
    image: np.ndarray  # (H, W, 3) float32, 0-255
    moving: Layer | None = None


def _sky_and_ground(y, x, palette, horizon: float) -> np.ndarray:
    """Background fading down to the horizon, then the ground darkening towards the viewer."""
    height = y.shape[0]
    sky = _blend(palette[0] * 1.15, palette[0] * 0.85, np.clip(y / max(horizon, 1.0), 0, 1)[:, :1])
    ground = _blend(palette[1] * 1.1, palette[1] * 0.7, np.clip((y - horizon) / height, 0, 1))
    image = np.where((y < horizon)[..., None], sky, ground[:, :1])
    return np.broadcast_to(image, (*_shape_of(y, x), 3)).copy()


def _draw_rain(y, x, palette, rng) -> Picture:
    """Grey sky over dark ground, puddles, and slanted streaks falling across everything."""
    shape = _shape_of(y, x)
    image = _sky_and_ground(y, x, palette, horizon=rng.uniform(0.5, 0.8) * shape[0])
    n = _count(y, x, rng.integers(3, 7))
    puddles = _ellipses(
        y,
        x,
        rng.uniform(0.8, 1.0, n) * shape[0],
        rng.uniform(0, shape[1], n),
        rng.uniform(1.5, 4, n),
        rng.uniform(6, 18, n),
    ).any(0)
    _paint(image, puddles, palette[3])
    angle = np.pi / 2 + rng.uniform(-0.35, 0.35)
    streaks = _rain_streaks(y, x, angle, rng.uniform(2.0, 4.0), rng)
    speed = rng.uniform(5, 9)
    return Picture(
        image, Layer(streaks, palette[2], (speed * np.sin(angle), speed * np.cos(angle)))
    )


def _rain_streaks(y, x, angle: float, density: float, rng) -> np.ndarray:
    shape = _shape_of(y, x)
    n = _count(y, x, 100 * density)
    return _strokes(
        shape,
        rng.uniform(0, shape[0], n),
        rng.uniform(0, shape[1], n),
        angle + rng.normal(0, 0.03, n),
        rng.uniform(4, 10, n),
    )


def _fill_rain(y, x, palette, rng) -> np.ndarray:
    """Dense slanted streaks over a gradient."""
    image = _blend(palette[3], palette[0], _ramp(y, x, rng.uniform(0, 2 * np.pi)))
    _paint(image, _rain_streaks(y, x, np.pi / 2 + rng.uniform(-0.35, 0.35), 8.0, rng), palette[2])
    return image


def _draw_road(y, x, palette, rng) -> Picture:
    """A road running to a vanishing point, edge lines, dashes moving closer, a skyline."""
    height, width = _shape_of(y, x)
    horizon = rng.uniform(0.3, 0.5) * height
    image = _sky_and_ground(y, x, palette, horizon)
    n = rng.integers(3, 9)
    cx, half_width = rng.uniform(0, width, n), rng.uniform(3, 10, n)
    tops = horizon - rng.uniform(4, 0.6 * horizon, n)
    buildings = (np.abs(x[None] - cx[:, None, None]) < half_width[:, None, None]) & (
        (y[None] > tops[:, None, None]) & (y[None] <= horizon)
    )
    covered, which = _topmost(buildings)
    shades = palette[2] * rng.uniform(0.6, 1.3, (n, 1))
    _paint(image, covered, shades[which])
    depth = y - horizon
    offset = np.abs(x - rng.uniform(0.3, 0.7) * width)
    spread = rng.uniform(0.5, 1.3)
    road = (depth > 0) & (offset < depth * spread)
    _paint(image, road, palette[2])
    _paint(image, (depth > 0) & (np.abs(offset - depth * spread) < 0.8 + 0.03 * depth), palette[3])
    centre = (depth > 0) & (offset < 0.6 + 0.03 * depth)
    dashes = np.broadcast_to(_stripes(y, x, np.pi / 2, rng.uniform(8, 14), 0.5), road.shape)
    return Picture(image, Layer(dashes, palette[3], (rng.uniform(1.5, 3.0), 0.0), centre))


def _fill_road(y, x, palette, rng) -> np.ndarray:
    """Tarmac with the road's painted lines: a grid of bright stripes."""
    image = _full(y, x, palette[2])
    _paint(image, _stripes(y, x, np.pi / 2, rng.uniform(4, 6), 0.35), palette[3])
    _paint(image, _stripes(y, x, 0.0, rng.uniform(10, 16), 0.15), palette[0])
    return image


def _leaf_discs(y, x, palette, rng, n: int, rows: tuple[float, float], radius: tuple[float, float]):
    """(covered, colours) of n overlapping discs in shades of the pattern colour."""
    height, width = _shape_of(y, x)
    r = rng.uniform(*radius, n)
    inside = _ellipses(y, x, rng.uniform(*rows, n) * height, rng.uniform(0, width, n), r, r)
    covered, which = _topmost(inside)
    shades = palette[2] * rng.uniform(0.55, 1.3, (n, 1))
    return covered, shades[which]


def _draw_forest(y, x, palette, rng) -> Picture:
    """Vertical trunks under a canopy of overlapping round leaves; leaves drift down."""
    height, width = _shape_of(y, x)
    image = _blend(palette[0], palette[1], _ramp(y, x, np.pi / 2))
    n = rng.integers(4, 10)
    trunks = np.abs(x[None] - rng.uniform(0, width, (n, 1, 1))) < rng.uniform(1.5, 4.5, (n, 1, 1))
    covered, which = _topmost(np.broadcast_to(trunks, (n, height, width)))
    _paint(image, covered, (palette[3] * rng.uniform(0.5, 1.0, (n, 1)))[which])
    covered, colours = _leaf_discs(y, x, palette, rng, _count(y, x, 60), (-0.1, 0.55), (5, 13))
    _paint(image, covered, colours)
    covered, colours = _leaf_discs(y, x, palette, rng, _count(y, x, 25), (0.85, 1.1), (3, 8))
    _paint(image, covered, colours)
    n = _count(y, x, 25)
    r = rng.uniform(0.8, 1.8, n)
    falling = _ellipses(y, x, rng.uniform(0, height, n), rng.uniform(0, width, n), r, r).any(0)
    return Picture(image, Layer(falling, palette[2] * 1.2, (1.0, rng.uniform(-0.6, 0.6))))


def _fill_forest(y, x, palette, rng) -> np.ndarray:
    """Small overlapping leaves."""
    image = _full(y, x, palette[1])
    covered, colours = _leaf_discs(y, x, palette, rng, _count(y, x, 250), (-0.05, 1.05), (2, 5))
    _paint(image, covered, colours)
    return image


def _people(y, x, palette, rng, rows: int, scale: tuple[float, float]):
    """(covered, colours): rows of head-and-shoulder shapes, back rows first, bigger in front."""
    height, width = _shape_of(y, x)
    sizes = np.linspace(*scale, rows) * rng.uniform(0.8, 1.2)
    row_y = np.linspace(0.45, 0.95, rows) * height + rng.uniform(-4, 4, rows)
    counts = np.maximum(2, (width / (sizes * 1.2)).astype(int))
    size = np.repeat(sizes, counts)
    cy = np.repeat(row_y, counts)
    cx = np.concatenate([rng.uniform(-5, width + 5, c) for c in counts])
    cy += rng.normal(0, 0.15, cy.size) * size
    bodies = _ellipses(y, x, cy + 0.9 * size, cx, 0.8 * size, 0.5 * size)
    heads = _ellipses(y, x, cy, cx, 0.33 * size, 0.3 * size)
    # Each person's head over its own body, in front of the rows behind.
    inside = np.stack([bodies, heads], axis=1).reshape(-1, height, width)
    covered, which = _topmost(inside)
    clothes = palette[rng.integers(1, 4, size.size)] * rng.uniform(0.6, 1.3, (size.size, 1))
    skin = np.array([225, 190, 160], np.float32) * rng.uniform(0.45, 1.1, (size.size, 1))
    return covered, np.stack([clothes, skin], axis=1).reshape(-1, 3)[which]


def _draw_crowd(y, x, palette, rng) -> Picture:
    """Rows of people, heads over shoulders, against a wall."""
    image = _blend(palette[0], palette[0] * 0.7, _ramp(y, x, np.pi / 2))
    covered, colours = _people(y, x, palette, rng, rng.integers(3, 6), (7.0, 16.0))
    _paint(image, covered, colours)
    return Picture(image)


def _fill_crowd(y, x, palette, rng) -> np.ndarray:
    """Rows of tiny people."""
    image = _full(y, x, palette[0])
    covered, colours = _people(y, x, palette, rng, 6, (4.0, 7.0))
    _paint(image, covered, colours)
    return image


def _waves(y, x, horizon: float, rng) -> np.ndarray:
    """Wavy crests whose spacing grows towards the viewer."""
    depth = np.maximum(y - horizon, 0.0)
    wavelength = rng.uniform(15, 40)
    crest = np.sqrt(depth) * rng.uniform(1.0, 1.6) + 0.4 * np.sin(
        2 * np.pi * x / wavelength + rng.uniform(0, 2 * np.pi)
    )
    return (crest % 1.0 < rng.uniform(0.2, 0.35)) & (depth > 0)


def _draw_sea(y, x, palette, rng) -> Picture:
    """Sky over a sea of wavy crests that roll sideways, a sun above the horizon."""
    height, width = _shape_of(y, x)
    horizon = rng.uniform(0.25, 0.5) * height
    image = _sky_and_ground(y, x, palette, horizon)
    r = rng.uniform(3, 9, 1)
    sun = _ellipses(y, x, rng.uniform(0.2, 0.8, 1) * horizon, rng.uniform(0, width, 1), r, r)[0]
    _paint(image, sun, palette[3])
    return Picture(image, Layer(_waves(y, x, horizon, rng), palette[2], (0.0, rng.uniform(-2, 2))))


def _fill_sea(y, x, palette, rng) -> np.ndarray:
    """Close, regular wavy crests."""
    image = _full(y, x, palette[1])
    period = rng.uniform(3, 6)
    crests = (y + 1.5 * np.sin(2 * np.pi * x / rng.uniform(8, 16))) % period < 0.35 * period
    _paint(image, crests, palette[2])
    return image


def _paint_grass(image, y, x, palette, horizon: float, density: float, rng) -> float:
    """Dark blades, then fewer light ones, growing below ``horizon`` and all bent one way;
    returns the lean (radians, its sign the wind's direction)."""
    height, width = _shape_of(y, x)
    lean = rng.choice([-1, 1]) * rng.uniform(0.35, 0.8)
    for colour, share in ((palette[3], 1.0), (palette[2] * 0.8, 0.4)):
        n = _count(y, x, density * share)
        blades = _strokes(
            (height, width),
            rng.uniform(horizon, height + 4, n),
            rng.uniform(-4, width + 4, n),
            -np.pi / 2 + lean + rng.normal(0, 0.12, n),
            rng.uniform(4, 11, n),
        )
        _paint(image, blades, colour)
    return lean


def _draw_wind(y, x, palette, rng) -> Picture:
    """A meadow of grass blades bent one way, soft clouds drifting across the sky."""
    height, width = _shape_of(y, x)
    horizon = rng.uniform(0.4, 0.7) * height
    image = _sky_and_ground(y, x, palette, horizon)
    lean = _paint_grass(image, y, x, palette, horizon, 400, rng)
    n = rng.integers(3, 8)
    r = rng.uniform(6, 16, n)
    puffs = _ellipses(y, x, rng.uniform(0, horizon, n), rng.uniform(0, width, n), 0.6 * r, r)
    clouds = np.clip(ndimage.gaussian_filter(puffs.any(0).astype(np.float32), 2.5) * 1.3, 0, 1)
    sky = np.broadcast_to(y < horizon, clouds.shape)
    drift = np.sign(lean) * rng.uniform(0.5, 1.5)
    return Picture(image, Layer(clouds, palette[2], (0.0, drift), sky))


def _fill_wind(y, x, palette, rng) -> np.ndarray:
    """Dense grass blades bent one way."""
    image = _full(y, x, palette[1])
    _paint_grass(image, y, x, palette, -10, 900, rng)
    return image


# ---------------------------------------------------------------------------------------
# Filming a picture: its moving layer in motion, a still, sensor grain.


def _film(picture: Picture, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(T, h, w, 3) views of the picture: frame t shows canvas pixels (rows[t], cols[t]),
    (T, h, 1) and (T, 1, w) indices, with the moving layer shifted t times its velocity."""
    frames = picture.image[rows, cols]
    layer = picture.moving
    if layer is None:
        return frames
    height, width = layer.mask.shape
    steps = np.arange(len(rows))[:, None, None]
    moved_rows = np.round(rows - layer.velocity[0] * steps).astype(int) % height
    moved_cols = np.round(cols - layer.velocity[1] * steps).astype(int) % width
    moved = layer.mask[moved_rows, moved_cols]
    if layer.region is not None:
        moved = moved * layer.region[rows, cols]
    _paint(frames, moved, layer.colour)
    return frames


def _still(picture: Picture) -> np.ndarray:
    """(H, W, 3): the picture as its first frame shows it, uncropped."""
    height, width = picture.image.shape[:2]
    return _film(picture, np.arange(height)[None, :, None], np.arange(width)[None, None, :])[0]


def _grain(image: np.ndarray, rng, sigma: tuple[float, float]) -> np.ndarray:
    """uint8 ``image`` with sensor noise of a random strength."""
    noise = rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(*sigma)
    return np.clip(image + noise, 0, 255).astype(np.uint8)
