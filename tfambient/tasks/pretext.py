"""The pretext task: predict a frame's sound cluster (or its PCA sign bits) from the frame.

:class:`PretextTask` gives :mod:`tfambient.trainer` a backbone under a softmax (K cluster ids)
or sigmoid (B sign bits) head, AdamW with a one-cycle schedule, the prepared shards as input
(:func:`tfambient.data.pretext_dataset`), and the validation split's loss, top-1 and top-5.
:func:`train` runs it (tfambient-train), :func:`export_checkpoint` exports a checkpoint of a
run (tfambient-export).

The work directory holds everything a run needs to resume or be understood: flags.txt (from
the command), config.json, ckpt/, tb/ and metrics.jsonl (the trainer's), result.json, and
export/ (the backbone as a SavedModel and a .keras file).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import keras
import tensorflow as tf

from tfambient import architectures, data, data_service, models, trainer
from tfambient.configs import TrainConfig, with_defaults
from tfambient.contracts.files import write_json
from tfambient.contracts.workdirs import TrainWorkdir


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


class PretextTask(trainer.Task):
    """A backbone and its pretext head, built under ``strategy``, and the data it learns from."""

    score_name = "top1"

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy):
        self.config = config
        self.label = data.label_spec(config.data_dir, config.label)
        self.augment = data.Augment(image_size=config.image_size)
        keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            self.image_input = models.ImageInput(config.color_jitter, config.seed)
            self.backbone = _backbone(config)
            self.model = _pretext_model(self.backbone, config, self.label, self.image_input)
            self.optimizer = _optimizer(config)
            self.optimizer.build(self.model.trainable_variables)
        # Outside the scope: a mirrored variable could not count on the host. The workers
        # of a tf.data service cannot count in it: they print what they skip.
        counted = config.skip_corrupt and not config.data_service
        self.skipped = data.skip_counter() if counted else None
        self.input_checkpointed = not config.data_service  # a service's stream is not saved

    def train_inputs(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        """The train split, augmented; with --skip_corrupt, the records skipped are counted."""
        return self._augmented(
            self.config.batch_size,
            input_context=context,
            skip_corrupt=self.config.skip_corrupt,
            skipped=self.skipped,
        )

    def validation_inputs(self) -> tf.data.Dataset | None:
        """One pass over the val split (central crops); None without one (--val_fraction=0)."""
        try:
            data.shard_files(self.config.data_dir, "val")
        except ValueError:
            return None
        return data.pretext_dataset(
            self.config.data_dir,
            "val",
            self.label,
            self.config.batch_size,
            training=False,
            augment=self.augment,
        )

    def loss(self, targets, logits):
        """Softmax cross-entropy for cluster ids, sigmoid cross-entropy (mean over bits) for
        binary codes."""
        smoothing = self.config.label_smoothing
        if self.label.kind == "classes":
            onehot = tf.one_hot(targets, self.label.size)
            return keras.losses.categorical_crossentropy(
                onehot, logits, from_logits=True, label_smoothing=smoothing
            )
        return keras.losses.binary_crossentropy(
            targets, logits, from_logits=True, label_smoothing=smoothing
        )

    def score(self, targets, logits):
        return _correct(self.label, targets, logits, 1)

    def validation_metrics(self, targets, logits) -> dict[str, tf.Tensor]:
        return {
            "loss": self.loss(targets, logits),
            "top1": _correct(self.label, targets, logits, 1),
            "top5": _correct(self.label, targets, logits, min(5, self.label.size)),
        }

    def counters(self) -> dict[str, int]:
        return {} if self.skipped is None else {"skipped_records": int(self.skipped.numpy())}

    def checkpointed(self) -> dict[str, tf.Variable]:
        return {} if self.skipped is None else {"skipped_records": self.skipped}

    def log_inputs(self, writer: tf.summary.SummaryWriter) -> None:
        """What the network sees: a few augmented training inputs."""
        images, _ = next(iter(self._augmented(8, skip_corrupt=self.config.skip_corrupt)))
        shown = data.image_grid(self.image_input.preview(images), 8)
        with writer.as_default(step=0):
            tf.summary.image("augmented_inputs", shown, max_outputs=8)

    def _augmented(self, batch_size: int, **options) -> tf.data.Dataset:
        """Endless batches of augmented crops of the train split, seeded by --seed; with
        --data_service made by its workers, unseeded (tfambient.data_service)."""
        service = self.config.data_service
        batches = data.pretext_dataset(
            self.config.data_dir,
            "train",
            self.label,
            batch_size,
            training=True,
            augment=self.augment,
            seed=None if service else self.config.seed,
            deterministic=self.config.deterministic,
            **options,
        )
        return data_service.distribute(batches, service) if service else batches


def _backbone(config: TrainConfig) -> keras.Model:
    arch = architectures.get(config.arch)
    shape = (config.image_size, config.image_size, 3)
    return arch.build(input_shape=shape, **arch.options_from(config))


def _pretext_model(
    backbone: keras.Model,
    config: TrainConfig,
    label: data.LabelSpec,
    image_input: models.ImageInput,
):
    """uint8 crops -> logits: the input layer, the backbone and the label's head."""
    head = {"num_classes": label.size} if label.kind == "classes" else {"num_bits": label.size}
    feature = config.feature or architectures.get(config.arch).default_feature
    return models.pretext_model(backbone, feature, image_input=image_input, **head)


def _optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.AdamW(
        learning_rate=OneCycle(
            config.learning_rate, config.train_steps, config.warmup_fraction, config.anneal
        ),
        weight_decay=config.weight_decay,
    )
    if config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _correct(label: data.LabelSpec, targets, logits, k: int):
    """Per-example accuracy: top-k for cluster ids, the fraction of bits right for codes."""
    if label.kind == "classes":
        return tf.cast(tf.math.in_top_k(targets, logits, k), tf.float32)
    return tf.reduce_mean(tf.cast((logits > 0) == (targets > 0.5), tf.float32), axis=-1)


def plan(config: TrainConfig) -> trainer.Plan:
    """How the trainer runs a pretext task."""
    return trainer.Plan(
        train_steps=config.train_steps,
        global_batch_size=config.batch_size,
        steps_per_loop=config.steps_per_loop,
        checkpoint_every=config.checkpoint_every,
        keep_checkpoints=config.keep_checkpoints,
        eval_every=config.eval_every,
        clip_norm=config.clip_norm,
        jit=config.jit,
    )


def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> dict:
    """Train (or resume) to ``config.train_steps``; export the backbone; return the result.

    A run that finished with the same config is left as it is (its result is returned).
    ``strategy`` overrides ``config.strategy`` (tests place replicas on logical CPUs).
    """
    workdir = Path(config.workdir)
    layout = TrainWorkdir(workdir)
    strategy = strategy or trainer.make_strategy(config.strategy)
    done = finished_result(layout, config)
    if done is not None and trainer.alone(strategy):
        return done | {"history": []}
    if trainer.is_chief(strategy):  # the others write only their checkpoints (own_dir)
        trainer.write_config(workdir, config)
    task = PretextTask(config, strategy)
    history = trainer.fit(task, strategy, workdir, plan(config))
    if done is not None:  # the workers of a finished run restored its end together
        return done | {"history": history}
    # Nothing trained: a run killed after its last checkpoint, whose last figures were logged
    # (a worker other than the chief logs none: its step).
    reached = {"step": int(task.optimizer.iterations.numpy())}
    final = history[-1] if history else trainer.last_record(workdir) or reached
    result = {"config": asdict(config), "final": final}
    if trainer.is_chief(strategy):
        trainer.export(task.backbone, layout)
        write_json(layout.result, result)
    return result | {"history": history}


def finished_result(layout: TrainWorkdir, config: TrainConfig) -> dict | None:
    """The result of a run in ``layout`` that finished with ``config``; None if there is none
    (a worker other than the chief writes no result)."""
    if not layout.result.is_file():
        return None
    result = layout.read_result()
    recorded = with_defaults(TrainConfig, result.get("config"))
    return result if trainer.finished(recorded, asdict(config)) else None


def export_checkpoint(workdir: Path, number: int | None = None) -> Path:
    """Export the backbone of checkpoint ``number`` (default: the last) of a run."""
    layout = TrainWorkdir(workdir)
    if not layout.config.exists():
        raise ValueError(f"{layout.config} not found: not a tfambient-train workdir")
    config = TrainConfig(**layout.read_config())
    task = PretextTask(config, tf.distribute.get_strategy())
    checkpoints = trainer.Checkpoints(
        task.model, task.optimizer, Path(workdir), config.keep_checkpoints
    )
    step = checkpoints.restore(number)
    if not step:
        raise ValueError(f"{workdir} has no checkpoint yet")
    trainer.export(task.backbone, layout)
    return layout.export
