"""MFCC descriptors (spec: sound-texture.md, section 2), as the 2019 reproduction used them.

librosa computes the coefficients; this module only fixes the rate, the frame count and
the two fixed-size layouts: the flattened (20, 162) matrix and a 40-d mean/std summary.
"""

from __future__ import annotations

import librosa
import numpy as np
import soxr

from tfambient.sound.audio import mono_batch

MFCC_RATE = 22_050
NUM_COEFFICIENTS = 20
NUM_FRAMES = 162  # librosa's centred frames for 3.75 s at 22.05 kHz with hop 512
PARAMS = {
    "rate": MFCC_RATE,
    "n_mfcc": NUM_COEFFICIENTS,
    "n_fft": 2048,
    "hop_length": 512,
    "n_mels": 128,
    "num_frames": NUM_FRAMES,
    "resampler": "soxr HQ",
}


def mfcc_frames(windows: np.ndarray, rate: int) -> np.ndarray:
    """(B, n) or (B, n, channels) PCM windows at `rate` -> (B, 20, 162) MFCCs."""
    return mfcc_frames_of_mono(mono_batch(windows, rate), rate)


def mfcc_frames_of_mono(samples: np.ndarray, rate: int) -> np.ndarray:
    """(B, n) validated float64 mono windows -> (B, 20, 162), zero-padded or trimmed in time."""
    if rate != MFCC_RATE:
        # soxr takes (frames, channels): one call resamples the whole batch.
        samples = soxr.resample(samples.T, rate, MFCC_RATE, quality="HQ").T
    mel = librosa.feature.melspectrogram(
        y=np.ascontiguousarray(samples, dtype=np.float32), sr=MFCC_RATE
    )
    # What librosa.feature.mfcc(y=...) does, but with each window's decibels floored at 80 dB
    # below its own peak, as when it is described alone: power_to_db's top_db takes the
    # peak of the whole array it is given, which would make a window depend on its batch.
    decibels = np.stack([librosa.power_to_db(window) for window in mel])
    coefficients = librosa.feature.mfcc(S=decibels, n_mfcc=NUM_COEFFICIENTS)
    return librosa.util.fix_length(coefficients, size=NUM_FRAMES, axis=-1)


def flatten(frames: np.ndarray) -> np.ndarray:
    """(B, 20, 162) -> (B, 3240), coefficient-major: the reproduction's representation."""
    return frames.reshape(frames.shape[0], -1).astype(np.float32)


def summarize(frames: np.ndarray) -> np.ndarray:
    """(B, 20, 162) -> (B, 40): per-coefficient mean then per-coefficient std over time."""
    return np.concatenate([frames.mean(axis=2), frames.std(axis=2)], axis=1).astype(np.float32)
