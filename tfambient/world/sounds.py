"""The synthetic world's sounds, one per scene, made with numpy and scipy.signal."""

from __future__ import annotations

import numpy as np
from scipy import signal

RATE = 22_050


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
