"""Synthetic audio-visual clips, so that every command can be tried with nothing to download.

For now one scene: rain-like noise over a slowly pulsing engine hum, with a picture of
falling streaks; `python -m tfambient.synthetic --output clip.mp4` writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import flags

from tfambient import media
from tfambient.cli.common import run

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "demo/rain_and_engine.mp4", "Where to write the clip.")
flags.DEFINE_float("duration_s", 6.0, "Clip length in seconds.", lower_bound=1.0)
flags.DEFINE_integer("seed", 0, "Random seed: the same seed writes the same clip.")


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


def main(argv: list[str]) -> None:
    Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
    write_demo_clip(FLAGS.output, FLAGS.duration_s, FLAGS.seed)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    run(main)
