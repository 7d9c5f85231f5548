"""The built-in experiment over several seeds: its wall time, and how far the sound-pretrained
backbones' head-mode VOC mAP is above the random backbone's.

Runs ``make demo SEED=s DEMO_DIR=<root>/seed<s>`` for each seed (the whole pipeline: world,
prepare, two pretext runs, three VOC transfers, report; a rerun resumes, so an interrupted
sweep continues), then reads each VOC run's metrics.json and prints per seed the VOC07
11-point mAPs and the margins over random, and their mean and standard deviation.

    .venv/bin/python benchmarks/bench_demo.py [--seeds 0,1,2] [--root /tmp/tfambient_demo_seeds]
    .venv/bin/python benchmarks/bench_demo.py --flags flags/demo_ci   # the miniature, minutes
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BACKBONES = ("texture_k6", "mfcc_k6", "random")


def run_demo(seed: int, directory: Path, flags: str) -> float:
    """Seconds of wall time of one ``make demo``; its output goes to directory/make.log."""
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(directory / "make.log", "w") as log:
        done = subprocess.run(
            ["make", "-C", str(REPO), "demo", f"SEED={seed}", f"DEMO_DIR={directory}",
             f"DEMO_FLAGS={flags}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    if done.returncode:
        sys.exit(f"make demo failed for seed {seed}: see {directory / 'make.log'}")
    return time.perf_counter() - start


def maps(directory: Path) -> dict[str, float]:
    """VOC07 11-point mAP of each backbone's head-mode transfer."""
    return {
        name: json.loads((directory / "voc" / name / "metrics.json").read_text())["map_voc07"]
        for name in BACKBONES
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--root", type=Path, default=Path("/tmp/tfambient_demo_seeds"))
    parser.add_argument("--flags", default="flags/demo", help="DEMO_FLAGS (default: %(default)s)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        print(f"seed {seed}: make demo ...", file=sys.stderr, flush=True)
        seconds = run_demo(seed, args.root / f"seed{seed}", args.flags)
        rows.append((seed, seconds, maps(args.root / f"seed{seed}")))
    print(f"make demo ({args.flags}), head-mode VOC07 11-point mAP (%) by pretext labels")
    print("| seed | wall min | texture_k6 | mfcc_k6 | random | texture - random | mfcc - random |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for seed, seconds, m in rows:
        cells = [m[name] * 100 for name in BACKBONES]
        margins = [(m[name] - m["random"]) * 100 for name in BACKBONES[:2]]
        print(
            f"| {seed} | {seconds / 60:.1f} | "
            + " | ".join(f"{c:.1f}" for c in cells)
            + " | "
            + " | ".join(f"{d:+.1f}" for d in margins)
            + " |"
        )
    for name in BACKBONES[:2]:
        margins = [(m[name] - m["random"]) * 100 for _, _, m in rows]
        spread = statistics.stdev(margins) if len(margins) > 1 else 0.0
        print(
            f"{name} - random: mean {statistics.mean(margins):+.1f} points, std {spread:.1f}, "
            f"min {min(margins):+.1f} over {len(margins)} seed(s)"
        )
    walls = [seconds / 60 for _, seconds, _ in rows]
    print(f"wall time per demo: {min(walls):.1f} to {max(walls):.1f} min")


if __name__ == "__main__":
    main()
