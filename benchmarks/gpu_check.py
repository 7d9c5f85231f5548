"""GPU check (make gpu-check; not run in CI): what tfambient-train gets out of this machine's
accelerators, in under 5 minutes, printed and written as JSON (--output).

1. The step: images/s of the training step of AlexNet and ResNet-18 (built as tfambient-train
   builds them: ``pretext.PretextTask``, ``trainer.Loop``) at --batch and --image_size, in
   float32, mixed_bfloat16 and mixed_float16, XLA off and on: "compute" on one batch held on
   the device (the model, the loss, the gradients, AdamW), "end to end" fed by the real
   training input, with the share of the time the loop waited for it.
2. The input: images/s of the training input pipeline on this host's CPUs (uint8 crops; the
   step standardizes them), beside its decode bound: is training input-bound? If the input
   makes fewer images/s than a step consumes, yes: use more cores, or tf.data service
   workers (docs/train.md).
3. Replicas: one GPU against MirroredStrategy over all local GPUs, AlexNet in float32 (no
   dropout, no BatchNorm, so that the same global batches give the same losses): the loss
   curves' largest relative difference (parity), and images/s at --batch per GPU (scaling).

Data: the generated dataset of bench_train.py (1024 JPEGs; --data_dir for a real one).
Without a GPU the check says so in one line and exits 0; with a GPU that TensorFlow cannot
use (no CUDA libraries: pip install -e '.[gpu]') it says so and exits 2.

--dry_run runs the same code on the CPU at tiny sizes (two logical CPU devices stand for the
GPUs), so that a test can check it in seconds.

    .venv/bin/python benchmarks/gpu_check.py [--output gpu-check.json]
    .venv/bin/python benchmarks/gpu_check.py --dry_run --archs alexnet --precisions float32
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_train import (
    LABEL,
    add_data_arguments,
    describe_data,
    ensure_data,
    timed_batches,
    timed_loop,
)
from printing import progress, table

ARCHS = ("alexnet", "resnet18")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
NO_GPU, GPU_UNUSABLE = 0, 2
DRY_RUN = {"batch": 8, "image_size": 64, "steps": 2, "warmup_steps": 1, "fc_units": 64}
PARITY_STEPS = 5


@dataclass
class StepResult:
    arch: str
    precision: str
    jit: bool
    first_call_s: float  # tracing and, with XLA, compiling
    compute_images_per_s: float
    end_to_end_images_per_s: float
    input_wait_fraction: float


def gpu_names() -> list[str]:
    """The GPUs nvidia-smi lists (none without the driver)."""
    if not shutil.which("nvidia-smi"):
        return []
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return [line for line in listed.stdout.splitlines() if line.startswith("GPU")]


def train_config(args, data_dir: Path, workdir: Path, **fields):
    from tfambient.configs import TrainConfig

    settings = dict(
        data_dir=str(data_dir),
        workdir=str(workdir),
        label=LABEL,
        image_size=args.image_size,
        batch_size=args.batch,
        train_steps=100_000,  # the schedule's length only: nothing is trained to the end
        steps_per_loop=args.steps,
        seed=0,
    )
    if args.fc_units:
        settings["fc_units"] = args.fc_units
    return TrainConfig(**(settings | fields))


def step_result(args, data_dir, workdir, strategy, arch, precision, jit) -> StepResult:
    """Compute and end-to-end images/s of one configuration of the step."""

    from tfambient import trainer
    from tfambient.tasks import pretext

    mixed = "" if precision == "float32" else precision
    config = train_config(args, data_dir, workdir, arch=arch, mixed_precision=mixed, jit=jit)
    task = pretext.PretextTask(config, strategy)
    loop = trainer.Loop.of(task, strategy, pretext.plan(config))
    name = f"{arch} {precision}{' XLA' if jit else ''}"
    progress(f"{name}: {args.warmup_steps} warm-up + {args.steps} timed step(s), twice")
    iterator = held_batch(task, strategy)
    began = time.perf_counter()
    timed_loop(loop, iterator, args.warmup_steps, args.batch, name)
    first = time.perf_counter() - began
    compute, _, _ = timed_loop(loop, iterator, args.steps, args.batch, name)
    fed = iter(task.train_inputs(trainer.input_context(strategy)))
    timed_loop(loop, fed, args.warmup_steps, args.batch, name)
    end_to_end, wall, waited = timed_loop(loop, fed, args.steps, args.batch, name)
    return StepResult(
        arch,
        precision,
        jit,
        first,
        compute.images_per_s,
        end_to_end.images_per_s,
        min(1.0, waited / wall),
    )


def held_batch(task, strategy):
    """A host iterator of the task's first global training batch, again and again, cut into
    one piece per replica (trainer.Loop hands replica i the i-th): only the step is timed,
    and one device and several see the same global batch. (Seeded: the same batch for every
    task of the same config.)"""
    import tensorflow as tf

    from tfambient import trainer

    sample = next(iter(task.train_inputs(tf.distribute.InputContext())))
    replicas = trainer.local_replicas(strategy)
    pieces = tf.nest.map_structure(lambda t: tf.stack(tf.split(t, replicas)), sample)
    return iter(tf.data.Dataset.from_tensor_slices(pieces).repeat())


def input_rates(args, data_dir: Path, workdir: Path) -> dict[str, float]:
    """images/s of the training input on this host's CPUs, and of its decode bound."""
    import tensorflow as tf

    from tfambient import data
    from tfambient.tasks import pretext

    task = pretext.PretextTask(train_config(args, data_dir, workdir, arch="alexnet"), _cpu())
    batches, warmup = 20, 3
    progress(f"input pipeline: {warmup} + {batches} batches of {args.batch}, and its bound")
    train = timed_batches(
        lambda: task.train_inputs(tf.distribute.InputContext()), args.batch, warmup, batches
    )
    bound = timed_batches(
        lambda: data.decode_only_dataset(data_dir, "train", args.batch).repeat(),
        args.batch,
        warmup,
        batches,
    )
    cpus = os.cpu_count() or 1
    return {
        "images_per_s": train.images_per_s,
        "images_per_s_per_cpu": train.images_per_s / cpus,
        "decode_bound_images_per_s": bound.images_per_s,
        "ratio_to_decode_bound": train.images_per_s / bound.images_per_s,
        "cpus": cpus,
    }


def _cpu():
    import tensorflow as tf

    return tf.distribute.OneDeviceStrategy("/cpu:0")


def replica_figures(args, data_dir: Path, workdir: Path, devices: list[str]) -> dict:
    """One device against MirroredStrategy over ``devices``: loss parity on the same global
    batch (the same initial weights, no dropout), and images/s at --batch per device."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfambient import trainer
    from tfambient.tasks import pretext

    def run(strategy, batch: int) -> tuple[list[float], float]:
        config = train_config(
            args, data_dir, workdir, arch="alexnet", dropout=0.0, batch_size=batch,
            learning_rate=1e-4,
        )  # fmt: skip
        task = pretext.PretextTask(config, strategy)
        loop = trainer.Loop.of(task, strategy, pretext.plan(config))
        iterator = held_batch(task, strategy)
        losses = [loop.run_steps(iterator, 1)["loss"] for _ in range(PARITY_STEPS)]
        rate, _, _ = timed_loop(loop, iterator, args.steps, batch, "replicas")
        keras.backend.clear_session()
        return losses, rate.images_per_s

    n = len(devices)
    progress(f"replicas: one device against {n} mirrored, {PARITY_STEPS} + {args.steps} steps")
    one = tf.distribute.OneDeviceStrategy(devices[0])
    every = tf.distribute.MirroredStrategy(devices)
    loss_one, rate_one = run(one, args.batch)
    loss_all, _ = run(every, args.batch)
    _, rate_all = run(every, args.batch * n)
    difference = np.max(np.abs(np.subtract(loss_all, loss_one)) / np.abs(loss_one))
    return {
        "devices": devices,
        "loss_one_device": loss_one,
        "loss_all_devices": loss_all,
        "max_relative_difference": float(difference),
        "one_device_images_per_s": rate_one,
        "all_devices_images_per_s": rate_all,
        "scaling": rate_all / rate_one,
        "efficiency": rate_all / rate_one / n,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256, help="images per step (per GPU)")
    parser.add_argument("--image_size", type=int, default=224, help="model input side, px")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup_steps", type=int, default=2, help="steps not timed")
    parser.add_argument("--fc_units", type=int, default=0, help="AlexNet's fc width; 0: 4096")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated backbones")
    parser.add_argument(
        "--precisions",
        default=",".join(PRECISIONS),
        help="comma-separated, of " + ", ".join(PRECISIONS),
    )
    parser.add_argument("--output", type=Path, default=Path("gpu-check.json"), help="JSON here")
    add_data_arguments(parser)
    parser.add_argument(
        "--dry_run",
        action="store_true",
        help="the same code on the CPU at tiny sizes (two logical CPUs stand for the GPUs)",
    )
    args = parser.parse_args()
    if args.dry_run:
        for name, value in DRY_RUN.items():
            setattr(args, name, value)
    args.archs, args.precisions = args.archs.split(","), args.precisions.split(",")
    from tfambient.architectures import ARCHITECTURES

    if unknown := [a for a in args.archs if a not in ARCHITECTURES]:
        parser.error(f"unknown --archs {','.join(unknown)}; known: {', '.join(ARCHITECTURES)}")
    if unknown := [p for p in args.precisions if p not in PRECISIONS]:
        parser.error(f"unknown --precisions {','.join(unknown)}; known: {', '.join(PRECISIONS)}")
    if min(args.batch, args.image_size, args.steps, args.warmup_steps) < 1:
        parser.error("--batch, --image_size, --steps and --warmup_steps must be >= 1")
    return args


def devices(dry_run: bool) -> list[str]:
    """The accelerators to measure on: the GPUs, or two logical CPUs in a dry run. Exits
    with one line where there is no GPU to measure."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not dry_run:  # quietly: its start-up lines would bury the one line below
        from tfambient.cli.common import load_tensorflow

        load_tensorflow()
    import tensorflow as tf

    if dry_run:
        tf.config.set_visible_devices([], "GPU")
        cpu = tf.config.list_physical_devices("CPU")[0]
        halves = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, halves)
        return [d.name for d in tf.config.list_logical_devices("CPU")]
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if gpus:
        return gpus
    present = gpu_names()
    if present:
        print(
            f"gpu-check: {len(present)} GPU(s) present ({present[0]}) but TensorFlow sees none: "
            f"install its CUDA libraries (pip install -e '.[gpu]')",
            file=sys.stderr,
        )
        sys.exit(GPU_UNUSABLE)
    print("gpu-check: no GPU on this machine; nothing to measure (see --dry_run)")
    sys.exit(NO_GPU)


def report(results: dict, args) -> None:
    print(f"devices: {', '.join(results['devices'])}; data: {results['data']}")
    print()
    print(
        f"(1) step, batch {args.batch}, {args.image_size} px, one device: "
        f"{args.warmup_steps} warm-up + {args.steps} timed steps"
    )
    rows = [
        [
            f"{r['arch']} {r['precision']}{' XLA' if r['jit'] else ''}",
            f"{r['first_call_s']:.1f}",
            f"{r['compute_images_per_s']:.0f}",
            f"{r['end_to_end_images_per_s']:.0f}",
            f"{100 * r['input_wait_fraction']:.0f}%",
        ]
        for r in results["steps"]
    ]
    table(["model", "first call s", "compute img/s", "end-to-end img/s", "input wait"], rows)
    source = results["input"]
    print()
    print(
        f"(2) input pipeline on {source['cpus']} CPUs: {source['images_per_s']:.0f} img/s "
        f"({source['images_per_s_per_cpu']:.0f} per CPU), decode bound "
        f"{source['decode_bound_images_per_s']:.0f} img/s (ratio "
        f"{source['ratio_to_decode_bound']:.2f})"
    )
    fastest = max(results["steps"], key=lambda r: r["compute_images_per_s"])
    input_bound = source["images_per_s"] < fastest["compute_images_per_s"]
    bound = "input-bound" if input_bound else "not input-bound"
    print(
        f"    the fastest step ({fastest['arch']} {fastest['precision']}"
        f"{' XLA' if fastest['jit'] else ''}) consumes {fastest['compute_images_per_s']:.0f} "
        f"img/s: {bound}"
    )
    replicas = results["replicas"]
    print()
    print(
        f"(3) {len(replicas['devices'])} device(s) mirrored vs one, AlexNet float32: losses "
        f"differ by {replicas['max_relative_difference']:.1e} (relative, at most) over "
        f"{PARITY_STEPS} steps; {replicas['all_devices_images_per_s']:.0f} vs "
        f"{replicas['one_device_images_per_s']:.0f} img/s: scaling {replicas['scaling']:.2f}x, "
        f"efficiency {replicas['efficiency']:.2f}"
    )


def main() -> None:
    args = parse_args()
    began = time.perf_counter()
    found = devices(args.dry_run)  # before anything else starts TensorFlow's devices
    import keras
    import tensorflow as tf

    from tfambient.contracts.files import write_json

    data_dir = args.data_dir or ensure_data(args.cache_dir)
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    results: dict = {
        "devices": found,
        "tensorflow": tf.__version__,
        "data": describe_data(data_dir),
        "settings": {
            k: getattr(args, k)
            for k in ("batch", "image_size", "steps", "warmup_steps", "fc_units", "dry_run")
        },
        "steps": [],
    }
    try:
        one = tf.distribute.OneDeviceStrategy(found[0])
        for arch in args.archs:
            for precision in args.precisions:
                for jit in (False, True):
                    result = step_result(args, data_dir, workdir, one, arch, precision, jit)
                    results["steps"].append(asdict(result))
                    keras.backend.clear_session()  # the last model and its optimizer
                    gc.collect()
        keras.mixed_precision.set_global_policy("float32")
        results["input"] = input_rates(args, data_dir, workdir)
        results["replicas"] = replica_figures(args, data_dir, workdir, found)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["wall_s"] = time.perf_counter() - began
    report(results, args)
    write_json(args.output, results)
    print(f"\nwritten: {args.output} ({results['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
