"""Sound-descriptor throughput on one core: the literal oracle vs the shipped texture code.

Prints, for 3.75 s windows at 44.1 kHz and 16 kHz: windows/s of the straightforward oracle
(tests/texture_oracle.py), of the shipped texture implementation one window at a time and in
batches, their ratios, the largest difference between the two, and windows/s of the MFCC
descriptors. Ratios are measured in the same run because these machines are noisy.

    .venv/bin/python benchmarks/bench_sound.py [--batch 16] [--repeats 3]
"""

from __future__ import annotations

import os

# One core: set before numpy loads its thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from texture_oracle import oracle_texture  # noqa: E402

from tfambient import sound  # noqa: E402
from tfambient.sound import texture  # noqa: E402

WINDOW_S = 3.75


def windows_per_second(compute, windows: np.ndarray, repeats: int) -> float:
    """Best of `repeats` timings of `compute(windows)`, as windows per second."""
    compute(windows[:1])  # warm caches (filter banks, FFT plans)
    best = min(_timed(compute, windows) for _ in range(repeats))
    return len(windows) / best


def _timed(compute, windows) -> float:
    start = time.perf_counter()
    compute(windows)
    return time.perf_counter() - start


def noisy_windows(count: int, rate: int) -> np.ndarray:
    """Pink-ish noise with a slow amplitude modulation: broadband, like most ambient sound."""
    rng = np.random.default_rng(0)
    n = int(WINDOW_S * rate)
    spectrum = np.fft.rfft(rng.standard_normal((count, n)), axis=1)
    spectrum[:, 1:] /= np.sqrt(np.fft.rfftfreq(n, 1 / rate)[1:])
    x = np.fft.irfft(spectrum, n, axis=1)
    x *= 1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / rate)
    return 0.2 * x / x.std(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="windows per batched call")
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure (best kept)")
    args = parser.parse_args()

    print(f"3.75 s windows, one core, best of {args.repeats}; batch = {args.batch} windows")
    header = (
        "rate",
        "oracle w/s",
        "shipped w/s",
        "ratio",
        "batched w/s",
        "ratio",
        "max|diff|",
        "mfcc w/s",
        "mfcc_summary w/s",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for rate in (44_100, 16_000):
        windows = noisy_windows(args.batch, rate)
        oracle = windows_per_second(
            lambda w, r=rate: [oracle_texture(x, r) for x in w], windows[:3], args.repeats
        )
        single = windows_per_second(
            lambda w, r=rate: [texture.texture(x, r) for x in w], windows, args.repeats
        )
        batched = windows_per_second(
            lambda w, r=rate: texture.texture_batch(w, r), windows, args.repeats
        )
        diff = max(
            np.abs(texture.texture(x, rate) - oracle_texture(x, rate)).max() for x in windows[:3]
        )
        mfcc_rates = [
            windows_per_second(
                lambda w, r=rate, n=name: sound.describe(w, r, n), windows, args.repeats
            )
            for name in ("mfcc", "mfcc_summary")
        ]
        print(
            f"{rate} | {oracle:.2f} | {single:.1f} | {single / oracle:.1f}x | {batched:.1f} | "
            f"{batched / oracle:.1f}x | {diff:.1e} | {mfcc_rates[0]:.0f} | {mfcc_rates[1]:.0f}"
        )


if __name__ == "__main__":
    main()
