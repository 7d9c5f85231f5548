"""Small clips with exactly known content, which the tests of the early stages build on.

- one scene, rain-like noise over a slowly pulsing engine hum with a picture of falling
  streaks (`write_demo_clip`);
- clips of three sound kinds (steady tones, noise bursts, rising chirps), each with its own
  frame colour (`write_kind_clip`), named by `corpus_ytid`: tests/corpus.py builds its messy
  corpus from these, and lists them with tfambient.audioset.write_segments_csv.

The synthetic world of the demo (six scenes, a VOC 2007 tree; `tfambient-synth`) is
tfambient.world.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soxr

from tfambient import media

KIND_RATE = 22_050
KIND_FPS = 8
KIND_SIZE = (48, 64)  # height, width
KINDS = ("tone", "noise", "chirp")
KIND_COLOURS = {"tone": (200, 40, 40), "noise": (40, 200, 40), "chirp": (40, 40, 200)}


def rain_and_engine_audio(duration_s: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Rain (high-passed noise with random drops) over a 55 Hz hum modulated at 2 Hz."""
    t = np.arange(int(duration_s * rate)) / rate
    noise = rng.standard_normal(t.size)
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(t.size, 1 / rate) < 1500] = 0
    rain = np.fft.irfft(spectrum, t.size)
    drops = np.zeros(t.size)
    drops[rng.integers(0, t.size, int(40 * duration_s))] = rng.uniform(
        0.2, 1.0, int(40 * duration_s)
    )
    rain += np.convolve(drops, np.exp(-np.arange(200) / 30.0), mode="same") * rng.standard_normal(
        t.size
    )
    hum = (1 + 0.5 * np.sin(2 * np.pi * 2 * t)) * (
        np.sin(2 * np.pi * 55 * t) + 0.5 * np.sin(2 * np.pi * 110 * t)
    )
    audio = 0.15 * rain / rain.std() + 0.1 * hum
    return (audio / np.abs(audio).max() * 0.8).astype(np.float32)


def rain_frames(duration_s: float, fps: int, rng: np.random.Generator) -> np.ndarray:
    """Grey-blue frames with bright streaks that fall a few pixels per frame."""
    height, width = 96, 128
    num_frames = int(duration_s * fps)
    y, x = rng.uniform(0, height, 150), rng.integers(0, width, 150)
    rows = (y[None, :] + 6.0 * np.arange(num_frames)[:, None]) % height
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    frames[:] = (np.linspace(70, 120, height)[:, None, None] * np.array([0.8, 0.9, 1.1])).astype(
        np.uint8
    )
    for dy in range(5):  # a streak is 5 pixels long
        f_index = np.repeat(np.arange(num_frames), x.size)
        frames[f_index, ((rows + dy) % height).astype(int).ravel(), np.tile(x, num_frames)] = 220
    return frames


def write_demo_clip(path: str, duration_s: float = 6.0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    rate, fps = 44_100, 15
    media.write_video(
        path,
        rain_frames(duration_s, fps, rng),
        fps,
        rain_and_engine_audio(duration_s, rate, rng),
        rate,
    )


def kind_audio(kind: str, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Steady tones, 4 Hz noise bursts, or rising chirps, at a random level."""
    t = np.arange(int(duration_s * KIND_RATE)) / KIND_RATE
    if kind == "tone":
        f0 = rng.uniform(280, 320)
        audio = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 2 * f0 * t)
    elif kind == "noise":
        gate = (np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)) > 0).astype(float)
        audio = rng.standard_normal(t.size) * gate
    elif kind == "chirp":
        sweep = 1000 * 4 ** ((t % 0.5) / 0.5)  # 1 -> 4 kHz every half second
        audio = np.sin(2 * np.pi * np.cumsum(sweep) / KIND_RATE)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    return (rng.uniform(0.3, 0.8) * audio / np.abs(audio).max()).astype(np.float32)


def kind_frames(kind: str, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Frames of the kind's colour with a little noise."""
    shape = (int(duration_s * KIND_FPS), *KIND_SIZE, 3)
    frames = np.array(KIND_COLOURS[kind], float) + rng.normal(0, 12, shape)
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_kind_clip(
    path: Path, kind: str, duration_s: float = 5.0, seed: int = 0, audio: bool = True
) -> Path:
    """A clip of one kind: H.264 + AAC, or VP9 + Opus (at 48 kHz) for a .webm path."""
    rng = np.random.default_rng(seed)
    frames = kind_frames(kind, duration_s, rng)
    sound = kind_audio(kind, duration_s, rng) if audio else None
    rate, codecs = KIND_RATE, ("h264", "aac")
    if path.suffix == ".webm":
        rate, codecs = 48_000, ("libvpx-vp9", "libopus")
        if sound is not None:
            sound = soxr.resample(sound, KIND_RATE, rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    media.write_video(path, frames, KIND_FPS, sound, rate, *codecs)
    return path


def corpus_ytid(i: int) -> str:
    """An 11-character id with the '-' and '_' that real YouTube ids contain."""
    return f"-x_{i:08d}"
