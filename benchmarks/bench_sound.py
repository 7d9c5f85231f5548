"""Sound-descriptor throughput on one core: the literal oracle vs the shipped texture code.

Prints, for 3.75 s windows at 44.1 kHz and 16 kHz: windows/s of the straightforward oracle
(tests/texture_oracle.py), of the shipped texture implementation one window at a time and in
batches, their ratios, the largest difference between the two on the slots the tests compare
(correlations of constant or empty bands left out, as the spec says), and windows/s of the
MFCC descriptors. Then the goal line: texture on one 44.1 kHz window against the oracle
(goal >= 25x, about 20x the published code).

Times are CPU seconds of this single-threaded process (time.process_time), so other
processes on a shared machine take less from the figures than from wall-clock times; each
figure is the best of --repeats rounds, and every round measures all of them, so drift hits
them alike. Ratios compare figures of the same run.

    .venv/bin/python benchmarks/bench_sound.py [--batch 16] [--repeats 5]
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
from printing import progress, table  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_texture import undefined_corr_slots  # noqa: E402
from texture_oracle import oracle_texture  # noqa: E402

from tfambient import sound  # noqa: E402
from tfambient.sound import texture  # noqa: E402

WINDOW_S = 3.75
GOAL = 25.0
ORACLE_WINDOWS = 3  # the oracle takes ~0.5 s a window


def cpu_seconds(compute, windows: np.ndarray) -> float:
    start = time.process_time()
    compute(windows)
    return time.process_time() - start


def noisy_windows(count: int, rate: int) -> np.ndarray:
    """Pink-ish noise with a slow amplitude modulation: broadband, like most ambient sound."""
    rng = np.random.default_rng(0)
    n = int(WINDOW_S * rate)
    spectrum = np.fft.rfft(rng.standard_normal((count, n)), axis=1)
    spectrum[:, 1:] /= np.sqrt(np.fft.rfftfreq(n, 1 / rate)[1:])
    x = np.fft.irfft(spectrum, n, axis=1)
    x *= 1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / rate)
    return 0.2 * x / x.std(axis=1, keepdims=True)


def max_difference(windows: np.ndarray, rate: int) -> tuple[float, int]:
    """Largest |shipped - oracle| over the compared slots; undefined slots left out."""
    worst, skipped = 0.0, 0
    for x in windows:
        expected = oracle_texture(x, rate)
        diff = np.abs(texture.texture(x, rate).astype(np.float64) - expected)
        undefined = undefined_corr_slots(expected)
        diff[undefined] = 0.0
        worst, skipped = max(worst, float(diff.max())), skipped + len(undefined)
    return worst, skipped


def measure(rate: int, batch: int, repeats: int) -> dict[str, float]:
    """Windows per CPU second of each computation, best of `repeats` interleaved rounds."""
    windows = noisy_windows(batch, rate)
    computations = {
        "oracle": (lambda w: [oracle_texture(x, rate) for x in w], windows[:ORACLE_WINDOWS]),
        "single": (lambda w: [texture.texture(x, rate) for x in w], windows),
        "batched": (lambda w: texture.texture_batch(w, rate), windows),
        "mfcc": (lambda w: sound.describe(w, rate, "mfcc"), windows),
        "mfcc_summary": (lambda w: sound.describe(w, rate, "mfcc_summary"), windows),
    }
    for compute, w in computations.values():
        compute(w[:1])  # warm caches (filter banks, FFT plans)
    best = dict.fromkeys(computations, np.inf)
    for round_ in range(repeats):
        progress(f"{rate} Hz: round {round_ + 1}/{repeats}")
        for name, (compute, w) in computations.items():
            best[name] = min(best[name], cpu_seconds(compute, w) / len(w))
    return {name: 1.0 / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="windows per batched call")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per figure (best kept)")
    args = parser.parse_args()
    if args.batch < ORACLE_WINDOWS or args.repeats < 1:
        parser.error(f"--batch must be >= {ORACLE_WINDOWS} and --repeats >= 1")

    print(
        f"3.75 s windows, one core, CPU time, best of {args.repeats} rounds; "
        f"batch = {args.batch} windows; load average {os.getloadavg()[0]:.2f}"
    )
    header = ["rate", "oracle w/s", "single w/s", "ratio", "batched w/s", "ratio",
              "max|diff|", "mfcc w/s", "mfcc_summary w/s"]  # fmt: skip
    rows, ratio_44k = [], None
    for rate in (44_100, 16_000):
        rates = measure(rate, args.batch, args.repeats)
        diff, skipped = max_difference(noisy_windows(ORACLE_WINDOWS, rate), rate)
        single, batched = rates["single"] / rates["oracle"], rates["batched"] / rates["oracle"]
        ratio_44k = ratio_44k or single
        rows.append(
            [
                str(rate),
                f"{rates['oracle']:.2f}",
                f"{rates['single']:.1f}",
                f"{single:.1f}x",
                f"{rates['batched']:.1f}",
                f"{batched:.1f}x",
                f"{diff:.1e}" + (f" ({skipped} undefined left out)" if skipped else ""),
                f"{rates['mfcc']:.0f}",
                f"{rates['mfcc_summary']:.0f}",
            ]
        )
    table(header, rows)
    verdict = "meets" if ratio_44k >= GOAL else "misses"
    print(
        f"texture on one 44.1 kHz window: {ratio_44k:.1f}x the oracle "
        f"({verdict} the goal of >= {GOAL:g}x, about 20x the published code)"
    )


if __name__ == "__main__":
    main()
