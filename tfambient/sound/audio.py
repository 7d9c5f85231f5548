"""Checks and conversions every sound descriptor applies to its input windows.

Descriptors accept what media decoders and users hand them (any PCM dtype, mono or
multi-channel) and turn it into float64 mono in [-1, 1], refusing what would silently
give garbage: empty or very short windows, NaN/Inf, non-numeric dtypes, low rates.
"""

from __future__ import annotations

import numpy as np

MIN_WINDOW_S = 1.0
MIN_RATE = 8000


class InvalidAudio(ValueError):
    """A window that no descriptor can be computed from; the message names the problem."""


def to_float(samples: np.ndarray) -> np.ndarray:
    """Float64 samples; integer PCM scaled by its type's max, as the original code did."""
    samples = np.asarray(samples)
    if samples.dtype == np.bool_ or not (
        np.issubdtype(samples.dtype, np.integer) or np.issubdtype(samples.dtype, np.floating)
    ):
        raise InvalidAudio(
            f"unsupported sample dtype {samples.dtype}; expected float or integer PCM"
        )
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float64) / np.iinfo(samples.dtype).max
    return samples.astype(np.float64, copy=False)


def mono_batch(windows: np.ndarray, rate: int) -> np.ndarray:
    """(B, n) float64 mono windows from (B, n) or (B, n, channels) PCM, validated."""
    windows = np.asarray(windows)
    if windows.ndim not in (2, 3):
        raise InvalidAudio(
            f"expected a batch of windows shaped (B, n) or (B, n, channels), got {windows.shape}"
        )
    check_rate(rate)
    samples = to_float(windows)
    if samples.ndim == 3:
        samples = samples.mean(axis=2)
    check_length(samples.shape[1], rate)
    if not np.isfinite(samples).all():
        bad = np.flatnonzero(~np.isfinite(samples).all(axis=1))
        raise InvalidAudio(f"window(s) {bad.tolist()[:10]} contain NaN or Inf samples")
    return samples


def as_batch(samples: np.ndarray) -> np.ndarray:
    """One window, (n,) or (n, channels), as a batch of one (no conversion)."""
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2):
        raise InvalidAudio(f"expected a window shaped (n,) or (n, channels), got {samples.shape}")
    return samples[np.newaxis]


def check_rate(rate: int) -> None:
    if not rate or rate < MIN_RATE:
        raise InvalidAudio(f"sample rate {rate} Hz is below the {MIN_RATE} Hz minimum")


def check_length(num_samples: int, rate: int) -> None:
    if num_samples == 0:
        raise InvalidAudio("window is empty")
    if num_samples < MIN_WINDOW_S * rate:
        raise InvalidAudio(
            f"window is {num_samples / rate:.3f} s long; "
            f"sound descriptors need at least {MIN_WINDOW_S:g} s"
        )
