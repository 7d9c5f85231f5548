"""What resuming exactly costs: the input state in every checkpoint, and the input path that
makes it checkpointable.

(a) Checkpoint: the training input of tfambient-train (``data.pretext_dataset``: shuffled
shard files, interleaved, a record shuffle buffer, parallel crops and batches, prefetch; seeded,
deterministic) over bench_train.py's generated shards (1024 JPEGs of 256x341, about 24 kB
each), and of tfambient-voc (``data.batches`` of a PairDecoder: crops of 10-50 %, a shuffle
buffer of 1024) over --voc_images generated JPEGs of 375x500 (VOC's usual size). After
--warmup batches and a pause (the prefetch buffers fill), ``tf.train.Checkpoint(input=iterator)``
is saved: its bytes on disk and seconds; then a fresh iterator is restored from it and gives
its first batch (seconds). Each at the shuffle buffer tfambient uses and at 256 records, so
that the shuffle buffer's share shows; the rest is the records being read and the batches
prepared ahead.

(b) Input throughput under MirroredStrategy over --replicas logical CPUs (or every visible
GPU): the pretext pipeline at the global --batch feeding a compiled loop whose step only sums
each replica's images, so that the input path is what is timed; before (one iterator of
``distribute_datasets_from_function``, which cannot be checkpointed) and now
(``trainer.next_batch``: one checkpointable host iterator, its batches handed to the replicas).
Best of --repeats rounds, the two alternating.

    .venv/bin/python benchmarks/bench_resume.py [--batch 64] [--image_size 224]
    .venv/bin/python benchmarks/bench_resume.py --quick     # smoke run: small and short
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_train import CACHE_NAME, LABEL, describe_data, ensure_data, picture
from PIL import Image
from printing import progress, table

VOC_SIZE = (500, 375)  # width, height


def voc_jpegs(count: int) -> list[bytes]:
    """``count`` VOC-sized JPEGs of bench_train's pictures (quality 90, as VOC's are about)."""
    rng = np.random.default_rng(0)
    jpegs = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(picture(rng)).resize(VOC_SIZE).save(buffer, format="JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    return jpegs


def checkpoint_cost(make, warmup: int, directory: Path) -> tuple[float, float, float]:
    """(MB on disk, seconds to save, seconds to restore and give the first batch) of the
    input state of ``make()``'s iterator after ``warmup`` batches."""
    import tensorflow as tf

    iterator = iter(make())
    for _ in range(warmup):
        next(iterator)
    time.sleep(2)  # the pipeline fills its buffers, as it does while a step runs
    start = time.perf_counter()
    path = tf.train.Checkpoint(input=iterator).save(str(directory / "input"))
    saved = time.perf_counter() - start
    size = sum(p.stat().st_size for p in directory.glob(f"{Path(path).name}*"))
    start = time.perf_counter()
    fresh = iter(make())
    tf.train.Checkpoint(input=fresh).restore(path)
    next(fresh)
    restored = time.perf_counter() - start
    for p in directory.iterdir():
        p.unlink()
    return size / 1e6, saved, restored


def distribution_rates(make, strategy, batch: int, steps: int, warmup: int, repeats: int):
    """Best images/s of the old and the new input path over ``strategy``'s replicas."""
    import tensorflow as tf

    from tfambient import trainer

    def consume(images, _):
        return tf.reduce_sum(tf.cast(images, tf.float32))

    def looped(next_batch):
        @tf.function
        def loop(iterator, n):
            total = tf.constant(0.0)
            for _ in tf.range(n):
                images, targets = next_batch(iterator)
                sums = strategy.run(consume, args=(images, targets))
                total += strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)
            return total

        return loop

    paths = {
        "distribute_datasets_from_function (before)": (
            lambda: iter(strategy.distribute_datasets_from_function(make)),
            looped(next),
        ),
        "host iterator + next_batch (now)": (
            lambda: iter(make(trainer.input_context(strategy))),
            looped(lambda iterator: trainer.next_batch(strategy, iterator)),
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(repeats):
        progress(f"throughput round {round_ + 1}/{repeats}")
        for name, (iterate, loop) in paths.items():
            iterator = iterate()
            float(loop(iterator, tf.constant(warmup)))
            start = time.perf_counter()
            float(loop(iterator, tf.constant(steps)))
            rates[name].append(steps * batch / (time.perf_counter() - start))
    return {name: max(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="global images per batch")
    parser.add_argument("--image_size", type=int, default=224, help="model input side, px")
    parser.add_argument("--voc_batch", type=int, default=16, help="VOC fine-tuning's batch")
    parser.add_argument("--voc_images", type=int, default=1024, help="generated VOC JPEGs")
    parser.add_argument("--warmup", type=int, default=5, help="batches before the checkpoint")
    parser.add_argument("--replicas", type=int, default=2, help="logical CPUs mirrored over")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=3, help="throughput rounds (best kept)")
    parser.add_argument(
        "--cache_dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / CACHE_NAME,
        help="where bench_train.py's generated dataset is cached (default: %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 8, 64 px")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.image_size, args.voc_batch, args.voc_images = 8, 64, 8, 64
        args.warmup, args.steps, args.repeats = 2, 4, 1
    if min(args.batch, args.image_size, args.voc_batch, args.voc_images, args.steps) < 1:
        parser.error("--batch, --image_size, --voc_batch, --voc_images and --steps must be >= 1")
    if args.replicas < 1 or args.batch % args.replicas:
        parser.error("--batch must be a multiple of --replicas")

    data_dir = ensure_data(args.cache_dir)
    progress("importing TensorFlow ...")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        logical = [tf.config.LogicalDeviceConfiguration() for _ in range(args.replicas)]
        tf.config.set_logical_device_configuration(cpu, logical)

    from tfambient import data
    from tfambient.tasks import voc

    label = data.label_spec(data_dir, LABEL)
    augment = data.Augment(image_size=args.image_size)
    jpegs = voc_jpegs(args.voc_images)
    targets = np.ones((len(jpegs), 20), np.int8)
    voc_augment = data.Augment(image_size=args.image_size, area_range=(0.1, 0.5))
    print(f"data: {data_dir}: {describe_data(data_dir)}")
    size = np.mean([len(jpeg) for jpeg in jpegs]) / 1e3
    print(f"VOC: {len(jpegs)} JPEGs of {VOC_SIZE[0]}x{VOC_SIZE[1]}, {size:.1f} kB each")
    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}, GPUs: {len(gpus)}"
    )

    def pretext(buffer: int):
        return lambda context=None: data.pretext_dataset(
            data_dir,
            "train",
            label,
            args.batch,
            training=True,
            augment=augment,
            seed=0,
            input_context=context,
            shuffle_buffer=buffer,
        )

    def finetune(buffer: int):
        pairs = data.PairDecoder(lambda: tf.data.Dataset.from_tensor_slices((jpegs, targets)))
        return lambda: data.batches(
            pairs,
            data.train_crop(voc_augment),
            args.voc_batch,
            training=True,
            seed=0,
            shuffle_buffer=buffer,
        )

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, batch, make in (
            (f"pretext, shuffle {data.SHUFFLE_BUFFER}", args.batch, pretext(data.SHUFFLE_BUFFER)),
            ("pretext, shuffle 256", args.batch, pretext(256)),
            (f"VOC, shuffle {voc.SHUFFLE_BUFFER}", args.voc_batch, finetune(voc.SHUFFLE_BUFFER)),
            ("VOC, shuffle 256", args.voc_batch, finetune(256)),
        ):
            progress(f"checkpoint of the input state: {name}")
            size, saved, restored = checkpoint_cost(make, args.warmup, Path(scratch))
            batch_mb = batch * args.image_size**2 * 3 / 1e6  # uint8 crops
            rows.append(
                [
                    name,
                    str(batch),
                    f"{batch_mb:.1f}",
                    f"{size:.1f}",
                    f"{saved:.2f}",
                    f"{restored:.2f}",
                ]
            )
    print(f"\n(a) input state in a checkpoint, {args.image_size} px uint8 batches\n")
    table(["pipeline", "batch", "MB/batch", "MB on disk", "save s", "restore s"], rows)

    cpus = [f"/cpu:{i}" for i in range(args.replicas)]
    strategy = tf.distribute.MirroredStrategy(None if gpus else cpus)
    rates = distribution_rates(
        pretext(data.SHUFFLE_BUFFER), strategy, args.batch, args.steps, args.warmup, args.repeats
    )
    devices = ", ".join(strategy.extended.worker_devices)
    print(f"\n(b) input throughput, MirroredStrategy over {devices}, batch {args.batch}\n")
    table(["input path", "images/s"], [[name, f"{rate:.0f}"] for name, rate in rates.items()])
    before, now = rates.values()
    print(f"\nnow / before: {now / before:.3f}")


if __name__ == "__main__":
    main()
