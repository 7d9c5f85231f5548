"""Generated AudioSet-like clips for the preparation tests: a few sound kinds, each with
its own frame colour, so that sound clusters can be checked against what made them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfambient import media

RATE = 22050
FPS = 8
HEIGHT, WIDTH = 48, 64
KINDS = ("tone", "noise", "chirp")
COLOURS = {"tone": (200, 40, 40), "noise": (40, 200, 40), "chirp": (40, 40, 200)}


def kind_audio(kind: str, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Steady tones, 4 Hz noise bursts, or rising chirps, at a random level."""
    t = np.arange(int(duration_s * RATE)) / RATE
    if kind == "tone":
        f0 = rng.uniform(280, 320)
        audio = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 2 * f0 * t)
    elif kind == "noise":
        gate = (np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)) > 0).astype(float)
        audio = rng.standard_normal(t.size) * gate
    elif kind == "chirp":
        phase_t = (t % 0.5) / 0.5  # a 1 -> 4 kHz sweep every half second
        freq = 1000 * 4**phase_t
        audio = np.sin(2 * np.pi * np.cumsum(freq) / RATE)
    else:
        raise ValueError(kind)
    audio = audio / np.abs(audio).max()
    return (rng.uniform(0.3, 0.8) * audio).astype(np.float32)


def kind_frames(kind: str, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Frames of the kind's colour with a little noise."""
    count = int(duration_s * FPS)
    base = np.array(COLOURS[kind], float)
    frames = base + rng.normal(0, 12, (count, HEIGHT, WIDTH, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_clip(
    path: Path, kind: str, duration_s: float = 5.0, seed: int = 0, audio: bool = True
) -> Path:
    rng = np.random.default_rng(seed)
    frames = kind_frames(kind, duration_s, rng)
    sound = kind_audio(kind, duration_s, rng) if audio else None
    codecs = {".webm": ("libvpx-vp9", "libopus")}.get(path.suffix, ("h264", "aac"))
    rate = 48000 if path.suffix == ".webm" else RATE
    if sound is not None and rate != RATE:
        sound = np.interp(
            np.arange(int(duration_s * rate)) / rate, np.arange(sound.size) / RATE, sound
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    media.write_video(path, frames, FPS, sound, rate, *codecs)
    return path


def ytid(i: int) -> str:
    """An 11-character id with the '-' and '_' that real YouTube ids contain."""
    return f"-x_{i:08d}"


def write_csv(path: Path, rows: list[tuple[str, float, float, str]]) -> Path:
    """A segments CSV in the official layout (three '#' lines, ', ' separators)."""
    lines = [
        "# Segments csv created by the tests",
        f"# num_ytids={len(rows)}, num_segs={len(rows)}",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    lines += [f'{y}, {s:.3f}, {e:.3f}, "{labels}"' for y, s, e, labels in rows]
    path.write_text("\n".join(lines) + "\n")
    return path
