"""Independent oracle for the 502-d sound texture vector (specs/sound-texture.md, section 1).

Written from the spec alone, step by step, float64, full-rate FFTs, no batching and no
band-limiting: slow but easy to check line by line against the spec. The shipped
implementation (tfambient.sound.texture) must stay within 2e-3 (max abs) of ``oracle_texture``.

Layout of the output: [0:32] envelope means, [32:64] normalized std devs, [64:181] 117 neighbour
correlations, [181:501] 32 x 10 modulation powers (band-major), [501] loudness (always 0).
"""

from __future__ import annotations

import numpy as np
import scipy.signal

MID_SR = 20000  # rate of the cochlear analysis (Hz)
ENV_SR = 400  # rate of the envelopes (Hz)
N_BANDS = 30  # cosine bands, plus a low-pass and a high-pass channel
N_CHANNELS = N_BANDS + 2
LOW_HZ, HIGH_HZ = 20.0, 10000.0
N_MOD = 10
MOD_LOW_HZ, MOD_HIGH_HZ = 0.5, 200.0
MOD_Q = 1.0
COMP_EXP = 0.3
CORR_OFFSETS = (1, 2, 3, 5)
EPS = float(np.finfo(np.float32).eps)
TEXTURE_DIM = 32 + 32 + 117 + 320 + 1


def erb(f):
    """ERB-number of a frequency in Hz."""
    return 9.265 * np.log(1.0 + np.asarray(f, dtype=np.float64) / (24.7 * 9.265))


def erb2freq(e):
    """Inverse of :func:`erb`."""
    return 24.7 * 9.265 * (np.exp(np.asarray(e, dtype=np.float64) / 9.265) - 1.0)


def oracle_erb_cutoffs() -> np.ndarray:
    """The 32 cochlear cutoffs (Hz), evenly spaced in ERB-number from 20 Hz to 10 kHz."""
    return erb2freq(np.linspace(erb(LOW_HZ), erb(HIGH_HZ), N_BANDS + 2))


def oracle_mod_centres() -> np.ndarray:
    """The 10 modulation-filter centre frequencies (Hz), log-spaced from 0.5 to 200 Hz."""
    return 2.0 ** np.linspace(np.log2(MOD_LOW_HZ), np.log2(MOD_HIGH_HZ), N_MOD)


def to_mono_float(x: np.ndarray) -> np.ndarray:
    """Float64 mono in [-1, 1]: integers scaled by their type's max, channels averaged."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        y = x.astype(np.float64) / float(np.iinfo(x.dtype).max)
    else:
        y = x.astype(np.float64)
    if y.ndim == 2:
        y = y.mean(axis=1)
    if y.ndim != 1:
        raise ValueError(f"expected 1-D or (n, channels) audio, got shape {x.shape}")
    return y


def resample_to_mid(x: np.ndarray, sr: int) -> np.ndarray:
    """Spec step 1: trim, FFT-resample to 20 kHz, clip, trim to a multiple of 50 samples."""
    f = MID_SR / sr
    n = int(np.floor(len(x) / f) * f)
    n -= n % 100
    x = x[:n]
    y = scipy.signal.resample(x, round(n * MID_SR / sr))
    y = np.clip(y, -1.0, 1.0)
    hop = MID_SR // ENV_SR  # 50
    return y[: (len(y) // hop) * hop]


def cochlear_filters(n: int) -> np.ndarray:
    """Spec step 2: (n // 2 + 1, 32) filter matrix on the rfft grid of length n at 20 kHz.

    Columns: [low-pass, band 1 .. band 30, high-pass].
    """
    freqs = np.fft.rfftfreq(n, 1.0 / MID_SR)
    cutoffs = oracle_erb_cutoffs()
    filters = np.zeros((len(freqs), N_CHANNELS))
    for k in range(N_BANDS):
        lo, hi = cutoffs[k], cutoffs[k + 2]
        inside = (freqs > lo) & (freqs < hi)
        mid = 0.5 * (erb(lo) + erb(hi))
        width = erb(hi) - erb(lo)
        filters[inside, k + 1] = np.cos(np.pi * (erb(freqs[inside]) - mid) / width)
    low = freqs < cutoffs[1]
    filters[low, 0] = np.sqrt(1.0 - filters[low, 1] ** 2)
    high = freqs > cutoffs[N_BANDS]
    filters[high, N_BANDS + 1] = np.sqrt(1.0 - filters[high, N_BANDS] ** 2)
    return filters


def subbands(x20k: np.ndarray) -> np.ndarray:
    """Spec step 2: (N, 32) subbands by zero-phase circular filtering in the rfft domain."""
    n = len(x20k)
    spectrum = np.fft.rfft(x20k)
    return np.fft.irfft(spectrum[:, None] * cochlear_filters(n), n=n, axis=0)


def envelopes_from_mid(x20k: np.ndarray) -> np.ndarray:
    """Spec step 3: compressed Hilbert envelopes, FFT-resampled to 400 Hz, clipped: (T, 32)."""
    sub = subbands(x20k)
    env = np.abs(scipy.signal.hilbert(sub, axis=0)) ** COMP_EXP
    t = round(len(x20k) * ENV_SR / MID_SR)
    env = scipy.signal.resample(env, t, axis=0)
    return np.clip(env, -1.0, 1.0)


def oracle_envelopes(x: np.ndarray, sr: int) -> np.ndarray:
    """Steps 1-3 from raw audio: the (T, 32) envelopes at 400 Hz."""
    return envelopes_from_mid(resample_to_mid(to_mono_float(x), sr))


def modulation_filters(t: int) -> np.ndarray:
    """Spec step 4: (t // 2 + 1, 10) modulation filters on the rfft grid of length t at 400 Hz."""
    freqs = np.fft.rfftfreq(t, 1.0 / ENV_SR)
    cfs = oracle_mod_centres()
    filters = np.zeros((len(freqs), N_MOD))
    for k, cf in enumerate(cfs):
        bw = cf / MOD_Q
        lo, hi = cf - bw, cf + bw
        inside = (freqs > lo) & (freqs < hi)
        filters[inside, k] = np.cos(np.pi * (freqs[inside] - cf) / (hi - lo))
    energy = np.sum(filters**2, axis=1)
    middle = (freqs >= cfs[3]) & (freqs <= cfs[6])
    return filters / np.sqrt(energy[middle].mean())


def texture_stats(env: np.ndarray) -> np.ndarray:
    """Spec step 4: the 502 statistics of (T, 32) envelopes, float64."""
    env = np.asarray(env, dtype=np.float64)
    n_bands = env.shape[1]
    mu = env.mean(axis=0)
    var = env.var(axis=0)
    std_norm = np.sqrt(var / (EPS + mu**2))

    corrs = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n_bands):
            for d in CORR_OFFSETS:
                if i + d < n_bands:
                    corrs.append(np.corrcoef(env[:, i], env[:, i + d])[0, 1])
    corrs = np.array(corrs)
    corrs[np.isnan(corrs)] = 0.0

    h = modulation_filters(env.shape[0])
    mod_power = np.zeros((n_bands, N_MOD))
    for j in range(n_bands):
        # irfft at its default (even) length, 2 * (nfreqs - 1), as the original code does.
        mods = np.fft.irfft(np.fft.rfft(env[:, j])[:, None] * h, axis=0)
        mod_power[j] = np.sqrt(np.mean(mods**2, axis=0) / (EPS + var[j]))

    loudness = np.zeros(1)
    out = np.concatenate([mu, std_norm, corrs, mod_power.ravel(), loudness])
    assert out.shape == (TEXTURE_DIM,)
    return out.astype(np.float32)


def oracle_texture(x: np.ndarray, sr: int) -> np.ndarray:
    """The (502,) float32 texture vector of audio ``x`` at rate ``sr``, straight from the spec."""
    return texture_stats(oracle_envelopes(x, sr))
