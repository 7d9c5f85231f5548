"""Linear probes on the CPU: feature extraction images/s per layer, and the classifiers' time.

Data: --images JPEGs of ImageNet's typical size (375x500: smooth random pictures, a mean colour
per class, in --classes class folders; two thirds train, a third val), written once to
--cache_dir and reused; --train_dir/--val_dir measure real folders instead.

(a) Features: AlexNet (fc6 and fc7 4096 wide; random weights, which do not change the speed)
at --image_size through ``tfambient.features.compute`` (the input path: read, decode, central
crop, resize; then the network and the probe's pooling): images/s of each probe layer alone and
of all seven at once (the probe's single pass), after a warm-up batch; and of the input
pipeline alone, the bound on all of them. Each figure is the best of --repeats passes: other
jobs on a shared machine only ever slow a pass down.

(b) Classifiers: ``tfambient.tasks.probe.probe_layer`` on the cached features of each layer
(the 9 settings of the default grid, each twice, trained side by side for --epochs; the
held-out choice; the val scores): seconds per layer and training rows x epochs per second.

    .venv/bin/python benchmarks/bench_probe.py [--images 600] [--classes 10] [--epochs 30]
    .venv/bin/python benchmarks/bench_probe.py --quick      # 64 px, few images: a smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from printing import progress, table

CACHE_NAME = "tfambient_bench_probe_v1"  # bump when the generator changes
SIZE = (375, 500)  # height, width: ImageNet's typical picture


def ensure_images(cache: Path, images: int, classes: int) -> Path:
    """``cache``/.../{train,val}/<class>/NNNN.jpg, written once."""
    root = cache / f"{CACHE_NAME}_{images}_{classes}"
    done = root / "complete"
    if done.is_file():
        return root
    progress(f"writing {images} JPEGs of {SIZE[1]}x{SIZE[0]} to {root} (reused next time)")
    rng = np.random.default_rng(0)
    for i in range(images):
        label = i % classes
        split = "val" if i % 3 == 2 else "train"
        folder = root / split / f"class{label:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.normal(40 + 170 * label / classes, 50, (12, 16, 3)).clip(0, 255)
        picture = Image.fromarray(coarse.astype(np.uint8)).resize(SIZE[::-1], Image.BICUBIC)
        noisy = np.asarray(picture, np.float32) + rng.normal(0, 8, (*SIZE, 3))
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(
            folder / f"{i:05d}.jpg", quality=90
        )
    done.write_text("")
    return root


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600, help="synthetic JPEGs")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=64, help="images per feature batch")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the best is shown")
    parser.add_argument("--train_dir", type=Path, help="a real class-folder tree instead")
    parser.add_argument("--val_dir", type=Path)
    parser.add_argument("--cache_dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--quick", action="store_true", help="64 px, 60 images, 3 epochs")
    args = parser.parse_args()
    if args.quick:
        args.image_size, args.images, args.epochs = 64, 60, 3
    if args.train_dir:
        train_dir, val_dir = args.train_dir, args.val_dir
    else:
        root = ensure_images(args.cache_dir, args.images, args.classes)
        train_dir, val_dir = root / "train", root / "val"
    progress("importing TensorFlow ...")
    import tensorflow as tf

    from tfambient import architectures, data, features, images, models
    from tfambient.contracts.workdirs import ProbeWorkdir
    from tfambient.tasks import probe

    tf.config.set_visible_devices([], "GPU")  # the CPU is what is measured
    train = images.read_labelled(train_dir)
    val = images.read_labelled(val_dir, train.classes)
    size = args.image_size
    backbone = models.build_backbone("alexnet", input_shape=(size, size, 3))
    grids = dict(architectures.get("alexnet").probe_grids)
    layers = list(grids)
    settings = features.Extraction(size, args.batch_size)
    paths = list(train.paths)
    warm = paths[: args.batch_size]

    def best_rate(run) -> float:
        """Images/s of the fastest of --repeats passes of ``run`` over every path."""
        return len(paths) / min(timed(run)[0] for _ in range(args.repeats))

    def rate(model) -> float:
        features.compute(model, warm, settings)  # traces
        return best_rate(lambda: features.compute(model, paths, settings))

    def input_only() -> float:
        pairs = data.image_files(paths, np.zeros(len(paths), np.int64))
        batches = data.batches(
            data.PairDecoder(pairs), data.any_eval_crop(size), args.batch_size, training=False
        )
        return best_rate(lambda: sum(1 for _ in batches))

    rows = [["input pipeline alone", "–", f"{input_only():.1f}"]]
    for layer in [*layers, "all seven"]:
        names = layers if layer == "all seven" else [layer]
        model = features.feature_model(backbone, names, grids)
        dims = sum(int(np.prod(model.output[n].shape[1:])) for n in names)
        progress(f"features: {layer} ...")
        rows.append([layer, str(dims), f"{rate(model):.1f}"])
    print(f"(a) feature extraction, AlexNet at {size} px, {len(paths)} JPEGs of "
          f"{SIZE[1]}x{SIZE[0]}, batches of {args.batch_size}, CPU")  # fmt: skip
    table(["layers", "dims", "images/s"], rows)

    workdir = ProbeWorkdir(tempfile.mkdtemp(prefix="bench_probe_"))
    config = probe.ProbeConfig(
        workdir=str(workdir.root),
        train_dir=str(train_dir),
        val_dir=str(val_dir),
        image_size=size,
        epochs=args.epochs,
        batch_size=64,
    )
    progress("caching the features of every layer ...")
    cached = {}
    for split, listed in (("train", train), ("val", val)):
        features.extract(backbone, listed, layers, workdir.features(split), settings, grids)
        cached[split] = features.gather(listed, layers, workdir.features(split), settings)
    strategy = tf.distribute.get_strategy()
    classes = list(train.classes)
    rows = []
    for layer in layers:
        progress(f"classifiers: {layer} ...")
        seconds, result = timed(
            lambda layer=layer: probe.probe_layer(
                layer, cached["train"], cached["val"], classes, config, strategy, workdir
            )
        )
        rows.append(
            [
                layer,
                str(result["dims"]),
                f"{seconds:.1f}",
                f"{len(cached['train'].paths) * args.epochs / seconds:.0f}",
                f"{100 * result['top1']:.1f}",
            ]
        )
    heads, rows_trained = 2 * len(config.grid()), len(cached["train"].paths)
    print(f"\n(b) classifiers: {heads} heads side by side, {len(classes)} classes, "
          f"{rows_trained} train rows x {args.epochs} epochs, batch 64, CPU")  # fmt: skip
    table(["layer", "dims", "seconds", "rows x epochs/s", "val top-1 %"], rows)


if __name__ == "__main__":
    main()
