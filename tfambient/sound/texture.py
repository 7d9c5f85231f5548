"""The 502-d sound-texture statistics of Owens et al. (spec: sound-texture.md, section 1).

The published recipe filters a 20 kHz signal into 32 cochlear bands, takes each band's
Hilbert envelope at the full rate, compresses it and only then downsamples it to 400 Hz:
about a hundred full-length FFTs per window. This module computes the same numbers with
a fraction of the work:

* A band's analytic signal has non-zero spectrum only on the band's own bins, so it is a
  trigonometric polynomial of low degree that can be evaluated exactly at any number
  ``M`` of evenly spaced points with one inverse FFT of size ``M`` over those bins
  (demodulated to start at bin 0, which changes the phase and not the magnitude).
  Channels go in groups of four of similar bandwidth, each group evaluated at an ``M``
  of 20 times its widest band's bandwidth (at least the envelope length, at most about
  N), rounded up to a fast FFT size, in complex64.
* Compression then downsampling to 400 Hz by FFT keeps the envelope spectrum below
  200 Hz; at the reduced rate that spectrum picks up only the compressed envelope's
  content near multiples of the reduced rate, which is small at that oversampling.
  Only the kept bins leave the band stage; one inverse FFT per window gives the
  envelopes, and when clipping changed nothing their spectra serve the statistics.
* Modulation power uses Parseval instead of 320 inverse FFTs per window.
* The float64 input stage (resampling, the rfft of N samples) uses the identities in
  realfft.py, where scipy.fft is slow at these lengths.
* Windows of equal length are processed as a batch through every FFT.

Agreement with a literal implementation of the spec is tested to 2e-3 (tests/).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.signal

from tfambient.sound import realfft
from tfambient.sound.audio import as_batch, mono_batch

ANALYSIS_RATE = 20_000
ENVELOPE_RATE = 400
NUM_BANDS = 30
NUM_CHANNELS = NUM_BANDS + 2  # plus the low-pass and high-pass channels
LOW_HZ, HIGH_HZ = 20.0, 10_000.0
COMPRESSION = 0.3
CORRELATION_OFFSETS = (1, 2, 3, 5)
NUM_MOD_FILTERS = 10
MOD_LOW_HZ, MOD_HIGH_HZ, MOD_Q = 0.5, 200.0, 1.0
EPS = float(np.finfo(np.float32).eps)
# A band whose envelope's std is below this fraction of its mean is constant up to rounding
# (a steady pure tone, DC): its correlations are rounding noise, so like the spec's
# zero-variance bands it gets correlation 0. The band stage runs in float32, which leaves a
# constant band a relative std of ~1e-7; real sound measures >= 1e-4.
CONSTANT_BAND_STD = 1e-6

# Evaluation points per bin of a band's bandwidth. Compression puts cusps at the envelope's
# minima, so its spectrum decays only like f^-1.3 and what lies beyond M/2 aliases into the
# kept 0..200 Hz. With groups of four channels at 20x their widest, the statistics stay
# within 7.3e-4 of the literal recipe on every test signal (sweep in
# docs/sound-descriptors.md). Wide bands hit the cap: the first fast FFT size >= N, where
# the aliasing is the literal recipe's own.
OVERSAMPLE_BANDWIDTH = 20.0
# Channels sharing one size M: pocketfft runs a call's rows together in SIMD lanes (four
# float32 transforms at once), so four channels cost little more than one.
CHANNELS_PER_GROUP = 4
# (window, channel) rows per FFT call in the band stage: enough to fill the SIMD lanes,
# few enough that every intermediate of the call stays in the CPU cache.
ROWS_PER_CALL = 8
WINDOWS_PER_CALL = 4  # see texture_of_mono

_PAIRS = [
    (i, i + d) for i in range(NUM_CHANNELS) for d in CORRELATION_OFFSETS if i + d < NUM_CHANNELS
]
SLOTS = {
    "envelope_mean": slice(0, 32),
    "envelope_std": slice(32, 64),
    "envelope_corr": slice(64, 64 + len(_PAIRS)),
    "modulation_power": slice(181, 501),
    "loudness": slice(501, 502),
}
TEXTURE_DIM = 502
PARAMS = {
    "analysis_rate": ANALYSIS_RATE,
    "envelope_rate": ENVELOPE_RATE,
    "num_bands": NUM_BANDS,
    "low_hz": LOW_HZ,
    "high_hz": HIGH_HZ,
    "compression": COMPRESSION,
    "correlation_offsets": list(CORRELATION_OFFSETS),
    "num_mod_filters": NUM_MOD_FILTERS,
    "mod_low_hz": MOD_LOW_HZ,
    "mod_high_hz": MOD_HIGH_HZ,
    "mod_q": MOD_Q,
    "normalize_envelopes": False,
    "constant_band_std": CONSTANT_BAND_STD,
    "oversample_bandwidth": OVERSAMPLE_BANDWIDTH,
    "channels_per_group": CHANNELS_PER_GROUP,
    "band_dtype": "complex64",
}


def freq_to_erb(freq_hz):
    return 9.265 * np.log1p(np.asarray(freq_hz) / (24.7 * 9.265))


def erb_to_freq(erb):
    return 24.7 * 9.265 * np.expm1(np.asarray(erb) / 9.265)


def erb_cutoffs() -> np.ndarray:
    """The 32 cutoffs (Hz), evenly spaced in ERB number; band k spans cutoffs k-1..k+1."""
    return erb_to_freq(np.linspace(freq_to_erb(LOW_HZ), freq_to_erb(HIGH_HZ), NUM_BANDS + 2))


def modulation_centres() -> np.ndarray:
    """Centres (Hz) of the 10 modulation filters, log-spaced from 0.5 to 200 Hz."""
    return np.exp2(np.linspace(np.log2(MOD_LOW_HZ), np.log2(MOD_HIGH_HZ), NUM_MOD_FILTERS))


@functools.lru_cache(maxsize=16)
def cochlear_filters(length: int) -> np.ndarray:
    """(length // 2 + 1, 32) responses on the rfft grid of a 20 kHz signal of `length`."""
    freqs = np.fft.rfftfreq(length, 1.0 / ANALYSIS_RATE)
    erbs = freq_to_erb(freqs)
    cutoffs = erb_cutoffs()
    lo, hi = freq_to_erb(cutoffs[:-2]), freq_to_erb(cutoffs[2:])
    inside = (freqs[:, None] > cutoffs[None, :-2]) & (freqs[:, None] < cutoffs[None, 2:])
    bands = np.where(inside, np.cos(np.pi * (erbs[:, None] - (lo + hi) / 2) / (hi - lo)), 0.0)
    lowpass = np.where(freqs < cutoffs[1], np.sqrt(np.clip(1 - bands[:, 0] ** 2, 0, None)), 0.0)
    highpass = np.where(
        freqs > cutoffs[NUM_BANDS], np.sqrt(np.clip(1 - bands[:, -1] ** 2, 0, None)), 0.0
    )
    return np.column_stack([lowpass, bands, highpass])


@functools.lru_cache(maxsize=16)
def modulation_filters(length: int) -> np.ndarray:
    """(length // 2 + 1, 10) half-cosine filters on the rfft grid of a 400 Hz envelope."""
    freqs = np.fft.rfftfreq(length, 1.0 / ENVELOPE_RATE)
    centres = modulation_centres()
    half_width = centres / MOD_Q
    inside = np.abs(freqs[:, None] - centres) < half_width
    filters = np.where(inside, np.cos(np.pi * (freqs[:, None] - centres) / (2 * half_width)), 0.0)
    middle = (freqs >= centres[3]) & (freqs <= centres[6])
    return filters / np.sqrt(np.mean(np.sum(filters[middle] ** 2, axis=1)))


class _BandGroup:
    """Channels evaluated at the same number of points: a gather index and weights.

    The weights hold the filter, the analytic signal's factor 2 and M / N, so that the
    inverse FFT of size M (which divides by M) gives the spec's analytic signal (1 / N).
    """

    def __init__(self, num_points: int, length: int, members: list[tuple[int, int, np.ndarray]]):
        self.num_points = num_points
        self.channels = np.array([channel for channel, _, _ in members])
        self.width = max(len(weights) for _, _, weights in members)
        self.bins = np.zeros((len(members), self.width), dtype=np.intp)
        self.weights = np.zeros((len(members), self.width), np.float32)
        for row, (_, start, weights) in enumerate(members):
            self.bins[row, : len(weights)] = start + np.arange(len(weights))
            self.weights[row, : len(weights)] = weights * (num_points / length)


def envelope_length(length: int) -> int:
    """Samples of the 400 Hz envelope of a 20 kHz signal of `length` (a multiple of 50)."""
    return length * ENVELOPE_RATE // ANALYSIS_RATE


@functools.lru_cache(maxsize=16)
def _band_plan(length: int) -> tuple[_BandGroup, ...]:
    """For a 20 kHz signal of even `length`: the channels in groups of CHANNELS_PER_GROUP
    of similar bandwidth, each group evaluated at one fast size M (at most ~N)."""
    filters = cochlear_filters(length)
    # The analytic signal doubles positive frequencies; DC and Nyquist keep weight 1.
    analytic = np.full(filters.shape[0], 2.0)
    analytic[0] = analytic[-1] = 1.0
    members = []
    for channel in range(NUM_CHANNELS):
        nonzero = np.flatnonzero(filters[:, channel])
        start, stop = nonzero[0], nonzero[-1] + 1
        weights = filters[start:stop, channel] * analytic[start:stop]
        members.append((channel, start, weights))
    members.sort(key=lambda member: len(member[2]))
    groups = []
    for first in range(0, NUM_CHANNELS, CHANNELS_PER_GROUP):
        group = members[first : first + CHANNELS_PER_GROUP]
        points = max(OVERSAMPLE_BANDWIDTH * len(group[-1][2]), envelope_length(length))
        points = scipy.fft.next_fast_len(int(np.ceil(min(points, length))))
        groups.append(_BandGroup(points, length, group))
    return tuple(groups)


def to_analysis_rate(windows: np.ndarray, rate: int) -> np.ndarray:
    """(B, n) at `rate` -> (B, N) at 20 kHz, trimmed and clipped exactly as the spec says."""
    ratio = ANALYSIS_RATE / rate
    keep = int(np.floor(windows.shape[1] / ratio) * ratio)
    keep -= keep % 100
    resampled = realfft.resample(windows[:, :keep], round(keep * ratio))
    samples_per_envelope = ANALYSIS_RATE // ENVELOPE_RATE
    usable = resampled.shape[1] - resampled.shape[1] % samples_per_envelope
    return np.clip(resampled[:, :usable], -1.0, 1.0)


def envelopes(signal: np.ndarray) -> np.ndarray:
    """(B, N) 20 kHz signals -> (B, 32, N/50) compressed subband envelopes at 400 Hz."""
    return _clipped(envelope_spectra(signal), envelope_length(signal.shape[1]))[0]


def envelope_spectra(signal: np.ndarray) -> np.ndarray:
    """(B, N) 20 kHz signals -> (B, 32, T // 2 + 1): the rfft of each unclipped envelope."""
    length = signal.shape[1]
    num_samples = envelope_length(length)
    # Complex64 from here on: each bin is rounded relative to itself, and each band is
    # transformed alone, so a quiet band next to a loud one keeps its precision.
    spectrum = realfft.rfft_by_rows(signal, ANALYSIS_RATE // ENVELOPE_RATE).astype(np.complex64)
    out = np.empty((signal.shape[0], NUM_CHANNELS, num_samples // 2 + 1), complex)
    for group in _band_plan(length):
        # Rows are (window, channel) pairs, a few per FFT call: pocketfft vectorizes
        # across rows, and a few rows of every intermediate stay in the CPU cache.
        count = len(group.channels)
        windows, members = np.divmod(np.arange(signal.shape[0] * count), count)
        for first in range(0, len(windows), ROWS_PER_CALL):
            window, member = (
                windows[first : first + ROWS_PER_CALL],
                members[first : first + ROWS_PER_CALL],
            )
            band_bins = spectrum[window[:, None], group.bins[member]] * group.weights[member]
            compressed = _compressed_envelopes(band_bins, group.num_points)
            out[window, group.channels[member]] = _low_bins(compressed, num_samples)
    return out


def _clipped(spectra: np.ndarray, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Envelopes from their spectra, clipped to [-1, 1]; and which windows clipping changed."""
    unclipped = scipy.fft.irfft(spectra, num_samples, axis=-1)
    envs = np.clip(unclipped, -1.0, 1.0)
    return envs, np.any(envs != unclipped, axis=(1, 2))


def _compressed_envelopes(band_bins: np.ndarray, num_points: int) -> np.ndarray:
    """(rows, width) weighted band bins -> (rows, M) float32 |analytic|^0.3 at M points.

    Compression goes through |a|^2 to skip the square root.
    """
    analytic = np.empty((band_bins.shape[0], num_points), np.complex64)
    analytic[:, : band_bins.shape[1]] = band_bins
    analytic[:, band_bins.shape[1] :] = 0
    analytic = scipy.fft.ifft(analytic, axis=-1, overwrite_x=True)
    power = np.square(analytic.real)
    power += np.square(analytic.imag)
    # power ** 0.15 as exp(0.15 log power): numpy vectorizes these, a third faster.
    with np.errstate(divide="ignore"):
        compressed = np.log(power, out=power)
    compressed *= np.float32(COMPRESSION / 2)
    return np.exp(compressed, out=compressed)


def _low_bins(compressed: np.ndarray, num_samples: int) -> np.ndarray:
    """The rfft bins of `compressed` that FFT resampling to `num_samples` keeps, scaled
    as scipy.signal.resample scales them (its irfft then gives the resampled envelope)."""
    num_points = compressed.shape[-1]
    low = scipy.fft.rfft(compressed, axis=-1)[..., : num_samples // 2 + 1]
    low = low.astype(complex) * (num_samples / num_points)
    if num_samples % 2 == 0:  # the unpaired bin at the new Nyquist frequency
        low[..., -1] *= 2
    return low


def statistics(envs: np.ndarray, spectra: np.ndarray | None = None) -> np.ndarray:
    """(B, 32, T) envelopes -> (B, 502) statistics, in the spec's slot order.

    `spectra`: their rfft, when the caller has it (spares computing it again).
    """
    mean = envs.mean(axis=2)
    centred = envs - mean[..., None]
    var = np.mean(centred**2, axis=2)
    std = np.sqrt(var / (EPS + mean**2))
    return np.concatenate(
        [
            mean,
            std,
            _correlations(centred, var, std),
            _modulation_power(
                scipy.fft.rfft(envs, axis=2) if spectra is None else spectra, envs.shape[2], var
            ),
            np.zeros((envs.shape[0], 1)),
        ],
        axis=1,
    )


def _correlations(centred: np.ndarray, var: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Pearson correlation of each band pair; 0 where a band is constant (spec: NaN -> 0)."""
    first, second = np.array(_PAIRS).T
    covariance = np.einsum("bpt,bpt->bp", centred[:, first], centred[:, second]) / centred.shape[2]
    varying = std > CONSTANT_BAND_STD
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = covariance / np.sqrt(var[:, first] * var[:, second])
    corr = np.where(varying[:, first] & varying[:, second], corr, 0.0)
    return np.clip(corr, -1.0, 1.0)


def _modulation_power(spectrum: np.ndarray, length: int, var: np.ndarray) -> np.ndarray:
    """sqrt(mean(filtered^2) / (eps + var)), band-major (B, 320).

    The original filters with irfft at its default even length L = 2 * (bins - 1); by
    Parseval, mean(y^2) = (Re(Y_0)^2 + Re(Y_last)^2 + 2 * sum |Y_k|^2) / L^2, so no inverse
    transform is needed.
    """
    power = np.abs(spectrum) ** 2
    power[..., [0, -1]] = spectrum[..., [0, -1]].real ** 2
    power[..., 1:-1] *= 2
    num_bins = spectrum.shape[2]
    inverse_length = 2 * (num_bins - 1)
    band_power = power @ modulation_filters(length) ** 2 / inverse_length**2
    return np.sqrt(band_power / (EPS + var[..., None])).reshape(spectrum.shape[0], -1)


def texture_of_mono(samples: np.ndarray, rate: int) -> np.ndarray:
    """(B, n) validated float64 mono windows (see audio.mono_batch) -> (B, 502) float32.

    A few windows at a time: larger batches save nothing more (the band stage batches
    rows anyway) and would hold ~10 MB of intermediates per window.
    """
    out = np.empty((samples.shape[0], TEXTURE_DIM), np.float32)
    for first in range(0, samples.shape[0], WINDOWS_PER_CALL):
        chunk = slice(first, first + WINDOWS_PER_CALL)
        out[chunk] = _texture_of_chunk(samples[chunk], rate)
    return out


def _texture_of_chunk(samples: np.ndarray, rate: int) -> np.ndarray:
    signal = to_analysis_rate(samples, rate)
    spectra = envelope_spectra(signal)
    envs, clipped = _clipped(spectra, envelope_length(signal.shape[1]))
    spectra[clipped] = scipy.fft.rfft(envs[clipped], axis=2)
    return statistics(envs, spectra)


def texture_batch(windows: np.ndarray, rate: int) -> np.ndarray:
    """(B, n) or (B, n, channels) PCM windows at `rate` -> (B, 502) float32."""
    return texture_of_mono(mono_batch(windows, rate), rate)


def texture(samples: np.ndarray, rate: int) -> np.ndarray:
    """One (n,) or (n, channels) PCM window at `rate` -> (502,) float32."""
    return texture_batch(as_batch(samples), rate)[0]
