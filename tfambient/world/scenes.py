"""The six scenes: a name, a palette family, a picture, a texture and a sound each, and the
VOC classes drawn with that texture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfambient.world.pictures import (
    Picture,
    _draw_crowd,
    _draw_forest,
    _draw_rain,
    _draw_road,
    _draw_sea,
    _draw_wind,
    _fill_crowd,
    _fill_forest,
    _fill_rain,
    _fill_road,
    _fill_sea,
    _fill_wind,
)
from tfambient.world.sounds import (
    _sound_crowd,
    _sound_forest,
    _sound_rain,
    _sound_road,
    _sound_sea,
    _sound_wind,
)

# The scene's own palette family is drawn this often; otherwise any scene's (its own too).
OWN_PALETTE_P = 0.4


# ---------------------------------------------------------------------------------------
# Scenes, and the VOC classes that share their looks.


@dataclass(frozen=True)
class Scene:
    name: str
    display_name: str
    palette: tuple[tuple[int, int, int], ...]  # background, ground, pattern, accent
    draw: Callable[..., Picture]  # (y, x, palette, rng): the scene's picture
    fill: Callable[..., np.ndarray]  # (y, x, palette, rng): its texture, for objects
    sound: Callable[..., np.ndarray]  # (t, rng): its sound at RATE Hz
    classes: tuple[str, ...]  # VOC classes drawn with its texture and palette

    @property
    def mid(self) -> str:
        """The scene's label in the segments CSV and ontology (for reports; never trained on)."""
        return f"/t/{self.name}"


SCENES = (
    Scene(
        "rain",
        "Rain",
        ((110, 120, 140), (60, 65, 75), (205, 215, 230), (40, 60, 95)),
        _draw_rain,
        _fill_rain,
        _sound_rain,
        ("bottle", "train", "tvmonitor"),
    ),
    Scene(
        "road",
        "Road traffic",
        ((150, 180, 210), (95, 115, 70), (70, 70, 78), (235, 220, 120)),
        _draw_road,
        _fill_road,
        _sound_road,
        ("bicycle", "bus", "car", "motorbike"),
    ),
    Scene(
        "forest",
        "Forest birdsong",
        ((45, 75, 45), (85, 62, 40), (75, 145, 60), (135, 100, 60)),
        _draw_forest,
        _fill_forest,
        _sound_forest,
        ("bird", "cow", "pottedplant"),
    ),
    Scene(
        "crowd",
        "Crowd babble",
        ((185, 165, 140), (125, 40, 40), (45, 65, 135), (230, 200, 170)),
        _draw_crowd,
        _fill_crowd,
        _sound_crowd,
        ("chair", "diningtable", "person", "sofa"),
    ),
    Scene(
        "sea",
        "Sea surf",
        ((140, 190, 230), (30, 80, 140), (210, 232, 242), (240, 210, 120)),
        _draw_sea,
        _fill_sea,
        _sound_sea,
        ("boat", "cat", "dog"),
    ),
    Scene(
        "wind",
        "Wind in a meadow",
        ((170, 200, 230), (120, 160, 80), (240, 240, 240), (60, 100, 40)),
        _draw_wind,
        _fill_wind,
        _sound_wind,
        ("aeroplane", "horse", "sheep"),
    ),
)
SCENE_NAMES = tuple(scene.name for scene in SCENES)
SCENE_BY_NAME = {scene.name: scene for scene in SCENES}
SCENE_OF_CLASS = {cls: scene for scene in SCENES for cls in scene.classes}


def _palette(scene: Scene, rng) -> np.ndarray:
    """(4, 3) colours: the scene's family or, as often as not, another's, jittered and lit."""
    family = scene if rng.random() < OWN_PALETTE_P else SCENES[rng.integers(len(SCENES))]
    colours = np.asarray(family.palette, np.float32) + rng.normal(0, 18, (4, 3))
    light = rng.uniform(0.55, 1.3) * (1 + rng.normal(0, 0.07, 3))
    return np.clip(colours * light, 0, 255).astype(np.float32)
