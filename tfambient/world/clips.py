"""A scene's clip: its picture with objects and clutter, in gentle motion under a slow camera
pan, and its sound over a noise floor among nuisances."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal

from tfambient.world.pictures import CLIP_SIZE, _film, _grain, _grid
from tfambient.world.scenes import SCENE_OF_CLASS, SCENES, Scene, _palette
from tfambient.world.sounds import RATE, _events, _noise, _unit_rms
from tfambient.world.voc_tree import _place, draw_object

FPS = 8
CLIP_DURATION_S = 4.0
PAN_PX = 8  # the camera pans across up to this many pixels during a clip


# How often each nuisance (clicks, hiss, a stray tone, another scene) is in a clip; its RMS
# relative to the scene's sound is log-uniform in NUISANCE_LEVELS or, this often, louder.
NUISANCE_CHANCES = (0.4, 0.3, 0.3, 0.15)
NUISANCE_LEVELS = (0.01, 0.12)
# Every recording has a floor (microphone noise, a distant background): pink to brown noise
# at this RMS relative to the scene, so that no band is empty and decided by a faint nuisance.
FLOOR_LEVELS = (0.03, 0.06)
LOUD_NUISANCE_P = 0.05


def _clicks(t, rng) -> np.ndarray:
    events = _events(t.size, rng.uniform(1, 12), rng) * rng.choice([-1.0, 1.0], t.size)
    return signal.fftconvolve(events, np.exp(-np.arange(80) / 6.0))[: t.size]


def _hiss(t, rng) -> np.ndarray:
    return rng.standard_normal(t.size)


def _stray_tone(t, rng) -> np.ndarray:
    """A tone at 150 Hz-5 kHz, on for part of the clip (a phone, a whistle, mains hum)."""
    on, off = np.sort(rng.uniform(-0.5, 1.5, 2) * t[-1])
    return np.sin(2 * np.pi * np.exp(rng.uniform(np.log(150), np.log(5000))) * t) * (
        (t >= on) & (t <= off)
    )


def _other_scene(scene: Scene) -> Callable:
    others = [other for other in SCENES if other is not scene]
    return lambda t, rng: others[rng.integers(len(others))].sound(t, rng)


def _nuisances(t, scene: Scene, rng) -> np.ndarray:
    """Sounds that do not tell the scene, each present by chance at a random level relative
    to the scene's sound (RMS 1): mostly quiet, now and then as loud as the scene."""
    total = np.zeros(t.size)
    makers = (_clicks, _hiss, _stray_tone, _other_scene(scene))
    for chance, make in zip(NUISANCE_CHANCES, makers, strict=True):
        if rng.random() < chance:
            if rng.random() < LOUD_NUISANCE_P:
                level = rng.uniform(0.7, 1.5)
            else:
                level = np.exp(rng.uniform(*np.log(NUISANCE_LEVELS)))
            total += level * _unit_rms(make(t, rng))
    return total


def scene_audio(scene: Scene, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 mono at RATE Hz: the scene's sound over a noise floor with nuisances, at
    a random loudness."""
    t = np.arange(round(duration_s * RATE)) / RATE
    floor = _noise(t.size, rng, 20, 10_000, tilt=rng.uniform(1, 2)) * rng.uniform(*FLOOR_LEVELS)
    mix = _unit_rms(scene.sound(t, rng)) + floor + _nuisances(t, scene, rng)
    return (mix * rng.uniform(0.25, 0.8) / np.abs(mix).max()).astype(np.float32)


def _add_objects(image: np.ndarray, scene: Scene, rng) -> np.ndarray:
    """The scene's own objects (0-2) and clutter from other scenes (0-1, smaller); their mask."""
    height = image.shape[0]
    own = [scene.classes[i] for i in rng.integers(len(scene.classes), size=rng.integers(0, 3))]
    others = [c for c in SCENE_OF_CLASS if c not in scene.classes]
    clutter = [others[i] for i in rng.integers(len(others), size=rng.integers(0, 2))]
    mask = np.zeros(image.shape[:2], bool)
    for name, scale in [(c, (0.2, 0.5)) for c in own] + [(c, (0.1, 0.3)) for c in clutter]:
        where = _place(name, rng.uniform(*scale) * height, image.shape, rng)
        mask |= draw_object(image, name, where, rng)
    return mask


def _pan(rng) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) offsets of the camera in the canvas, at least PAN_PX / 2 apart on each
    axis, each axis either way."""
    near, far = rng.integers(0, PAN_PX // 4 + 1, 2), PAN_PX - rng.integers(0, PAN_PX // 4 + 1, 2)
    forward = rng.random(2) < 0.5
    return np.where(forward, near, far), np.where(forward, far, near)


def scene_frames(
    scene: Scene,
    duration_s: float,
    rng: np.random.Generator,
    size: tuple[int, int] = CLIP_SIZE,
    fps: int = FPS,
) -> np.ndarray:
    """(T, H, W, 3) uint8: the scene's picture, its objects and clutter, with the moving layer
    in motion, a slow camera pan and sensor grain."""
    height, width = size
    y, x = _grid(height + PAN_PX, width + PAN_PX)
    picture = scene.draw(y, x, _palette(scene, rng), rng)
    objects = picture.image.copy()
    in_objects = _add_objects(objects, scene, rng)
    num_frames = round(duration_s * fps)
    offsets = np.round(np.linspace(*_pan(rng), num_frames)).astype(int)  # (T, 2)
    rows = offsets[:, 0, None, None] + np.arange(height)[None, :, None]
    cols = offsets[:, 1, None, None] + np.arange(width)[None, None, :]
    frames = np.where(
        in_objects[rows, cols][..., None], objects[rows, cols], _film(picture, rows, cols)
    )
    return _grain(frames, rng, (2, 7))
