"""Training throughput on the CPU: the input pipeline against its decode bound, and the step.

Data: a prepared-like directory (dataset.json and 8 train shards written with
tfrecords_tools) of 1024 generated 256x341 JPEGs at quality 90 as tfambient-prepare writes
them (PIL, 4:2:0), each a smooth colour field with film grain (about 24 kB), labelled
texture_k30. Cached (--cache_dir) and reused; --data_dir measures a real prepared directory.

(a) Input pipeline, images/s over --batches batches after --warmup batches, on fresh
iterators, best of --repeats rounds (each configuration once per round, so drift hits them
all alike):

* decode bound: ``data.decode_only_dataset`` (the same shards, parse + decode_jpeg of the
  whole image, no augmentation), repeated (restarted after each pass over the shards).
  The training pipeline can beat it: it decodes only its crop (8 % to 100 % of the image).
* train: the training input of ``tfambient-train`` (``PretextTask.train_inputs``: random crop
  decoded alone, resized, rounded to uint8, flipped; uint8 batches), and again for a run with
  ``--color_jitter=1.0`` (the jitter, like standardizing, runs in the step: the model's input
  layer, tfambient.models.ImageInput).
* eval: ``data.pretext_dataset(training=False, repeat=True)`` (central crop).

The goal is train >= 0.9 of the bound. "per-round median" pairs the passes of each round;
"CPU ms/img" is this process's CPU time per image, and its ratio to the bound's is the one
that least depends on what else the machine runs (on a shared machine, trust it and the
per-round median before the best-of-rounds wall ratio).
Then the stages: JPEGs held in memory (no reading or parsing), each map run the same way
(parallel map, batch, prefetch), each row adding one operation of the training parser to
the row above, as tfambient.data composes them; the ms/image column (wall time over all
cores) minus the row above is what that operation costs. read + parse is the decode bound's
ms/image minus the in-memory decode's. The last rows are the work moved into the step:
the input layer on uint8 batches in memory, compiled with XLA, on this CPU (on an
accelerator it is a few fused elementwise passes).

(b) Training step, images/s, built as tfambient-train builds it (``configs.TrainConfig``,
``pretext.PretextTask``, ``trainer.Loop.of``, ``loop.train_loop`` over a distributed dataset of
the default strategy), for AlexNet and ResNet-18 at --batch and --image_size, without and with
XLA (``jit``):

* compute: one batch of the pipeline cached in memory and repeated, so that only the step
  is timed (the model, the loss, the gradients and the AdamW update);
* end to end: the real training pipeline feeding the loop, with the share of the time the
  loop waited for input (``waited`` of train_loop, as tfambient-train logs
  input_wait_fraction). On a CPU the pipeline and the step share the cores.

--warmup_steps steps (the first call traces and, with XLA, compiles: "first call" is that
call's wall time) then --steps timed steps in one train_loop call. A step of batch 64 at
224 px takes seconds on a small CPU, so the defaults are few steps: XLA/no-XLA ratios come
from the same run, but on a shared machine repeat the run before trusting a few percent.

    .venv/bin/python benchmarks/bench_train.py [--batch 64] [--image_size 224] [--data_dir DIR]
    .venv/bin/python benchmarks/bench_train.py --quick    # smoke run: batch 8, 64 px, 2 steps
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from printing import progress, table

from tfambient.architectures import ARCHITECTURES
from tfambient.configs import TrainConfig
from tfambient.contracts import records as keys
from tfambient.contracts.manifest import Manifest, Shard
from tfambient.contracts.records import LabelName
from tfambient.contracts.workdirs import DataDir

CACHE_NAME = "tfambient_bench_train_v1"  # bump when the generator changes
RECORDS, SHARDS = 1024, 8
HEIGHT, WIDTH = 256, 341  # a 4:3 frame at prepare's stored short side
QUALITY = 90
LABEL = "texture_k30"
CLASSES = 30
ARCHS = ("alexnet", "resnet18")
GOAL = 0.9
LABEL_NAME = LabelName.parse(LABEL)
SCHEMA = {
    keys.CLIP_ID: keys.BASE_FIELDS[keys.CLIP_ID],
    keys.IMAGE: keys.BASE_FIELDS[keys.IMAGE],
    LABEL_NAME.key: LABEL_NAME.field(),
}


# ---------------------------------------------------------------------------- data


def picture(rng: np.random.Generator) -> np.ndarray:
    """(HEIGHT, WIDTH, 3) uint8: a tilted colour gradient, blotches at three scales, grain."""
    ys = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, WIDTH, dtype=np.float32)[None, :, None]
    tilt = rng.uniform(-60.0, 60.0, (2, 3)).astype(np.float32)
    image = rng.uniform(60.0, 190.0, 3).astype(np.float32) + tilt[0] * xs + tilt[1] * ys
    for across, strength in ((4, 50.0), (16, 25.0), (64, 10.0)):
        cells = rng.uniform(-strength, strength, (across * HEIGHT // WIDTH + 2, across + 2, 3))
        coarse = Image.fromarray(np.clip(cells + 128.0, 0, 255).astype(np.uint8))
        smooth = coarse.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
        image = image + (np.asarray(smooth, np.float32) - 128.0)
    image += rng.normal(0.0, 6.0, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def ensure_data(directory: Path) -> Path:
    """The generated dataset in ``directory``, written once (dataset.json last, so a run
    that was interrupted leaves no directory that looks finished)."""
    if Manifest.exists(directory):
        return directory
    from tfrecords_tools.example import make_example
    from tfrecords_tools.writer import ShardedRecordWriter

    progress(f"generating {RECORDS} JPEGs in {directory} (reused next time)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    rng = np.random.default_rng(0)
    with ShardedRecordWriter(scratch / "shards", "train", SHARDS) as writer:
        for i in range(RECORDS):
            record = make_example(
                {
                    keys.CLIP_ID: f"bench{i:06d}",
                    keys.IMAGE: jpeg(picture(rng)),
                    LABEL_NAME.key: int(rng.integers(CLASSES)),
                }
            )
            writer.write(i % SHARDS, record.SerializeToString())
    shards = [
        Shard(f"{DataDir.SHARDS_DIR}/{path.name}", "train", count)
        for path, count in zip(writer.paths, writer.counts, strict=True)
    ]
    Manifest.for_records(SCHEMA, shards).write(scratch)
    shutil.rmtree(directory, ignore_errors=True)
    scratch.rename(directory)
    return directory


def add_data_arguments(parser) -> None:
    """--data_dir and --cache_dir: a real prepared directory, or where the generated one is."""
    parser.add_argument("--data_dir", type=Path, help="a prepared directory to read instead")
    parser.add_argument(
        "--cache_dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / CACHE_NAME,
        help="where the generated dataset is cached (default: %(default)s)",
    )


def describe_data(data_dir: Path) -> str:
    shards = [s for s in Manifest.read(data_dir).shards("train") if s.records]
    records = sum(s.records for s in shards)
    size = sum((data_dir / s.path).stat().st_size for s in shards)
    return f"{records} train records in {len(shards)} shards, {size / records / 1e3:.1f} kB each"


# ---------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Rate:
    """Images per second of wall time, and this process's CPU seconds per wall second."""

    images_per_s: float
    cpu_per_wall: float

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * self.cpu_per_wall / self.images_per_s


def timed_batches(make, batch: int, warmup: int, batches: int) -> Rate:
    """A fresh iterator of ``make()`` over ``batches`` batches after ``warmup``."""
    iterator = iter(make())
    for _ in range(warmup):
        next(iterator)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    del iterator
    return Rate(batches * batch / wall, cpu / wall)


def best(rates: list[Rate]) -> Rate:
    return max(rates, key=lambda r: r.images_per_s)


def in_memory_jpegs(data_dir: Path, limit: int):
    """Up to ``limit`` of the split's JPEGs as a tf.string vector (read once, outside timing)."""
    import tensorflow as tf

    from tfambient import data

    spec = {keys.IMAGE: tf.io.FixedLenFeature([], tf.string)}
    records = tf.data.TFRecordDataset(data.shard_files(data_dir, "train")).take(limit)
    parsed = records.batch(256).map(lambda r: tf.io.parse_example(r, spec)[keys.IMAGE])
    return tf.concat(list(parsed), axis=0)


def stage_maps(image_size: int):
    """(name, map from one JPEG to an image, ragged) for the cumulative stage rows."""
    import tensorflow as tf

    from tfambient import data

    whole = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])

    def crop(encoded):
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            tf.io.extract_jpeg_shape(encoded),
            bounding_boxes=whole,
            min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0),
            max_attempts=10,
        )
        window = tf.stack([begin[0], begin[1], size[0], size[1]])
        return tf.io.decode_and_crop_jpeg(encoded, window, channels=3)

    def resized(encoded):
        return tf.image.resize(crop(encoded), [image_size, image_size])

    def rounded(encoded):
        return tf.cast(tf.round(resized(encoded)), tf.uint8)

    def flipped(encoded):
        return tf.image.random_flip_left_right(rounded(encoded))

    return [
        ("decode_jpeg, whole image", lambda e: tf.io.decode_jpeg(e, channels=3), True),
        ("random window: decode_and_crop", crop, True),
        (f"+ resize to {image_size}", resized, False),
        ("+ round to uint8", rounded, False),
        ("+ flip (= train parser)", flipped, False),
        ("eval parser: central crop", lambda e: data.eval_image(e, image_size), False),
    ]


def step_input_rates(jpegs, image_size: int, batch: int, warmup: int, batches: int):
    """(name, Rate) of the model's input layer (standardize; + colour jitter 1.0) on uint8
    batches of training crops held in memory, compiled with XLA as --jit compiles the step."""
    import tensorflow as tf

    from tfambient import data, models

    parse = data.train_crop(data.Augment(image_size=image_size))
    seeds = tf.random.experimental.stateless_split(tf.constant([0, 0], tf.int64), batch)
    crops = tf.stack([parse(jpegs[i % len(jpegs)], seeds[i]) for i in range(batch)])
    rates = []
    for name, strength in (("in the step: standardize", 0.0), ("in the step: + jitter 1.0", 1.0)):
        layer = models.ImageInput(strength)
        step = tf.function(functools.partial(layer, training=True), jit_compile=True)
        for _ in range(warmup):
            step(crops).numpy()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            step(crops).numpy()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rates.append((name, Rate(batches * batch / wall, cpu / wall)))
    return rates


def stage_dataset(jpegs, fn, ragged: bool, batch: int):
    import tensorflow as tf

    images = (
        tf.data.Dataset.from_tensor_slices(jpegs)
        .repeat()
        .map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    )
    batches = images.ragged_batch(batch) if ragged else images.batch(batch)
    return batches.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------- training


@dataclass
class StepFigures:
    arch: str
    jit: bool
    first_call: float  # seconds of the warm-up call (tracing, XLA compilation)
    compute: Rate  # cached batch
    end_to_end: Rate  # real pipeline
    waited: float  # share of the end-to-end time spent waiting for input


def timed_loop(loop, iterator, steps: int, batch: int, name: str) -> tuple[Rate, float, float]:
    """(rate, wall seconds, seconds waited for input) of one ``loop.train_loop`` call of
    ``steps`` steps of global batch ``batch``."""
    import tensorflow as tf

    wall, cpu = time.perf_counter(), time.process_time()
    loss, _, waited = loop.train_loop(iterator, tf.constant(steps))
    loss, waited = float(loss), float(waited)  # waits for the steps to finish
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if not np.isfinite(loss):
        raise SystemExit(f"{name}: the loss is {loss}")
    return Rate(steps * batch / wall, cpu / wall), wall, waited


def step_figures(data_dir: Path, arch: str, jit: bool, args, workdir: Path) -> StepFigures:
    import tensorflow as tf

    from tfambient import data, trainer
    from tfambient.tasks import pretext

    config = TrainConfig(
        data_dir=str(data_dir),
        workdir=str(workdir),
        arch=arch,
        label=LABEL,
        image_size=args.image_size,
        batch_size=args.batch,
        train_steps=100_000,  # the schedule's length only: nothing is trained to the end
        steps_per_loop=args.steps,
        jit=jit,
    )
    strategy = tf.distribute.get_strategy()
    task = pretext.PretextTask(config, strategy)
    loop = trainer.Loop.of(task, strategy, pretext.plan(config))
    augment = data.Augment(image_size=args.image_size)

    def pipeline(context=None):
        return data.pretext_dataset(
            data_dir,
            "train",
            task.label,
            args.batch,
            training=True,
            augment=augment,
            seed=None,
            input_context=context,
        )

    # The loop takes a host iterator of one replica's batches (trainer.next_batch).
    sample = next(iter(pipeline()))
    cached = tf.data.Dataset.from_tensors(sample).repeat()

    def timed(iterator, steps: int) -> tuple[Rate, float, float]:
        return timed_loop(loop, iterator, steps, args.batch, arch)

    name = f"{arch}{' XLA' if jit else ''}"
    progress(f"{name}: compute, {args.warmup_steps} warm-up + {args.steps} timed step(s)")
    iterator = iter(cached)
    _, first, _ = timed(iterator, args.warmup_steps)
    compute, _, _ = timed(iterator, args.steps)
    progress(f"{name}: end to end, {args.warmup_steps} warm-up + {args.steps} timed step(s)")
    iterator = iter(pipeline(trainer.input_context(strategy)))
    timed(iterator, args.warmup_steps)
    end_to_end, wall, waited = timed(iterator, args.steps)
    return StepFigures(arch, jit, first, compute, end_to_end, min(1.0, waited / wall))


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="images per batch")
    parser.add_argument("--image_size", type=int, default=224, help="model input side, px")
    parser.add_argument("--batches", type=int, default=24, help="timed pipeline batches")
    parser.add_argument("--warmup", type=int, default=4, help="pipeline batches not timed")
    parser.add_argument("--repeats", type=int, default=5, help="pipeline rounds (best kept)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--warmup_steps", type=int, default=3, help="training steps not timed")
    parser.add_argument(
        "--archs", default=",".join(ARCHS), help="comma-separated backbones (default: %(default)s)"
    )
    parser.add_argument(
        "--parts",
        default="pipeline,stages,train",
        help="what to measure, of pipeline,stages,train (default: %(default)s)",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: batch 8, 64 px, 2 steps, 1 round"
    )
    args = parser.parse_args()
    if args.quick:
        args.batch, args.image_size, args.batches, args.warmup, args.repeats = 8, 64, 8, 2, 1
        args.steps, args.warmup_steps = 2, 1
    parts = set(args.parts.split(","))
    archs = args.archs.split(",")
    if parts - {"pipeline", "stages", "train"}:
        parser.error("--parts takes pipeline, stages and train")
    if min(args.batch, args.image_size, args.batches, args.repeats, args.steps) < 1:
        parser.error("--batch, --image_size, --batches, --repeats and --steps must be >= 1")
    if min(args.warmup, args.warmup_steps) < 1:
        parser.error("--warmup and --warmup_steps must be >= 1 (the first batch starts up)")

    began = time.perf_counter()
    data_dir = args.data_dir or ensure_data(args.cache_dir)
    progress("importing TensorFlow ...")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its start-up chatter is not ours
    import tensorflow as tf

    from tfambient import data

    tf.config.set_visible_devices([], "GPU")  # the CPU is what is measured
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        parser.error(f"unknown --archs {','.join(unknown)}; known: {', '.join(ARCHITECTURES)}")
    label = data.label_spec(data_dir, LABEL)
    batch, size = args.batch, args.image_size
    print(f"data: {data_dir}: {describe_data(data_dir)}")
    print(
        f"batch {batch}, {size} px; TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, load "
        f"average {os.getloadavg()[0]:.2f}"
    )

    # ------------------------------------------------------------------ (a) the pipeline
    ratio = None
    if "pipeline" in parts:

        def training_input(jitter: float):
            """The input of a tfambient-train run (its model is never called)."""
            from tfambient.tasks.pretext import PretextTask

            config = TrainConfig(
                data_dir=str(data_dir),
                workdir=str(Path(tempfile.gettempdir()) / "bench_train_unused"),
                label=LABEL,
                image_size=size,
                batch_size=batch,
                fc_units=64,
                color_jitter=jitter,
            )
            task = PretextTask(config, tf.distribute.get_strategy())
            return lambda: task.train_inputs(tf.distribute.InputContext())

        augment = data.Augment(image_size=size)
        configs = {
            "decode bound (parse + decode_jpeg)": lambda: data.decode_only_dataset(
                data_dir, "train", batch
            ).repeat(),
            "train (crop, resize, flip; uint8)": training_input(0.0),
            "train, --color_jitter=1.0": training_input(1.0),
            "eval (central crop; uint8)": lambda: data.pretext_dataset(
                data_dir, "train", label, batch, training=False, augment=augment, repeat=True
            ),
        }
        rates: dict[str, list[Rate]] = {name: [] for name in configs}
        for round_ in range(args.repeats):
            progress(
                f"pipeline round {round_ + 1}/{args.repeats}: {len(configs)} pipelines, "
                f"{args.warmup} + {args.batches} batches each"
            )
            for name, make in configs.items():
                rates[name].append(timed_batches(make, batch, args.warmup, args.batches))
        names = list(configs)
        bound = best(rates[names[0]]).images_per_s
        bound_cpu = statistics.median(r.cpu_ms_per_image for r in rates[names[0]])
        cpu_ratios = {
            name: bound_cpu / statistics.median(r.cpu_ms_per_image for r in rates[name])
            for name in names
        }
        medians = {
            name: statistics.median(
                r.images_per_s / b.images_per_s
                for b, r in zip(rates[names[0]], rates[name], strict=True)
            )
            for name in names
        }
        print()
        print(
            f"(a) input pipeline: images/s over {args.batches} batches after {args.warmup}, "
            f"best of {args.repeats} round(s)"
        )
        rows = []
        for name in names:
            top = best(rates[name])
            cpu_ms = statistics.median(r.cpu_ms_per_image for r in rates[name])
            rows.append(
                [
                    name,
                    f"{top.images_per_s:.0f}",
                    f"{1000 / top.images_per_s:.2f}",
                    f"{top.images_per_s / bound:.2f}",
                    f"{medians[name]:.2f}",
                    f"{top.cpu_per_wall:.2f}",
                    f"{cpu_ms:.2f}",
                    f"{cpu_ratios[name]:.2f}",
                ]
            )
        table(
            ["pipeline", "img/s", "ms/img", "vs bound", "per-round median", "CPU/wall",
             "CPU ms/img", "vs bound (CPU)"],
            rows,
        )  # fmt: skip
        train_rate, jitter_rate, eval_rate = (best(rates[n]).images_per_s for n in names[1:])
        ratio = train_rate / bound

    # ------------------------------------------------------------------ stages
    if "stages" in parts:
        jpegs = in_memory_jpegs(data_dir, RECORDS)
        stages = stage_maps(size)
        stage_rates: dict[str, list[Rate]] = {name: [] for name, _, _ in stages}
        for round_ in range(args.repeats):
            progress(f"stages round {round_ + 1}/{args.repeats}: {len(stages)} maps in memory")
            for name, fn, ragged in stages:
                rate = timed_batches(
                    lambda f=fn, r=ragged: stage_dataset(jpegs, f, r, batch),
                    batch,
                    args.warmup,
                    args.batches,
                )
                stage_rates[name].append(rate)
            for name, rate in step_input_rates(jpegs, size, batch, args.warmup, args.batches):
                stage_rates.setdefault(name, []).append(rate)
        print()
        print(
            f"stages: {len(jpegs)} JPEGs in memory, parallel map + batch + prefetch, best of "
            f"{args.repeats}; each row adds to the one above (the eval row stands alone; the "
            f"rows 'in the step' are the input layer alone, on uint8 batches, with XLA)"
        )
        rows, previous, ms = [], None, {}
        for name in stage_rates:
            top = best(stage_rates[name])
            ms[name] = 1000 / top.images_per_s
            alone = previous is None or name.startswith("eval") or name.endswith("standardize")
            added = "-" if alone else f"{ms[name] - previous:+.2f}"
            cpu_ms = statistics.median(r.cpu_ms_per_image for r in stage_rates[name])
            rows.append(
                [
                    name,
                    f"{top.images_per_s:.0f}",
                    f"{ms[name]:.2f}",
                    added,
                    f"{top.cpu_per_wall:.2f}",
                    f"{cpu_ms:.2f}",
                ]
            )
            previous = ms[name]
        table(["stage", "img/s", "ms/img", "added ms/img", "CPU/wall", "CPU ms/img"], rows)
        if "pipeline" in parts:
            print(
                f"read + parse (decode bound - in-memory decode): "
                f"{1000 / bound - ms[stages[0][0]]:+.2f} ms/img; train pipeline - in-memory "
                f"train parser: {1000 / train_rate - ms[stages[4][0]]:+.2f} ms/img"
            )

    # ------------------------------------------------------------------ (b) the step
    figures: list[StepFigures] = []
    if "train" in parts:
        workdir = Path(tempfile.mkdtemp(prefix="bench_train_"))
        try:
            for arch in archs:
                for jit in (False, True):
                    figures.append(step_figures(data_dir, arch, jit, args, workdir))
                    gc.collect()  # the last model and its optimizer state
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print()
        print(
            f"(b) training step (CPU, default strategy), batch {batch}, {size} px: "
            f"{args.warmup_steps} warm-up + {args.steps} timed step(s)"
        )
        rows = [
            [
                f"{f.arch}{' XLA' if f.jit else ''}",
                f"{f.first_call:.1f}",
                f"{f.compute.images_per_s:.1f}",
                f"{args.batch / f.compute.images_per_s:.2f}",
                f"{f.compute.cpu_per_wall:.2f}",
                f"{f.end_to_end.images_per_s:.1f}",
                f"{f.end_to_end.images_per_s / f.compute.images_per_s:.2f}",
                f"{100 * f.waited:.0f}%",
                f"{f.end_to_end.cpu_per_wall:.2f}",
            ]
            for f in figures
        ]
        table(
            ["model", "first call s", "compute img/s", "s/step", "CPU/wall", "end-to-end img/s",
             "e2e/compute", "input wait", "CPU/wall"],
            rows,
        )  # fmt: skip

    # ------------------------------------------------------------------ headlines
    print()
    if ratio is not None:
        train_name, jitter_name, eval_name = names[1:]

        def ratios(name: str, rate: float) -> str:
            return (
                f"ratio {rate / bound:.2f} (per-round median {medians[name]:.2f}, "
                f"CPU time {cpu_ratios[name]:.2f})"
            )

        verdict = "PASS" if min(ratio, jitter_rate / bound) >= GOAL else "below goal"
        print(
            f"input pipeline: {train_rate:.0f} img/s vs decode bound {bound:.0f} img/s: "
            f"{ratios(train_name, train_rate)}"
        )
        print(
            f"  with colour jitter 1.0: {jitter_rate:.0f} img/s, {ratios(jitter_name, jitter_rate)}"
        )
        print(f"  eval: {eval_rate:.0f} img/s, {ratios(eval_name, eval_rate)}")
        print(f"  goal >= {GOAL} with and without jitter: {verdict}")
    if figures:
        plain = {f.arch: f for f in figures if not f.jit}
        xla = {f.arch: f for f in figures if f.jit}
        steps_line = ", ".join(
            f"{a} {plain[a].compute.images_per_s:.1f} img/s (XLA {xla[a].compute.images_per_s:.1f})"
            for a in archs
        )
        print(f"train step (CPU, batch {batch}, {size} px): {steps_line}")
        e2e_line = ", ".join(
            f"{a} {plain[a].end_to_end.images_per_s:.1f} img/s, input wait "
            f"{100 * plain[a].waited:.0f}% (XLA {xla[a].end_to_end.images_per_s:.1f}, "
            f"{100 * xla[a].waited:.0f}%)"
            for a in archs
        )
        print(f"end to end with the real pipeline: {e2e_line}")
    print(
        f"run: {time.perf_counter() - began:.0f} s wall; load average at the end "
        f"{os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
