"""Real FFTs at the awkward lengths of the texture descriptor's float64 input stage.

A 3.75 s window at 44.1 kHz is resampled to 74966 samples (2 x 37483, a prime) and
trimmed to 74950 (50 x 1499, a prime). scipy.fft runs such lengths through Bluestein's
algorithm on the full complex length, two to three times slower than the identities
below, which hand the same work to scipy.fft in pieces it runs fast: rows of short
transforms (vectorized across rows) and complex transforms of half the length.
Both are exact up to float64 rounding (tests/test_texture.py compares with scipy.fft).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft


def rfft_by_rows(signal: np.ndarray, factor: int) -> np.ndarray:
    """scipy.fft.rfft(signal, axis=-1) for a length that is a multiple of `factor`.

    One Cooley-Tukey step: with n = factor * rows, index i = factor * i1 + i2 and
    frequency k = k1 + rows * k2, the transform is `factor` transforms of length `rows`,
    a twiddle, then `rows` transforms of length `factor`, each batch in one call.
    """
    length = signal.shape[-1]
    rows = length // factor
    if rows * factor != length:
        raise ValueError(f"length {length} is not a multiple of {factor}")
    table = signal.reshape(*signal.shape[:-1], rows, factor)
    spectrum = scipy.fft.fft(table, axis=-2)  # over i1: (..., k1, i2)
    spectrum *= _twiddles(rows, factor)
    spectrum = scipy.fft.fft(spectrum, axis=-1, overwrite_x=True)  # over i2: (..., k1, k2)
    flat = np.swapaxes(spectrum, -1, -2).reshape(*signal.shape[:-1], length)
    return flat[..., : length // 2 + 1]


@functools.lru_cache(maxsize=8)
def _twiddles(rows: int, factor: int) -> np.ndarray:
    """exp(-2 pi i k1 i2 / n) for k1 < rows, i2 < factor."""
    product = np.outer(np.arange(rows), np.arange(factor))
    return np.exp(-2j * np.pi * product / (rows * factor))


def irfft(spectrum: np.ndarray, length: int) -> np.ndarray:
    """scipy.fft.irfft(spectrum, length, axis=-1): for even lengths, a complex inverse
    FFT of half the length over the packed pair (even samples, odd samples)."""
    if length % 2 or length < 4:
        return scipy.fft.irfft(spectrum, length, axis=-1)
    half = length // 2
    padded = np.zeros((*spectrum.shape[:-1], half + 1), complex)
    kept = min(spectrum.shape[-1], half + 1)
    padded[..., :kept] = spectrum[..., :kept]
    # irfft reads only the real parts of the DC and Nyquist bins.
    padded[..., [0, half]] = padded[..., [0, half]].real
    low, mirrored = padded[..., :half], np.conj(padded[..., half:0:-1])
    # low + mirrored: twice the even samples' spectrum; the rest: twice the odd ones'.
    packed = (low + mirrored) + 1j * ((low - mirrored) * _half_twiddles(length))
    pairs = scipy.fft.ifft(packed, axis=-1, overwrite_x=True)
    out = np.empty((*spectrum.shape[:-1], length))
    out[..., 0::2] = pairs.real
    out[..., 1::2] = pairs.imag
    out *= 0.5
    return out


@functools.lru_cache(maxsize=8)
def _half_twiddles(length: int) -> np.ndarray:
    """exp(2 pi i k / length) for k < length / 2."""
    return np.exp(2j * np.pi * np.arange(length // 2) / length)


def resample(signal: np.ndarray, num: int) -> np.ndarray:
    """scipy.signal.resample(signal, num, axis=-1) for real float64 signals.

    The same bins and scaling as scipy's real-input path; only the inverse FFT differs.
    """
    length = signal.shape[-1]
    common = min(num, length)
    spectrum = scipy.fft.rfft(signal, axis=-1)[..., : common // 2 + 1]
    if common % 2 == 0 and num != length:  # the unpaired bin at the lower Nyquist
        spectrum[..., common // 2] *= 2 if num < length else 0.5
    spectrum *= num / length
    return irfft(spectrum, num)
