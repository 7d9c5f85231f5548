"""The synthetic VOC 2007 tree's content: the 20 class silhouettes, objects filled with their
scene's texture, and VOC images with their objects' annotations (writer.py writes them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfambient.voc import CLASSES
from tfambient.voc.dataset import VocObject
from tfambient.world.pictures import _grain, _grid, _paint, _ramp, _shape_of, _still
from tfambient.world.scenes import SCENE_OF_CLASS, SCENES, _palette

# ---------------------------------------------------------------------------------------
# Objects: class silhouettes filled with their scene's texture.


# Class silhouettes in a unit box (x right, y down): (kind, cx, cy, width, height, degrees);
# a kind starting with "-" cuts a hole. With each its width / height.
SHAPES: dict[str, tuple[float, tuple[tuple[str, float, float, float, float, float], ...]]] = {
    "aeroplane": (
        2.2,
        (
            ("ellipse", 0.5, 0.55, 1.0, 0.3, 0),
            ("tri", 0.45, 0.5, 0.3, 1.0, 180),
            ("tri", 0.08, 0.3, 0.14, 0.5, 0),
        ),
    ),
    "bicycle": (
        1.6,
        (
            ("ellipse", 0.2, 0.7, 0.4, 0.6, 0),
            ("-ellipse", 0.2, 0.7, 0.28, 0.42, 0),
            ("ellipse", 0.8, 0.7, 0.4, 0.6, 0),
            ("-ellipse", 0.8, 0.7, 0.28, 0.42, 0),
            ("tri", 0.5, 0.55, 0.5, 0.35, 180),
            ("rect", 0.6, 0.15, 0.3, 0.08, 0),
        ),
    ),
    "bird": (
        1.3,
        (
            ("ellipse", 0.45, 0.6, 0.6, 0.45, 0),
            ("ellipse", 0.78, 0.32, 0.28, 0.35, 0),
            ("tri", 0.97, 0.35, 0.1, 0.12, 90),
            ("tri", 0.12, 0.6, 0.22, 0.3, -90),
            ("tri", 0.4, 0.3, 0.4, 0.5, 200),
        ),
    ),
    "boat": (
        1.3,
        (
            ("rect", 0.5, 0.76, 0.72, 0.16, 0),
            ("tri", 0.5, 0.84, 1.0, 0.32, 180),
            ("tri", 0.45, 0.37, 0.55, 0.62, 0),
            ("rect", 0.5, 0.35, 0.04, 0.7, 0),
        ),
    ),
    "bottle": (
        0.38,
        (
            ("rect", 0.5, 0.66, 0.8, 0.66, 0),
            ("tri", 0.5, 0.28, 0.8, 0.12, 0),
            ("rect", 0.5, 0.13, 0.3, 0.26, 0),
        ),
    ),
    "bus": (
        1.9,
        (
            ("rect", 0.5, 0.45, 1.0, 0.75, 0),
            ("-rect", 0.3, 0.3, 0.5, 0.2, 0),
            ("-rect", 0.82, 0.3, 0.2, 0.2, 0),
            ("ellipse", 0.2, 0.85, 0.14, 0.3, 0),
            ("ellipse", 0.8, 0.85, 0.14, 0.3, 0),
        ),
    ),
    "car": (
        1.9,
        (
            ("rect", 0.5, 0.62, 1.0, 0.42, 0),
            ("rect", 0.48, 0.28, 0.55, 0.3, 0),
            ("-rect", 0.48, 0.3, 0.4, 0.18, 0),
            ("ellipse", 0.22, 0.85, 0.18, 0.32, 0),
            ("ellipse", 0.78, 0.85, 0.18, 0.32, 0),
        ),
    ),
    "cat": (
        1.1,
        (
            ("ellipse", 0.4, 0.68, 0.65, 0.55, 0),
            ("ellipse", 0.75, 0.35, 0.36, 0.36, 0),
            ("tri", 0.65, 0.12, 0.12, 0.2, -15),
            ("tri", 0.86, 0.12, 0.12, 0.2, 15),
            ("rect", 0.1, 0.5, 0.06, 0.55, -25),
        ),
    ),
    "chair": (
        0.8,
        (
            ("rect", 0.5, 0.55, 0.9, 0.12, 0),
            ("rect", 0.12, 0.28, 0.12, 0.56, 0),
            ("rect", 0.12, 0.8, 0.08, 0.45, 0),
            ("rect", 0.88, 0.8, 0.08, 0.45, 0),
        ),
    ),
    "cow": (
        1.5,
        (
            ("rect", 0.45, 0.45, 0.7, 0.45, 0),
            ("rect", 0.88, 0.32, 0.2, 0.3, 0),
            ("rect", 0.17, 0.82, 0.08, 0.36, 0),
            ("rect", 0.35, 0.82, 0.08, 0.36, 0),
            ("rect", 0.58, 0.82, 0.08, 0.36, 0),
            ("rect", 0.74, 0.82, 0.08, 0.36, 0),
        ),
    ),
    "diningtable": (
        1.6,
        (
            ("rect", 0.5, 0.12, 1.0, 0.14, 0),
            ("rect", 0.08, 0.58, 0.07, 0.84, 0),
            ("rect", 0.92, 0.58, 0.07, 0.84, 0),
            ("rect", 0.5, 0.35, 0.5, 0.05, 0),
        ),
    ),
    "dog": (
        1.4,
        (
            ("ellipse", 0.45, 0.5, 0.6, 0.35, 0),
            ("ellipse", 0.82, 0.3, 0.28, 0.3, 0),
            ("ellipse", 0.95, 0.38, 0.12, 0.12, 0),
            ("rect", 0.25, 0.8, 0.08, 0.4, 0),
            ("rect", 0.62, 0.8, 0.08, 0.4, 0),
            ("rect", 0.1, 0.32, 0.05, 0.35, 40),
        ),
    ),
    "horse": (
        1.2,
        (
            ("ellipse", 0.42, 0.45, 0.6, 0.32, 0),
            ("rect", 0.76, 0.25, 0.14, 0.42, 30),
            ("ellipse", 0.9, 0.1, 0.2, 0.13, 20),
            ("rect", 0.22, 0.78, 0.06, 0.45, 0),
            ("rect", 0.6, 0.78, 0.06, 0.45, 0),
            ("tri", 0.08, 0.5, 0.1, 0.45, -20),
        ),
    ),
    "motorbike": (
        1.5,
        (
            ("ellipse", 0.18, 0.72, 0.36, 0.56, 0),
            ("ellipse", 0.82, 0.72, 0.36, 0.56, 0),
            ("ellipse", 0.5, 0.45, 0.55, 0.3, 0),
            ("rect", 0.7, 0.15, 0.22, 0.08, 0),
        ),
    ),
    "person": (
        0.42,
        (
            ("ellipse", 0.5, 0.09, 0.45, 0.17, 0),
            ("rect", 0.5, 0.36, 0.8, 0.36, 0),
            ("rect", 0.33, 0.75, 0.26, 0.5, 0),
            ("rect", 0.67, 0.75, 0.26, 0.5, 0),
        ),
    ),
    "pottedplant": (
        0.8,
        (
            ("tri", 0.5, 0.82, 0.6, 0.36, 180),
            ("ellipse", 0.5, 0.38, 0.8, 0.5, 0),
            ("ellipse", 0.25, 0.22, 0.4, 0.38, 0),
            ("ellipse", 0.75, 0.22, 0.4, 0.38, 0),
            ("rect", 0.5, 0.62, 0.06, 0.2, 0),
        ),
    ),
    "sheep": (
        1.4,
        (
            ("ellipse", 0.45, 0.45, 0.75, 0.6, 0),
            ("ellipse", 0.88, 0.35, 0.22, 0.3, 0),
            ("rect", 0.28, 0.85, 0.07, 0.3, 0),
            ("rect", 0.62, 0.85, 0.07, 0.3, 0),
        ),
    ),
    "sofa": (
        1.9,
        (
            ("rect", 0.5, 0.7, 1.0, 0.4, 0),
            ("rect", 0.5, 0.35, 0.85, 0.4, 0),
            ("rect", 0.05, 0.55, 0.1, 0.5, 0),
            ("rect", 0.95, 0.55, 0.1, 0.5, 0),
        ),
    ),
    "train": (
        2.6,
        (
            ("rect", 0.5, 0.45, 1.0, 0.7, 0),
            ("-rect", 0.2, 0.32, 0.12, 0.2, 0),
            ("-rect", 0.45, 0.32, 0.12, 0.2, 0),
            ("-rect", 0.7, 0.32, 0.12, 0.2, 0),
            ("ellipse", 0.15, 0.88, 0.08, 0.25, 0),
            ("ellipse", 0.35, 0.88, 0.08, 0.25, 0),
            ("ellipse", 0.65, 0.88, 0.08, 0.25, 0),
            ("ellipse", 0.85, 0.88, 0.08, 0.25, 0),
        ),
    ),
    "tvmonitor": (
        1.25,
        (
            ("rect", 0.5, 0.4, 1.0, 0.8, 0),
            ("-rect", 0.5, 0.4, 0.8, 0.62, 0),
            ("rect", 0.5, 0.4, 0.7, 0.52, 0),
            ("rect", 0.5, 0.92, 0.35, 0.16, 0),
        ),
    ),
}


def _primitive(kind: str, u, v, angle_deg: float) -> np.ndarray:
    """Inside a unit primitive centred at (0, 0) with half-sizes 1, turned by angle."""
    a = np.deg2rad(angle_deg)
    du, dv = np.cos(a) * u + np.sin(a) * v, -np.sin(a) * u + np.cos(a) * v
    if kind == "rect":
        return np.maximum(np.abs(du), np.abs(dv)) <= 1
    if kind == "ellipse":
        return du**2 + dv**2 <= 1
    return (np.abs(dv) <= 1) & (np.abs(du) <= (dv + 1) / 2)  # a triangle, apex up


def _silhouette(y, x, name: str, box, tilt: float, flip: bool) -> np.ndarray:
    """Mask of class ``name`` drawn in ``box`` (cx, cy, width, height), turned by ``tilt``."""
    cx, cy, width, height = box
    dx, dy = x - cx, y - cy
    u = (np.cos(tilt) * dx + np.sin(tilt) * dy) / width
    v = (-np.sin(tilt) * dx + np.cos(tilt) * dy) / height + 0.5
    u = (-u if flip else u) + 0.5
    mask = np.zeros(_shape_of(y, x), bool)
    for kind, pcx, pcy, pw, ph, angle in SHAPES[name][1]:
        inside = _primitive(kind.lstrip("-"), (u - pcx) / (pw / 2), (v - pcy) / (ph / 2), angle)
        mask = mask & ~inside if kind.startswith("-") else mask | inside
    return mask


@dataclass(frozen=True)
class Placement:
    """Where an object goes: centre, size in pixels, tilt (radians) and mirroring."""

    cx: float
    cy: float
    width: float
    height: float
    tilt: float
    flip: bool


def _place(name: str, height_px: float, image_shape, rng) -> Placement:
    """A random pose for class ``name`` at ``height_px``; the centre may leave the frame a bit."""
    width = SHAPES[name][0] * height_px
    return Placement(
        rng.uniform(0.05, 0.95) * image_shape[1],
        rng.uniform(0.1, 0.95) * image_shape[0],
        width,
        height_px,
        rng.normal(0, 0.12),
        bool(rng.random() < 0.5),
    )


def draw_object(image: np.ndarray, name: str, where: Placement, rng) -> np.ndarray:
    """Paint class ``name`` with its scene's texture and a palette of that scene onto ``image``
    ((H, W, 3) float, in place); returns its (H, W) mask."""
    y, x = _grid(*image.shape[:2])
    reach = 0.5 * np.hypot(where.width, where.height) + 1
    rows = slice(max(0, int(where.cy - reach)), max(0, int(where.cy + reach) + 1))
    cols = slice(max(0, int(where.cx - reach)), max(0, int(where.cx + reach) + 1))
    mask = np.zeros(image.shape[:2], bool)
    sub_y, sub_x = y[rows], x[:, cols]
    if sub_y.size == 0 or sub_x.size == 0:
        return mask
    box = (where.cx, where.cy, where.width, where.height)
    mask[rows, cols] = _silhouette(sub_y, sub_x, name, box, where.tilt, where.flip)
    scene = SCENE_OF_CLASS[name]
    texture = scene.fill(sub_y, sub_x, _palette(scene, rng), rng)
    shade = 0.8 + 0.35 * _ramp(sub_y, sub_x, rng.uniform(0, 2 * np.pi))
    _paint(image[rows, cols], mask[rows, cols], texture * shade[..., None])
    return mask


# ---------------------------------------------------------------------------------------
# The synthetic VOC 2007 tree.

VOC_SIZE = (128, 160)  # height, width
# An object is difficult when its visible box is under this many pixels on its longer side,
# or less than this fraction of its silhouette shows.
DIFFICULT_SIDE_PX = 14
DIFFICULT_VISIBLE = 0.4
# A box that crosses the border by more than this fraction of its size is truncated.
TRUNCATED_FRACTION = 0.1
SMALL_OBJECT_P = 0.35  # how often an extra object is small
OWN_SCENE_P = 0.5  # how often an image's background is the scene of its main object's class


@dataclass(frozen=True)
class VocImage:
    pixels: np.ndarray  # (H, W, 3) uint8
    objects: tuple[VocObject, ...]


def _fit_height(name: str, height_px: float, width_px: float) -> float:
    """``height_px``, reduced so that the class's width stays within ``width_px``."""
    return min(height_px, width_px / SHAPES[name][0])


def _primary_placement(name: str, size, rng) -> Placement:
    """A big, mostly visible pose for the object that makes the image a positive."""
    height, width = size
    h = _fit_height(name, rng.uniform(0.35, 0.8) * height, 0.95 * width)
    return Placement(
        rng.uniform(0.3, 0.7) * width,
        rng.uniform(0.35, 0.65) * height,
        SHAPES[name][0] * h,
        h,
        rng.normal(0, 0.1),
        bool(rng.random() < 0.5),
    )


def _extra_placement(name: str, size, rng) -> Placement:
    """Any pose: small (a difficult object) now and then, else up to most of the image."""
    height, width = size
    small = rng.random() < SMALL_OBJECT_P
    h = rng.uniform(4, DIFFICULT_SIDE_PX) if small else rng.uniform(0.2, 0.7) * height
    return _place(name, _fit_height(name, h, 1.2 * width), size, rng)


def _annotate(name: str, where: Placement, mask: np.ndarray, visible: np.ndarray) -> VocObject:
    """The VOC record of an object from its silhouette and the part of it left visible."""
    rows, cols = np.nonzero(visible)
    bbox = (int(cols.min()) + 1, int(rows.min()) + 1, int(cols.max()) + 1, int(rows.max()) + 1)
    longer_side = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) + 1
    height, width = mask.shape
    overhang = max(
        (where.width / 2 - min(where.cx, width - where.cx)) / where.width,
        (where.height / 2 - min(where.cy, height - where.cy)) / where.height,
    )
    return VocObject(
        name,
        bbox,
        difficult=bool(
            longer_side < DIFFICULT_SIDE_PX or visible.sum() < DIFFICULT_VISIBLE * mask.sum()
        ),
        truncated=bool(overhang > TRUNCATED_FRACTION),
    )


def voc_image(primary: str, rng: np.random.Generator, size: tuple[int, int] = VOC_SIZE) -> VocImage:
    """A scene (often the primary class's own) with 0-2 objects of random classes
    and then a big, unoccluded object of class ``primary``; objects left entirely hidden
    are not annotated."""
    own = rng.random() < OWN_SCENE_P
    scene = SCENE_OF_CLASS[primary] if own else SCENES[rng.integers(len(SCENES))]
    y, x = _grid(*size)
    image = _still(scene.draw(y, x, _palette(scene, rng), rng))
    names = [CLASSES[i] for i in rng.integers(len(CLASSES), size=rng.integers(0, 3))]
    placements = [_extra_placement(name, size, rng) for name in names]
    names.append(primary)
    placements.append(_primary_placement(primary, size, rng))
    masks = [draw_object(image, n, p, rng) for n, p in zip(names, placements, strict=True)]
    # What each object keeps once those drawn after it cover it.
    in_front = np.logical_or.accumulate(np.stack([*masks[1:], np.zeros(size, bool)])[::-1])[::-1]
    objects = tuple(
        _annotate(name, where, mask, mask & ~covering)
        for name, where, mask, covering in zip(names, placements, masks, in_front, strict=True)
        if (mask & ~covering).any()
    )
    return VocImage(_grain(image, rng, (2, 6)), objects)


def _primaries(count: int, rng) -> np.ndarray:
    """Class names for ``count`` images: every class once per 20, in shuffled rounds."""
    rounds = -(-count // len(CLASSES))
    order = np.concatenate([rng.permutation(len(CLASSES)) for _ in range(rounds)])
    return np.asarray(CLASSES)[order[:count]]


def voc_split_sizes(voc_images: int) -> dict[str, int]:
    """Images per split, as VOC 2007 divides them: half test, the rest halved into train, val."""
    test = voc_images // 2
    train = (voc_images - test) // 2
    return {"train": train, "val": voc_images - test - train, "test": test}
