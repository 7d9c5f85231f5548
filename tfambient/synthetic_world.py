"""The synthetic audio-visual world: the whole paper in miniature, with nothing to download.

Six scene types (rain, road, forest, crowd, sea, wind) each have a look and a sound. A
clip's picture and its sound are drawn independently given its scene, so they relate only
through the scene, as in real video: predicting the sound's cluster from a frame is learnable
but not trivial. Looks are procedural (gradients, stripes, blobs, strokes, waves and object
shapes) under random pose, scale, palette, lighting and clutter, so a scene is told by
texture and shape rather than by its mean colour; sounds are mixed with nuisances (clicks,
broadband noise, a stray tone, another scene's sound) so the sound clusters are not perfect.

A synthetic PASCAL VOC 2007 tree shares those visual elements: each of the 20 classes is a
shape filled with the texture of one scene (a car with the road's, a bird with the forest's),
so features learned from the scenes' sounds help there. See docs/synthetic.md.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage, signal
from tqdm import tqdm

from tfambient import media
from tfambient.contracts.files import write_text
from tfambient.synthetic import write_segments_csv
from tfambient.voc import CLASSES
from tfambient.voc.dataset import VocObject, targets_of, write_annotation, write_image_sets

RATE = 22_050
FPS = 8
CLIP_SIZE = (96, 128)  # height, width
CLIP_DURATION_S = 4.0
PAN_PX = 8  # the camera pans across up to this many pixels during a clip

# The scene's own palette family is drawn this often; otherwise any scene's (its own too).
OWN_PALETTE_P = 0.4


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
# Scene sounds, at RATE Hz, each returned with unit RMS.


def _unit_rms(audio: np.ndarray) -> np.ndarray:
    return audio / max(float(np.sqrt(np.mean(audio**2))), 1e-9)


def _noise(n: int, rng, low: float, high: float, tilt: float = 0.0) -> np.ndarray:
    """Noise band-limited to [low, high] Hz whose power falls as f^-tilt (1: pink)."""
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    gain = ((freqs >= low) & (freqs <= high)) / np.maximum(freqs, 1.0) ** (tilt / 2)
    return _unit_rms(np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * gain, n))


def _wander(t: np.ndarray, rate_hz: float, rng) -> np.ndarray:
    """A smooth random curve in [0, 1] that changes about ``rate_hz`` times a second."""
    knots = np.arange(-1, t[-1] * rate_hz + 3) / rate_hz
    return np.interp(t, knots, rng.uniform(0, 1, knots.size))


def _events(n: int, per_second: float, rng) -> np.ndarray:
    """Impulses at random times (a Poisson process) with random sizes."""
    count = rng.poisson(per_second * n / RATE)
    impulses = np.zeros(n)
    np.add.at(impulses, rng.integers(0, n, count), rng.uniform(0.3, 1.0, count))
    return impulses


def _phase(freq: np.ndarray) -> np.ndarray:
    """Phase (radians) of an oscillator following the instantaneous frequency ``freq``."""
    return 2 * np.pi * np.cumsum(freq) / RATE


def _sound_rain(t, rng) -> np.ndarray:
    """Hiss above 1-2.5 kHz and dense drops: impulses ringing as short noise bursts."""
    n = t.size
    hiss = _noise(n, rng, rng.uniform(1000, 2500), 10_000, tilt=0.5)
    decay = np.exp(-np.arange(300) / rng.uniform(15, 45)) * rng.standard_normal(300)
    drops = _unit_rms(signal.fftconvolve(_events(n, rng.uniform(30, 90), rng), decay)[:n])
    return hiss + rng.uniform(0.4, 1.0) * drops


def _sound_road(t, rng) -> np.ndarray:
    """An engine hum (harmonics of 35-70 Hz) pulsing slowly, tyre rumble, a car passing."""
    f0 = rng.uniform(35, 70) * (1 + 0.08 * (_wander(t, 0.5, rng) - 0.5))
    k = np.arange(1, 9)[:, None]
    harmonics = rng.uniform(0.3, 1.0, (8, 1)) / k**0.7
    hum = (harmonics * np.sin(k * _phase(f0) + rng.uniform(0, 2 * np.pi, (8, 1)))).sum(0)
    pulse = 1 + rng.uniform(0.3, 0.7) * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t)
    passing = rng.uniform(0, 1.5) * np.exp(-(((t - rng.uniform(0, t[-1])) / 0.6) ** 2))
    tyres = _noise(t.size, rng, 60, 6000, tilt=1.2) * (0.4 + passing)
    return _unit_rms(hum * pulse) + rng.uniform(0.3, 0.7) * tyres


def _birdcall(rng) -> np.ndarray:
    """One species' call: a short sweep between 2 and 7 kHz under a Hann window."""
    length = int(rng.uniform(0.04, 0.18) * RATE)
    start = rng.uniform(2500, 5500)
    sweep = np.linspace(start, np.clip(start + rng.uniform(-2000, 2000), 2000, 7000), length)
    return np.sin(_phase(sweep)) * np.hanning(length)


def _sound_forest(t, rng) -> np.ndarray:
    """Bird calls of two species repeated at random times over a leafy rustle and the low
    rumble of wind in the canopy."""
    n = t.size
    song = sum(
        signal.fftconvolve(_events(n, rng.uniform(3, 10), rng), _birdcall(rng))[:n]
        for _ in range(2)
    )
    rustle = _noise(n, rng, 1000, 9000, tilt=0.5) * (0.4 + _wander(t, 2.0, rng))
    canopy = _noise(n, rng, 30, 1500, tilt=1.0)
    return _unit_rms(song) + rng.uniform(0.05, 0.15) * rustle + rng.uniform(0.1, 0.25) * canopy


def _voice(t, rng) -> np.ndarray:
    """A speech-like voice: a buzz at 90-240 Hz through formants that move every syllable."""
    f0 = rng.uniform(90, 240) * (1 + 0.12 * (_wander(t, 3.0, rng) - 0.5))
    buzz = 2 * ((_phase(f0) / (2 * np.pi)) % 1.0) - 1  # a sawtooth: every harmonic
    freqs, times, spectrum = signal.stft(buzz, RATE, nperseg=512)
    syllable_hz = rng.uniform(3, 6)
    f1 = 300 + 500 * _wander(times, syllable_hz, rng)
    f2 = 900 + 1500 * _wander(times, syllable_hz, rng)
    formants = np.exp(-(((freqs[:, None] - f1) / 90) ** 2)) + 0.6 * np.exp(
        -(((freqs[:, None] - f2) / 150) ** 2)
    )
    voiced = np.clip((_wander(times, syllable_hz, rng) - 0.3) * 3, 0, 1)
    return signal.istft(spectrum * formants * voiced, RATE, nperseg=512)[1][: t.size]


def _sound_crowd(t, rng) -> np.ndarray:
    """Babble: several voices talking at once over a murmur."""
    babble = sum(_voice(t, rng) for _ in range(rng.integers(3, 7)))
    return _unit_rms(babble) + rng.uniform(0.1, 0.2) * _noise(t.size, rng, 100, 4000, tilt=1.5)


def _sound_sea(t, rng) -> np.ndarray:
    """Surf: low roar swelling with waves every 4-9 s, hissing wash after each crest."""
    swell = (0.5 + 0.5 * np.sin(2 * np.pi * t / rng.uniform(4, 9) + rng.uniform(0, 2 * np.pi))) ** 2
    roar = _noise(t.size, rng, 30, 1200, tilt=1.0) * (0.2 + swell)
    wash = _noise(t.size, rng, 1500, 8000, tilt=0.5) * np.roll(swell, int(0.5 * RATE))
    return roar + rng.uniform(0.15, 0.5) * wash


def _sound_wind(t, rng) -> np.ndarray:
    """Gusty low rumble, rushing air, and a whistle: narrow-band noise around a wandering
    350-1000 Hz."""
    gusts = 0.2 + _wander(t, rng.uniform(0.5, 1.5), rng)
    rumble = _noise(t.size, rng, 20, 400, tilt=1.5)
    air = rng.uniform(0.15, 0.4) * _noise(t.size, rng, 300, 8000, tilt=1.0)
    centre = rng.uniform(350, 1000) * (1 + 0.4 * (_wander(t, 1.0, rng) - 0.5))
    whistle = _noise(t.size, rng, 0, rng.uniform(20, 60)) * np.cos(_phase(centre))
    return (rumble + air + rng.uniform(0.3, 0.9) * whistle) * gusts


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


def _palette(scene: Scene, rng) -> np.ndarray:
    """(4, 3) colours: the scene's family or, as often as not, another's, jittered and lit."""
    family = scene if rng.random() < OWN_PALETTE_P else SCENES[rng.integers(len(SCENES))]
    colours = np.asarray(family.palette, np.float32) + rng.normal(0, 18, (4, 3))
    light = rng.uniform(0.55, 1.3) * (1 + rng.normal(0, 0.07, 3))
    return np.clip(colours * light, 0, 255).astype(np.float32)


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
# Clips: a scene's picture in gentle motion, and its sound among nuisances.

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


# ---------------------------------------------------------------------------------------
# Writing the world.

WORLD_FORMAT = "tfambient synthetic world"
WORLD_VERSION = 1
MANIFEST = "world.json"
PARTIAL = ".synth-partial"  # hidden: media indexing and listings skip it
MIN_DURATION_S = 3.75  # tfambient-prepare's default audio window
MIN_VOC_IMAGES = 4 * len(CLASSES)  # every class positive in train, val and test
_CLIP_STREAM, _VOC_STREAM, _PLAN_STREAM = 0, 1, 2
JPEG_QUALITY = 90


def world_ytid(i: int) -> str:
    """An 11-character id with '-' and '_' as real YouTube ids have, unlike the toy corpus's."""
    return f"-w_{i:08d}"


@dataclass(frozen=True)
class _ClipJob:
    path: Path
    scene: str
    duration_s: float
    seed: tuple[int, ...]


@dataclass(frozen=True)
class _ImageJob:
    voc2007: Path
    image_id: str
    primary: str
    seed: tuple[int, ...]


def _write_clip(job: _ClipJob) -> None:
    """One clip; its picture and its sound come from independent streams of its seed."""
    scene = SCENE_BY_NAME[job.scene]
    pictures, sounds = np.random.default_rng(job.seed).spawn(2)
    frames = scene_frames(scene, job.duration_s, pictures)
    media.write_video(job.path, frames, FPS, scene_audio(scene, job.duration_s, sounds), RATE)


def _write_image(job: _ImageJob) -> tuple[VocObject, ...]:
    """One JPEG and its annotation; returns the image's objects for the split lists."""
    drawn = voc_image(job.primary, np.random.default_rng(job.seed))
    buffer = io.BytesIO()
    Image.fromarray(drawn.pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    (job.voc2007 / "JPEGImages" / f"{job.image_id}.jpg").write_bytes(buffer.getvalue())
    height, width = drawn.pixels.shape[:2]
    path = job.voc2007 / "Annotations" / f"{job.image_id}.xml"
    write_annotation(path, f"{job.image_id}.jpg", width, height, drawn.objects)
    return drawn.objects


def _plan_corpus(corpus: Path, clips: int, duration_s: float, seed: int):
    """(jobs, CSV rows): scenes balanced and shuffled, segment starts at random seconds."""
    rng = np.random.default_rng([seed, _PLAN_STREAM])
    scenes = np.asarray(SCENE_NAMES)[rng.permutation(np.arange(clips) % len(SCENES))]
    starts = rng.integers(0, 300, clips).astype(float)
    jobs, rows = [], []
    for i, (scene, start) in enumerate(zip(scenes, starts, strict=True)):
        ytid = world_ytid(i)
        path = corpus / "clips" / f"{ytid}_{start:.3f}.mp4"
        jobs.append(_ClipJob(path, str(scene), duration_s, (seed, _CLIP_STREAM, i)))
        rows.append((ytid, start, start + duration_s, SCENE_BY_NAME[scene].mid))
    return jobs, rows


def _plan_voc(voc2007: Path, sizes: dict[str, int], seed: int) -> dict[str, list[_ImageJob]]:
    """Image jobs per split, ids numbered on through train, val and test."""
    rng = np.random.default_rng([seed, _PLAN_STREAM, _VOC_STREAM])
    jobs: dict[str, list[_ImageJob]] = {}
    first = 1
    for split, count in sizes.items():
        ids = [f"{first + i:06d}" for i in range(count)]
        primaries = _primaries(count, rng)
        jobs[split] = [
            _ImageJob(voc2007, image_id, str(cls), (seed, _VOC_STREAM, int(image_id)))
            for image_id, cls in zip(ids, primaries, strict=True)
        ]
        first += count
    return jobs


def _write_ontology(path: Path) -> None:
    lines = [f'{i},{scene.mid},"{scene.display_name}"' for i, scene in enumerate(SCENES)]
    path.write_text("index,mid,display_name\n" + "\n".join(lines) + "\n")


def _call(call: tuple[Callable, object]):
    function, job = call
    return function(job)


def _results(calls: list[tuple[Callable, object]], num_workers: int) -> Iterator:
    """``function(job)`` of each call, in order, from ``num_workers`` processes (0: this one).
    They fork from a clean server: the caller may hold threads (TensorFlow)."""
    if num_workers == 0:
        yield from map(_call, calls)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    chunk = max(1, len(calls) // (16 * num_workers))
    with ProcessPoolExecutor(num_workers, mp_context=context) as pool:
        yield from pool.map(_call, calls, chunksize=chunk)


def _check_settings(clips: int, voc_images: int, duration_s: float, num_workers: int) -> None:
    if clips < 1:
        raise ValueError(f"clips must be at least 1, got {clips}")
    if voc_images < MIN_VOC_IMAGES:
        raise ValueError(
            f"voc_images must be at least {MIN_VOC_IMAGES} (each of the {len(CLASSES)} classes "
            f"positive in train, val and twice in test), got {voc_images}"
        )
    if duration_s < MIN_DURATION_S:
        raise ValueError(
            f"duration_s must be at least {MIN_DURATION_S} (tfambient-prepare's audio window), "
            f"got {duration_s}"
        )
    if num_workers < 0:
        raise ValueError(f"num_workers must be 0 (this process) or more, got {num_workers}")


def read_manifest(output_dir: str | os.PathLike[str]) -> dict | None:
    """The world.json of a finished world in ``output_dir``, or None if there is none."""
    path = Path(output_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable ({error}); remove it or pass overwrite") from None
    if not isinstance(manifest, dict) or manifest.get("format") != WORLD_FORMAT:
        raise ValueError(f"{path}: not a {WORLD_FORMAT} manifest")
    return manifest


def _check_replaceable(output: Path, existing: dict | None, settings: dict) -> None:
    """Refuse to replace a world made with other settings, or a tree we did not finish."""
    if existing is not None:
        old = existing.get("settings", {})
        changed = ", ".join(
            f"{key} {old.get(key)} (asked {value})"
            for key, value in settings.items()
            if old.get(key) != value
        )
        raise ValueError(
            f"{output} holds a world written with other settings: {changed}; "
            "pass overwrite (--overwrite) to replace it"
        )
    for name in ("corpus", "VOCdevkit"):
        if (output / name).exists():
            raise ValueError(
                f"{output / name} exists but {output / MANIFEST} does not (an interrupted run, "
                "or not ours); pass overwrite (--overwrite) to replace it"
            )


@dataclass(frozen=True)
class World:
    manifest: dict  # world.json
    written: bool  # False: a world with the same settings was there already


def write_world(
    output_dir: str | os.PathLike[str],
    *,
    clips: int,
    voc_images: int,
    seed: int = 0,
    duration_s: float = CLIP_DURATION_S,
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> World:
    """Write ``output_dir/corpus`` (clips/, segments.csv, class_labels_indices.csv) and
    ``output_dir/VOCdevkit/VOC2007``, then ``output_dir/world.json``, its manifest.

    The same seed and sizes write the same files, whatever ``num_workers`` (processes; 0:
    this one). Everything is
    written under ``output_dir/.synth-partial`` and moved into place when complete, and the
    manifest comes last: a tree without world.json is unfinished. If a world with the same
    settings is already there, nothing is written.
    """
    _check_settings(clips, voc_images, duration_s, num_workers)
    output = Path(output_dir)
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output} is a file, not a directory")
    settings = {
        "version": WORLD_VERSION,
        "seed": seed,
        "clips": clips,
        "voc_images": voc_images,
        "duration_s": float(duration_s),
        "fps": FPS,
        "audio_rate": RATE,
        "clip_size": list(CLIP_SIZE),
        "voc_size": list(VOC_SIZE),
    }
    existing = read_manifest(output)
    if existing is not None and existing["settings"] == settings and not overwrite:
        return World(existing, written=False)
    if not overwrite:
        _check_replaceable(output, existing, settings)
    staging = output / PARTIAL
    shutil.rmtree(staging, ignore_errors=True)
    try:
        manifest = _write_staged(staging, settings, num_workers, progress)
        _move_into_place(staging, output)
        write_text(output / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return World(manifest, written=True)


def _move_into_place(staging: Path, output: Path) -> None:
    """Replace corpus/ and VOCdevkit/ by the staged ones; the old manifest goes first."""
    (output / MANIFEST).unlink(missing_ok=True)
    for name in ("corpus", "VOCdevkit"):
        shutil.rmtree(output / name, ignore_errors=True)
        os.replace(staging / name, output / name)


def _write_staged(staging: Path, settings: dict, num_workers: int, progress: bool) -> dict:
    corpus, voc2007 = staging / "corpus", staging / "VOCdevkit" / "VOC2007"
    for directory in (corpus / "clips", voc2007 / "JPEGImages", voc2007 / "Annotations"):
        directory.mkdir(parents=True)
    seed = settings["seed"]
    clip_jobs, rows = _plan_corpus(corpus, settings["clips"], settings["duration_s"], seed)
    image_jobs = _plan_voc(voc2007, voc_split_sizes(settings["voc_images"]), seed)
    calls = [(_write_clip, job) for job in clip_jobs]
    calls += [(_write_image, job) for jobs in image_jobs.values() for job in jobs]
    bar = tqdm(_results(calls, num_workers), "synth", len(calls), unit="file", disable=not progress)
    objects = iter(list(bar)[len(clip_jobs) :])
    write_segments_csv(corpus / "segments.csv", rows)
    _write_ontology(corpus / "class_labels_indices.csv")
    split_objects = {split: [next(objects) for _ in jobs] for split, jobs in image_jobs.items()}
    split_objects["trainval"] = split_objects["train"] + split_objects["val"]
    ids = {split: [job.image_id for job in jobs] for split, jobs in image_jobs.items()}
    ids["trainval"] = ids["train"] + ids["val"]
    for split, per_image in split_objects.items():
        targets = np.stack([targets_of(image) for image in per_image])
        write_image_sets(voc2007, split, ids[split], targets)
    return _manifest(settings, [job.scene for job in clip_jobs], split_objects)


def _manifest(settings: dict, clip_scenes: list[str], split_objects: dict) -> dict:
    def counts(images):
        flat = [o for image in images for o in image]
        return {
            "images": len(images),
            "objects": len(flat),
            "difficult": sum(o.difficult for o in flat),
            "truncated": sum(o.truncated for o in flat),
        }

    return {
        "format": WORLD_FORMAT,
        "settings": settings,
        "scenes": {
            s.name: {"mid": s.mid, "display_name": s.display_name, "voc_classes": list(s.classes)}
            for s in SCENES
        },
        "clips": {name: clip_scenes.count(name) for name in SCENE_NAMES},
        "voc": {split: counts(images) for split, images in split_objects.items()},
    }
