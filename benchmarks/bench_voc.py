"""VOC transfer on the CPU: test-time evaluation with 10 crops, and short fine-tunes.

Data: a synthetic VOCdevkit (tfambient.world, --images images of 128x160, half of
them test), written once to --cache_dir and reused; --voc_dir measures a real VOCdevkit.

(a) Evaluation: ``tasks.voc.test_scores`` (the pipeline of --test_crops random crops per image
and the model averaging their sigmoids) over the test split, images/s including its one trace,
against the same with one central crop per image measured in the same run: the 10-crop
protocol should cost about 10x the network time, no more (one JPEG read serves all crops).

(b) Fine-tuning: ``tasks.voc.finetune`` for --steps steps of batch 16 in loops of --steps / 4,
head and all: images/s as the run logs it (metrics.jsonl), the first loop (tracing) left out;
and the wall time of the whole svm probe (features of trainval and test, 20 cross-validated
LinearSVCs).

    .venv/bin/python benchmarks/bench_voc.py [--arch alexnet] [--image_size 224] [--steps 40]
    .venv/bin/python benchmarks/bench_voc.py --quick      # 64 px, few steps: a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from printing import progress

CACHE_NAME = "tfambient_bench_voc_v1"  # bump when the generator changes


def ensure_voc(cache: Path, images: int) -> Path:
    """A synthetic VOCdevkit of ``images`` images in ``cache`` (written once)."""
    from tfambient.world import read_manifest, write_world

    world = cache / f"{CACHE_NAME}_{images}"
    if read_manifest(world) is None:
        progress(f"writing a synthetic VOCdevkit of {images} images to {world} (reused next time)")
        write_world(world, clips=6, voc_images=images, progress=False)
    return world / "VOCdevkit"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="alexnet", help="alexnet, alexnet_bn or resnet18")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--test_crops", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40, help="fine-tuning steps")
    parser.add_argument("--images", type=int, default=200, help="synthetic VOC images")
    parser.add_argument("--voc_dir", type=Path, help="a real VOCdevkit instead")
    parser.add_argument("--cache_dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--quick", action="store_true", help="64 px, 8 steps, 2 crops")
    args = parser.parse_args()
    if args.quick:
        args.image_size, args.steps, args.test_crops = 64, 8, 2
    began = time.perf_counter()
    voc_dir = args.voc_dir or ensure_voc(args.cache_dir, args.images)
    progress("importing TensorFlow ...")
    import tensorflow as tf

    from tfambient.tasks import voc as ft

    tf.config.set_visible_devices([], "GPU")  # the CPU is what is measured
    workdir = Path(tempfile.mkdtemp(prefix="bench_voc_"))
    base = ft.VocConfig(
        workdir=str(workdir / "head"),
        voc_dir=str(voc_dir),
        arch=args.arch,
        image_size=args.image_size,
        test_crops=args.test_crops,
        train_steps=args.steps,
        steps_per_loop=args.steps,
        checkpoint_every=10**9,
    )
    strategy = tf.distribute.get_strategy()
    train_voc = ft.read_source(base, base.train_split)
    test_voc = ft.read_source(base, base.test_split)
    print(
        f"VOC: {voc_dir}: trainval {len(train_voc)}, test {len(test_voc)} images; {args.arch} "
        f"at {args.image_size} px; TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    try:
        backbone, _ = ft.load_backbone(base)
        model = ft.voc_model(backbone, args.image_size)
        # (a) evaluation
        rates = {}
        for crops in (1, args.test_crops):
            config = dataclasses.replace(base, test_crops=crops)
            seconds, _ = timed(lambda c=config: ft.test_scores(model, test_voc, c))
            rates[crops] = len(test_voc) / seconds
        # (b) fine-tuning
        tunes = {}
        for mode in ("head", "all"):
            config = dataclasses.replace(
                base, mode=mode, workdir=str(workdir / mode), steps_per_loop=max(1, args.steps // 4)
            )
            backbone, _ = ft.load_backbone(config)
            ft.freeze(backbone, mode)
            model = ft.voc_model(backbone, args.image_size)
            ft.finetune(model, train_voc, config, strategy, Path(config.workdir))
            log = (Path(config.workdir) / "metrics.jsonl").read_text().splitlines()
            tunes[mode] = statistics.median(json.loads(line)["images_per_s"] for line in log[1:])
        svm = dataclasses.replace(base, mode="svm", workdir=str(workdir / "svm"), svm_folds=3)
        svm_seconds, _ = timed(lambda: ft.run(svm, strategy))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"(a) evaluation over {len(test_voc)} test images")
    print(f"  central crop:        {rates[1]:7.1f} images/s")
    print(
        f"  {args.test_crops} random crops:     {rates[args.test_crops]:7.1f} images/s "
        f"({rates[1] / rates[args.test_crops]:.1f}x the central crop's time; "
        f"{rates[args.test_crops] * args.test_crops:.0f} crops/s)"
    )
    print(f"(b) fine-tuning, batch {base.batch_size}: median of the logged loops but the first")
    for mode, images_per_s in tunes.items():
        hours = 80_000 * base.batch_size / images_per_s / 3600
        print(f"  {mode:4s}: {images_per_s:6.1f} images/s; the protocol's 80k steps: {hours:.0f} h")
    print(
        f"  svm : {svm_seconds:.1f} s for the whole probe (features of {len(train_voc)} + "
        f"{len(test_voc)} images, 20 x 3-fold grid of {len(base.costs())} costs)"
    )
    print(f"run: {time.perf_counter() - began:.0f} s wall")


if __name__ == "__main__":
    main()
