"""Pretext training: predict a frame's sound cluster, with one loop for every strategy.

One custom loop (``strategy.run`` inside a ``tf.function`` running ``steps_per_loop``
steps) serves the default strategy (a CPU or one GPU), MirroredStrategy (the local GPUs)
and MultiWorkerMirroredStrategy (hosts, from TF_CONFIG): Keras 3's ``Model.fit`` fails
under the last on TF 2.21, and one loop is easier to reason about than three.
Keras supplies the layers and the optimizer; losses and accuracies are reduced across
replicas explicitly, so the figures mean the same under every strategy.

The work directory holds everything a run needs to resume or be understood: flags.txt,
ckpt/ (tf.train.CheckpointManager: the last N, and the best by validation loss),
tb/ (TensorBoard), metrics.jsonl (one line per log or evaluation), result.json, and
export/ (the backbone as a SavedModel and a .keras file).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import tensorflow as tf

from tfambient import data, hosts, models
from tfambient.configs import DEFAULT_FEATURE, TrainConfig

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith and Topin's one-cycle schedule: a linear warm-up from peak/25 to the peak, then
    a cosine (or linear) anneal to peak/1e4 at the last step."""

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float, anneal: str):
        self.peak, self.total_steps = peak, max(total_steps, 1)
        self.warmup_steps = max(1, round(warmup_fraction * self.total_steps))
        self.anneal = anneal

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        start, end = self.peak / 25.0, self.peak / 1e4
        warm = start + (self.peak - start) * step / self.warmup_steps
        progress = tf.clip_by_value(
            (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0
        )
        if self.anneal == "cos":
            fall = end + (self.peak - end) * 0.5 * (1.0 + tf.cos(math.pi * progress))
        else:
            fall = self.peak + (end - self.peak) * progress
        return tf.where(step < self.warmup_steps, warm, fall)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_steps / self.total_steps,
            "anneal": self.anneal,
        }


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: several workers in TF_CONFIG -> multi-worker; several GPUs -> mirrored; else one."""
    if name == "auto":
        if hosts.cluster_to_join(name, os.environ.get("TF_CONFIG")):
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--strategy must be auto, default, mirrored or multiworker, got {name}")


@dataclass
class _Run:
    """What the loop works on, built under the strategy's scope."""

    strategy: tf.distribute.Strategy
    label: data.LabelSpec
    model: keras.Model
    backbone: keras.Model
    optimizer: keras.optimizers.Optimizer


def build(config: TrainConfig, strategy: tf.distribute.Strategy) -> _Run:
    label = data.label_spec(config.data_dir, config.label)
    keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        options = {}
        if config.arch.startswith("alexnet"):
            options = {"dropout": config.dropout, "fc_units": config.fc_units}
        backbone = models.build_backbone(
            config.arch, input_shape=(config.image_size, config.image_size, 3), **options
        )
        head = {"num_classes": label.size} if label.kind == "classes" else {"num_bits": label.size}
        model = models.pretext_model(
            backbone, config.feature or DEFAULT_FEATURE[config.arch], **head
        )
        optimizer = keras.optimizers.AdamW(
            learning_rate=OneCycle(
                config.learning_rate, config.train_steps, config.warmup_fraction, config.anneal
            ),
            weight_decay=config.weight_decay,
        )
        if config.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    return _Run(strategy, label, model, backbone, optimizer)


def per_example_loss(label: data.LabelSpec, smoothing: float):
    """Softmax cross-entropy for cluster ids, sigmoid cross-entropy (mean over bits) for
    binary codes; per example, so that replicas can average over the global batch."""
    if label.kind == "classes":

        def loss(targets, logits):
            onehot = tf.one_hot(targets, label.size)
            return keras.losses.categorical_crossentropy(
                onehot, logits, from_logits=True, label_smoothing=smoothing
            )
    else:

        def loss(targets, logits):
            return keras.losses.binary_crossentropy(
                targets, logits, from_logits=True, label_smoothing=smoothing
            )

    return loss


def _correct(label: data.LabelSpec, targets, logits, k: int):
    """Per-example accuracy: top-k for cluster ids, the fraction of bits right for codes."""
    if label.kind == "classes":
        return tf.cast(tf.math.in_top_k(targets, logits, k), tf.float32)
    return tf.reduce_mean(tf.cast((logits > 0) == (targets > 0.5), tf.float32), axis=-1)


class Loop:
    """The compiled training loop of any model: ``steps`` steps of ``strategy.run`` inside one
    ``tf.function``, for pretext training and VOC fine-tuning alike.

    ``loss(targets, logits)`` gives per-example losses, averaged over the global batch so that
    replicas sum to the batch mean; ``score(targets, logits)`` a per-example accuracy.
    """

    def __init__(
        self,
        strategy: tf.distribute.Strategy,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        loss,
        score,
        *,
        global_batch_size: int,
        clip_norm: float,
        jit: bool,
        score_name: str = "score",
    ):
        self.strategy, self.model, self.optimizer = strategy, model, optimizer
        self.loss, self.score, self.score_name = loss, score, score_name
        self.global_batch_size, self.clip_norm = global_batch_size, clip_norm
        self._step = tf.function(self._train_step, jit_compile=jit)
        self.train_loop = tf.function(self._train_loop)

    def run_steps(self, iterator, steps: int) -> dict[str, float]:
        """Run ``steps`` steps and say how they went: mean loss and score, the learning rate,
        images/s and the fraction of the time spent waiting for input."""
        start = time.perf_counter()
        loss, score, waited = self.train_loop(iterator, tf.constant(steps))
        loss, score = float(loss), float(score)  # waits for the steps to finish
        seconds = time.perf_counter() - start
        if not math.isfinite(loss):
            step = int(self.optimizer.iterations.numpy())
            raise FloatingPointError(f"the loss is {loss} at step {step}")
        return {
            "loss": loss,
            self.score_name: score,
            "learning_rate": float(self.optimizer.learning_rate),
            "images_per_s": steps * self.global_batch_size / seconds,
            "input_wait_fraction": min(1.0, float(waited) / seconds),
        }

    def _train_step(self, images, targets):
        batch = self.global_batch_size
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            loss = tf.nn.compute_average_loss(self.loss(targets, logits), global_batch_size=batch)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.model.trainable_variables
        grads = self._clipped(tape.gradient(scaled, variables))
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        score = tf.reduce_sum(self.score(targets, logits)) / batch
        return loss, score

    def _clipped(self, grads):
        """Gradients clipped to the global norm of the whole batch's gradient.

        Keras clips each replica's partial gradient before summing them (so the result
        would change with the number of replicas); here the sum is clipped instead, then
        shared out again for the optimizer's own sum across replicas. Under several
        replicas that costs one more all-reduce; without clipping, none.
        """
        if not self.clip_norm:
            return grads
        context = tf.distribute.get_replica_context()
        if context.num_replicas_in_sync > 1:
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # Clip what the step will apply, not the scaled gradient.
            scale = optimizer.dynamic_scale
            grads = [g / scale for g in grads]
            grads, _ = tf.clip_by_global_norm(grads, self.clip_norm)
            grads = [g * scale for g in grads]
        else:
            grads, _ = tf.clip_by_global_norm(grads, self.clip_norm)
        return [g / context.num_replicas_in_sync for g in grads]

    def _train_loop(self, iterator, steps):
        """``steps`` steps: the mean loss and score of the global batches, and the seconds
        spent waiting for input (from the end of one step to its next batch's arrival)."""
        strategy = self.strategy
        total_loss, total_score = tf.constant(0.0), tf.constant(0.0)
        waited = tf.constant(0.0, tf.float64)
        for _ in tf.range(steps):
            with tf.control_dependencies([total_loss]):
                asked = tf.timestamp()
            with tf.control_dependencies([asked]):
                images, targets = next(iterator)
            with tf.control_dependencies(strategy.experimental_local_results(images)):
                waited += tf.timestamp() - asked
            loss, score = strategy.run(self._step, args=(images, targets))
            total_loss += strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            total_score += strategy.reduce(tf.distribute.ReduceOp.SUM, score, axis=None)
        steps = tf.cast(steps, tf.float32)
        return total_loss / steps, total_score / steps, waited


def pretext_loop(run: _Run, config: TrainConfig) -> Loop:
    """The loop of a pretext run: its loss, top-1 as the score."""
    return Loop(
        run.strategy,
        run.model,
        run.optimizer,
        per_example_loss(run.label, config.label_smoothing),
        functools.partial(_correct, run.label, k=1),
        global_batch_size=config.batch_size,
        clip_norm=config.clip_norm,
        jit=config.jit,
        score_name="top1",
    )


def pretext_eval_batch(run: _Run, loss):
    """A compiled function: sums of loss, top-1, top-5 and examples over one validation batch.

    Evaluation runs on the chief alone, outside ``strategy.run``: replicas that split a
    finite validation set get unequal shares, and collective ops would wait forever
    for the replica that ran out first.
    """
    label = run.label

    def eval_batch(images, targets):
        logits = run.model(images, training=False)
        return (
            tf.reduce_sum(loss(targets, logits)),
            tf.reduce_sum(_correct(label, targets, logits, 1)),
            tf.reduce_sum(_correct(label, targets, logits, min(5, label.size))),
            tf.cast(tf.shape(images)[0], tf.float32),
        )

    return tf.function(eval_batch)


class Checkpoints:
    """The last ``keep`` checkpoints and the best by validation loss, both resumable."""

    def __init__(
        self, model: keras.Model, optimizer: keras.optimizers.Optimizer, workdir: Path, keep: int
    ):
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        self.last = tf.train.CheckpointManager(self.checkpoint, workdir / "ckpt", keep)
        self.best = tf.train.CheckpointManager(
            self.checkpoint, workdir / "ckpt" / "best", 1, checkpoint_name="best"
        )

    def restore(self, number: int | None = None) -> int:
        """Resume from checkpoint ``number`` (default: the last one, if any); returns its
        step (0 when starting fresh)."""
        path = self.last.latest_checkpoint
        if number is not None:
            path = next((p for p in self.last.checkpoints if p.endswith(f"-{number}")), None)
            if path is None:
                kept = ", ".join(p.rsplit("-", 1)[1] for p in self.last.checkpoints)
                raise ValueError(f"no checkpoint {number} in {self.last.directory}; kept: {kept}")
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
            logger.info("restored %s", path)
        return int(self.checkpoint.optimizer.iterations.numpy())

    def save(self, step: int) -> None:
        self.last.save(checkpoint_number=step)

    def save_best(self, step: int) -> None:
        self.best.save(checkpoint_number=step)


def datasets(config: TrainConfig, run: _Run, skipped: tf.Variable | None = None):
    """The distributed training stream and the (finite) validation pass; with
    --skip_corrupt, ``skipped`` counts the records skipped."""
    augment = data.Augment(image_size=config.image_size, color_jitter=config.color_jitter)

    def train_fn(context):
        return data.pretext_dataset(
            config.data_dir,
            "train",
            run.label,
            config.batch_size,
            training=True,
            augment=augment,
            seed=config.seed,
            input_context=context,
            skip_corrupt=config.skip_corrupt,
            skipped=skipped,
        )

    train = run.strategy.distribute_datasets_from_function(train_fn)
    try:
        data.shard_files(config.data_dir, "val")
    except ValueError:  # no validation split (--val_fraction=0)
        return train, None
    val = data.pretext_dataset(
        config.data_dir,
        "val",
        run.label,
        config.batch_size,
        training=False,
        augment=augment,
    )
    return train, val


def evaluate(eval_batch, val) -> dict[str, float]:
    sums = [0.0, 0.0, 0.0, 0.0]
    for images, targets in val:
        sums = [a + float(b) for a, b in zip(sums, eval_batch(images, targets), strict=True)]
    loss, top1, top5, count = sums
    count = max(count, 1.0)
    return {"eval_loss": loss / count, "eval_top1": top1 / count, "eval_top5": top5 / count}


def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> dict:
    """Train (or resume) to ``config.train_steps``; export the backbone; return the result.

    ``strategy`` overrides ``config.strategy`` (tests place replicas on logical CPUs).
    """
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    strategy = strategy or make_strategy(config.strategy)
    chief = is_chief(strategy)
    if chief:  # the others write only their checkpoints (own_dir)
        (workdir / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=1) + "\n")
    log_strategy(strategy)
    run = build(config, strategy)
    checkpoints = Checkpoints(
        run.model, run.optimizer, own_dir(strategy, workdir), config.keep_checkpoints
    )
    step = checkpoints.restore()
    loop = pretext_loop(run, config)
    eval_batch = pretext_eval_batch(run, loop.loss)
    skipped = data.skip_counter() if config.skip_corrupt else None
    train_data, val = datasets(config, run, skipped)
    iterator = iter(train_data)
    writer = tf.summary.create_file_writer(str(workdir / "tb")) if chief else None
    if chief and step == 0:
        _input_grid(writer, config, run.label)
    best, history = math.inf, []
    metrics_path = workdir / "metrics.jsonl"
    while step < config.train_steps:
        steps = min(config.steps_per_loop, config.train_steps - step)
        record = {"step": step + steps} | loop.run_steps(iterator, steps)
        step += steps
        if skipped is not None:
            record["skipped_records"] = int(skipped.numpy())
        evaluation_due = step % config.eval_every == 0 or step == config.train_steps
        if chief and val is not None and evaluation_due:
            record |= evaluate(eval_batch, val)
        log_record(writer, metrics_path, record)
        if chief and "eval_loss" in record:
            _weight_histograms(writer, step, run.model)
        history.append(record)
        if step % config.checkpoint_every == 0 or step == config.train_steps:
            checkpoints.save(step)
            if record.get("eval_loss", math.inf) < best:  # only the chief evaluates
                best = record["eval_loss"]
                checkpoints.save_best(step)
    result = {"config": asdict(config), "final": history[-1] if history else {}}
    if chief:
        export(run.backbone, workdir / "export")
        (workdir / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result | {"history": history}


def log_strategy(strategy: tf.distribute.Strategy) -> None:
    """Say which strategy trains, over how many replicas, on which devices."""
    logger.info(
        "%s over %d replica(s) on %s",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        ", ".join(d.name for d in tf.config.list_logical_devices() if "CPU" not in d.name)
        or "the CPU",
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is None or resolver.task_id in (0, None)


def own_dir(strategy: tf.distribute.Strategy, workdir: Path) -> Path:
    """Where this worker checkpoints: every worker saves (saving may need them all), the
    chief into the workdir, the others into workers/<task id>/."""
    if is_chief(strategy):
        return workdir
    return workdir / "workers" / str(strategy.cluster_resolver.task_id)


def log_record(writer, metrics_path: Path, record: dict) -> None:
    """One log line; on the chief (which alone has a ``writer``) also one JSON line of
    metrics.jsonl and a TensorBoard scalar per figure."""
    logger.info("%s", "  ".join(f"{k} {v:.4g}" for k, v in record.items()))
    if writer is None:
        return
    with open(metrics_path, "a") as f:
        f.write(json.dumps(record) + "\n")
    with writer.as_default(step=record["step"]):
        for key, value in record.items():
            if key != "step":
                tf.summary.scalar(key, value)


HISTOGRAM_VALUES = 2**16


def _weight_histograms(writer, step: int, model: keras.Model) -> None:
    """A histogram per weight, of an evenly strided subsample of at most 65536 values:
    tf.summary.histogram's working memory grows with its input times its bucket count
    (10 GB for AlexNet's fc6), and the shape of the distribution needs no more."""
    with writer.as_default(step=step):
        for variable in model.trainable_variables:
            values = tf.reshape(variable.value, [-1])
            stride = max(1, int(values.shape[0]) // HISTOGRAM_VALUES)
            tf.summary.histogram(variable.path, values[::stride])


def _input_grid(writer, config: TrainConfig, label: data.LabelSpec) -> None:
    """What the network sees: a few augmented training inputs, logged once."""
    augment = data.Augment(image_size=config.image_size, color_jitter=config.color_jitter)
    sample = data.pretext_dataset(
        config.data_dir, "train", label, 8, training=True, augment=augment, seed=config.seed
    )
    images, _ = next(iter(sample))
    with writer.as_default(step=0):
        tf.summary.image("augmented_inputs", data.image_grid(images, 8), max_outputs=8)


def export(backbone: keras.Model, directory: Path) -> None:
    """The backbone alone: a SavedModel whose serving signature maps float images to the
    named feature maps, and a .keras file to fine-tune under a new head."""
    directory.mkdir(parents=True, exist_ok=True)
    backbone.export(
        str(directory / "backbone"),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        verbose=False,
    )
    backbone.save(directory / "backbone.keras")


def export_checkpoint(workdir: Path, number: int | None = None) -> Path:
    """Export the backbone of checkpoint ``number`` (default: the last) of a run."""
    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        raise ValueError(f"{path} not found: not a tfambient-train workdir")
    config = TrainConfig(**json.loads(path.read_text()))
    run = build(config, tf.distribute.get_strategy())
    checkpoints = Checkpoints(run.model, run.optimizer, Path(workdir), config.keep_checkpoints)
    step = checkpoints.restore(number)
    if not step:
        raise ValueError(f"{workdir} has no checkpoint yet")
    export(run.backbone, Path(workdir) / "export")
    return Path(workdir) / "export"
