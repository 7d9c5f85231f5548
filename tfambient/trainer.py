"""The trainer: one loop for every task and every strategy, and what a run leaves behind.

A :class:`Task` (``tfambient.tasks``: pretext training, VOC fine-tuning) gives the trainer a
model and its optimizer, built under the strategy's scope, its training inputs, a per-example
loss, a score to log while training and, if it has them, validation inputs and metrics. The
trainer knows no task: :func:`fit` runs the task's model for :attr:`Plan.train_steps` steps,
evaluating, checkpointing and logging as the :class:`Plan` says, and resumes where the last run
stopped: exactly there, so that a run killed at any moment and rerun gives the figures of a run
that was never stopped (see :func:`fit`).

One custom loop (:class:`Loop`: ``strategy.run`` inside a ``tf.function`` running
``steps_per_loop`` steps) serves the default strategy (a CPU or one GPU), MirroredStrategy (the
local GPUs) and MultiWorkerMirroredStrategy (hosts, from TF_CONFIG): Keras 3's ``Model.fit``
fails under the last on TF 2.21, and one loop is easier to reason about than three. Keras
supplies the layers and the optimizer; losses and scores are reduced across replicas explicitly,
so the figures mean the same under every strategy. Each worker reads its training batches on
the host through one iterator (checkpointed with the model) and hands them to its replicas
(:func:`input_context`, :func:`next_batch`): the iterator that
``distribute_datasets_from_function`` returns cannot be checkpointed.

The work directory: ckpt/ (tf.train.CheckpointManager: the last N, and the best by validation
loss), tb/ (TensorBoard), metrics.jsonl (one line per log or evaluation), beside the task's own
files (config.json, written by :func:`write_config`; an export/ written by :func:`export`).
"""

from __future__ import annotations

import abc
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import tensorflow as tf

from tfambient import hosts
from tfambient.contracts.files import atomic_path, is_partial, write_text
from tfambient.contracts.workdirs import RunWorkdir, TrainWorkdir

logger = logging.getLogger(__name__)

HISTOGRAM_VALUES = 2**16


class Task(abc.ABC):
    """What the trainer trains, and on what.

    A subclass sets ``model`` (images -> logits) and ``optimizer``, both built under the
    strategy's scope, and says how the model learns (``loss``), how well it does while it does
    (``score``, logged as ``score_name``), what it reads (``train_inputs``) and, optionally,
    what it is validated on (``validation_inputs``, ``validation_metrics``).
    """

    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    score_name: str = "score"
    # False where the input's position cannot be saved (tf.data service): a resumed run then
    # reads its input anew, and only the weights, optimizer and random states go on exactly.
    input_checkpointed: bool = True

    @abc.abstractmethod
    def train_inputs(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        """This input pipeline's endless batches of (images, targets), at the replica's size."""

    @abc.abstractmethod
    def loss(self, targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """Per-example losses; the trainer averages them over the global batch."""

    @abc.abstractmethod
    def score(self, targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """A per-example accuracy, logged while training."""

    def validation_inputs(self) -> tf.data.Dataset | None:
        """One finite pass of (images, targets) batches to evaluate on; None: no validation."""
        return None

    def validation_metrics(self, targets: tf.Tensor, logits: tf.Tensor) -> dict[str, tf.Tensor]:
        """Per-example figures, averaged over the validation pass and logged as eval_<name>;
        the best checkpoint is the one of the lowest eval_loss."""
        return {"loss": self.loss(targets, logits), self.score_name: self.score(targets, logits)}

    def counters(self) -> dict[str, int]:
        """Running counts the task keeps (records skipped), added to every log line."""
        return {}

    def log_inputs(self, writer: tf.summary.SummaryWriter) -> None:
        """TensorBoard summaries written once, when a run starts from scratch; none here."""
        return None

    def checkpointed(self) -> dict[str, tf.Variable]:
        """State of the task's own that a resumed run needs (the counters), saved with the
        checkpoints."""
        return {}


@dataclass(frozen=True)
class Plan:
    """How the trainer runs a task: how long, in what batches, and how often it evaluates,
    checkpoints (keeping the last ``keep_checkpoints``) and logs (every ``steps_per_loop``)."""

    train_steps: int
    global_batch_size: int
    steps_per_loop: int
    checkpoint_every: int
    keep_checkpoints: int = 1
    eval_every: int = 0  # 0: only at the last step
    clip_norm: float = 0.0
    jit: bool = False

    def evaluation_due(self, step: int) -> bool:
        return step == self.train_steps or bool(self.eval_every and step % self.eval_every == 0)

    def checkpoint_due(self, step: int) -> bool:
        return step % self.checkpoint_every == 0 or step == self.train_steps


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


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is None or resolver.task_id in (0, None)


def local_replicas(strategy: tf.distribute.Strategy) -> int:
    """The replicas of this worker (the default strategy has one, and no device list)."""
    if strategy.num_replicas_in_sync == 1:
        return 1
    return len(strategy.extended.worker_devices)


def alone(strategy: tf.distribute.Strategy) -> bool:
    """Whether this worker trains alone: with other workers, creating variables and training
    steps are collective, so every worker must build and fit the same model."""
    return local_replicas(strategy) == strategy.num_replicas_in_sync


def input_context(strategy: tf.distribute.Strategy) -> tf.distribute.InputContext:
    """This worker's input pipeline, as ``distribute_datasets_from_function`` would describe it:
    one pipeline per worker, batching for one replica."""
    resolver = getattr(strategy, "cluster_resolver", None)
    worker = resolver.task_id if resolver is not None and resolver.task_id is not None else 0
    replicas = strategy.num_replicas_in_sync
    return tf.distribute.InputContext(
        num_input_pipelines=replicas // local_replicas(strategy),
        input_pipeline_id=worker,
        num_replicas_in_sync=replicas,
    )


def next_batch(strategy: tf.distribute.Strategy, iterator):
    """The next global batch from a host iterator of one replica's batches: this worker's
    replicas take its next batches, one each, in replica order, as the iterator of
    ``distribute_datasets_from_function`` hands them out."""
    replicas = local_replicas(strategy)
    batches = [next(iterator) for _ in range(replicas)]
    return strategy.experimental_distribute_values_from_function(
        lambda context: batches[context.replica_id_in_sync_group % replicas]
    )


def own_dir(strategy: tf.distribute.Strategy, workdir: Path) -> Path:
    """Where this worker checkpoints: every worker saves (saving may need them all), the
    chief into the workdir, the others into workers/<task id>/."""
    if is_chief(strategy):
        return workdir
    return workdir / "workers" / str(strategy.cluster_resolver.task_id)


class Loop:
    """The compiled training loop of any model: ``steps`` steps of ``strategy.run`` inside one
    ``tf.function``, for pretext training and VOC fine-tuning alike.

    ``loss(targets, logits)`` gives per-example losses, averaged over the global batch so that
    replicas sum to the batch mean; ``score(targets, logits)`` a per-example accuracy. The
    iterator it reads yields one replica's batches on the host (:func:`input_context`).
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

    @classmethod
    def of(cls, task: Task, strategy: tf.distribute.Strategy, plan: Plan) -> Loop:
        """The loop that trains ``task`` as ``plan`` says."""
        return cls(
            strategy,
            task.model,
            task.optimizer,
            task.loss,
            task.score,
            global_batch_size=plan.global_batch_size,
            clip_norm=plan.clip_norm,
            jit=plan.jit,
            score_name=task.score_name,
        )

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
                images, targets = next_batch(strategy, iterator)
            with tf.control_dependencies(strategy.experimental_local_results(images)):
                waited += tf.timestamp() - asked
            loss, score = strategy.run(self._step, args=(images, targets))
            total_loss += strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            total_score += strategy.reduce(tf.distribute.ReduceOp.SUM, score, axis=None)
        steps = tf.cast(steps, tf.float32)
        return total_loss / steps, total_score / steps, waited


class Checkpoints:
    """The last ``keep`` checkpoints and the best by validation loss, both resumable.

    ``state`` names what else a resume needs (the input iterator, random states); a checkpoint
    that holds more than is asked for (an export asks only for the model) restores too.
    """

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        workdir: Path,
        keep: int,
        **state,
    ):
        directory = RunWorkdir(workdir).checkpoints
        self.state = state
        self.missing: list[str] = []  # what of ``state`` the restored checkpoint lacks
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **state)
        self.last = tf.train.CheckpointManager(self.checkpoint, directory, keep)
        self.best = tf.train.CheckpointManager(
            self.checkpoint, directory / "best", 1, checkpoint_name="best"
        )

    def restore(self, number: int | None = None) -> int:
        """Resume from checkpoint ``number`` (default: the last one, if any); returns its
        step (0 when starting fresh). A checkpoint without some of ``state`` (written before
        tfambient saved it) restores its weights and step, and :attr:`missing` names the rest."""
        path = self.last.latest_checkpoint
        if number is not None:
            path = next((p for p in self.last.checkpoints if p.endswith(f"-{number}")), None)
            if path is None:
                kept = ", ".join(p.rsplit("-", 1)[1] for p in self.last.checkpoints)
                raise ValueError(f"no checkpoint {number} in {self.last.directory}; kept: {kept}")
        if path:
            self.missing = self._missing_state(path)
            status = self.checkpoint.restore(path).expect_partial()
            if not self.missing:  # else the caller decides whether the run may go on
                try:
                    status.assert_existing_objects_matched()
                except AssertionError:  # TensorFlow's message lists the variables, over lines
                    raise ValueError(
                        f"cannot restore {path}: it lacks variables of the model these settings "
                        "build (written by an older tfambient, e.g. before --color_jitter ran "
                        "in the model, or with other settings): train into a new --workdir"
                    ) from None
                logger.info("restored %s", path)
        return int(self.checkpoint.optimizer.iterations.numpy())

    def _missing_state(self, path: str) -> list[str]:
        """The names of ``state`` that hold something but have no entry in checkpoint ``path``."""
        saved = tf.train.load_checkpoint(path).get_variable_to_shape_map()
        return [
            name
            for name, value in self.state.items()
            if tf.nest.flatten(value) and not any(key.startswith(f"{name}/") for key in saved)
        ]

    def save(self, step: int) -> None:
        self.last.save(checkpoint_number=step)

    def save_best(self, step: int) -> None:
        self.best.save(checkpoint_number=step)


def validation_step(task: Task):
    """A compiled function: the sums of the task's validation metrics over one batch, and its
    number of examples.

    Evaluation runs on the chief alone, outside ``strategy.run``: replicas that split a
    finite validation set get unequal shares, and collective ops would wait forever
    for the replica that ran out first.
    """

    def step(images, targets):
        logits = task.model(images, training=False)
        metrics = task.validation_metrics(targets, logits)
        sums = {name: tf.reduce_sum(values) for name, values in metrics.items()}
        return sums, tf.cast(tf.shape(images)[0], tf.float32)

    return tf.function(step)


def evaluate(step, batches: tf.data.Dataset) -> dict[str, float]:
    """eval_<name>: each validation metric's mean over the examples of ``batches``."""
    totals: dict[str, float] = {}
    count = 0.0
    for images, targets in batches:
        sums, examples = step(images, targets)
        for name, value in sums.items():
            totals[name] = totals.get(name, 0.0) + float(value)
        count += float(examples)
    count = max(count, 1.0)
    return {f"eval_{name}": total / count for name, total in totals.items()}


def fit(task: Task, strategy: tf.distribute.Strategy, workdir: Path, plan: Plan) -> list[dict]:
    """Train ``task`` (built under ``strategy``) to ``plan.train_steps``, resuming from the
    last checkpoint in ``workdir``; returns the records logged by this call, one per loop.

    A checkpoint holds all the state of a run: the weights, the optimizer (and so the step and
    the schedule), the input iterator (its position, shuffle buffers and augmentation draws),
    the model's random states (dropout), the best validation loss so far and the task's
    counters. So a resumed run goes on as the stopped run would have, to the last digit when
    its input pipeline is deterministic; what the stopped run logged after that checkpoint is
    dropped (:func:`forget_after`) and logged again. A run already at its last step changes
    nothing.

    Every worker trains and checkpoints (into :func:`own_dir`); only the chief evaluates,
    logs and keeps the best checkpoint.
    """
    chief = is_chief(strategy)
    iterator = iter(task.train_inputs(input_context(strategy)))
    best = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_eval_loss")
    checkpoints = Checkpoints(
        task.model,
        task.optimizer,
        own_dir(strategy, workdir),
        plan.keep_checkpoints,
        **({"input": iterator} if task.input_checkpointed else {}),
        random=random_states(task.model),
        best_eval_loss=best,
        **task.checkpointed(),
    )
    step = checkpoints.restore()
    if checkpoints.missing and step < plan.train_steps:
        raise ValueError(
            f"{checkpoints.last.latest_checkpoint} has no {', '.join(checkpoints.missing)}: it "
            "was written before tfambient saved the input position with the weights (or by a "
            "run whose input came from --data_service), so the run cannot go on exactly where "
            "it stopped; start it again with a new --workdir"
        )
    log_strategy(strategy)
    layout = RunWorkdir(workdir)
    if chief:
        forget_after(layout, step)
    if step >= plan.train_steps:
        return []
    loop = Loop.of(task, strategy, plan)
    validation = task.validation_inputs() if chief else None
    evaluation_step = validation_step(task) if validation is not None else None
    writer = tf.summary.create_file_writer(str(layout.tensorboard)) if chief else None
    if chief and step == 0:
        task.log_inputs(writer)
    history = []
    while step < plan.train_steps:
        steps = min(plan.steps_per_loop, plan.train_steps - step)
        record = {"step": step + steps} | loop.run_steps(iterator, steps)
        step += steps
        record |= task.counters()
        evaluated = evaluation_step is not None and plan.evaluation_due(step)
        if evaluated:
            record |= evaluate(evaluation_step, validation)
        log_record(writer, layout.metrics_log, record)
        if chief and evaluated:
            _weight_histograms(writer, step, task.model)
        history.append(record)
        if plan.checkpoint_due(step):
            if writer is not None:  # what a resume keeps is on disk
                writer.flush()
            # Only the chief evaluates; the best loss is saved with the step it was reached by.
            improved = record.get("eval_loss", math.inf) < float(best.numpy())
            if improved:
                best.assign(record["eval_loss"])
            checkpoints.save(step)
            if improved:
                checkpoints.save_best(step)
    return history


def random_states(model: keras.Model) -> list:
    """The model's random-number states (dropout's seed generators): Keras counts them among
    ``model.variables`` but not among its weights, which are all tf.train.Checkpoint saves of
    a model."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def last_record(workdir: Path) -> dict:
    """The last figures a run logged in metrics.jsonl ({} before its first log)."""
    records = RunWorkdir(workdir).read_metrics_log()
    return records[-1] if records else {}


def finished(recorded: dict, settings: dict) -> bool:
    """Whether the settings a run recorded with its result are ``settings`` (as JSON stores
    them): then the run finished, and rerunning the same command has nothing to do."""
    return recorded == json.loads(json.dumps(settings))


def log_strategy(strategy: tf.distribute.Strategy) -> None:
    """Say which strategy trains, over how many replicas, on which devices."""
    logger.info(
        "%s over %d replica(s) on %s",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        ", ".join(d.name for d in tf.config.list_logical_devices() if "CPU" not in d.name)
        or "the CPU",
    )


def write_config(workdir: Path, config) -> None:
    """WORKDIR/config.json: the fields of the dataclass that decides the run."""
    workdir.mkdir(parents=True, exist_ok=True)
    RunWorkdir(workdir).write_config(asdict(config))


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


def forget_after(workdir: RunWorkdir, step: int) -> None:
    """Drop what a stopped run logged after ``step``, the step its rerun resumes from, so that
    the rerun's figures replace it rather than repeat it: metrics.jsonl keeps its lines up to
    ``step``, TensorBoard's event files their events up to it (on a fresh start, none: step 0
    is logged again). A line or event cut short by a kill goes too. Nothing is rewritten when
    nothing goes."""
    _truncate_metrics(workdir.metrics_log, step)
    if workdir.tensorboard.is_dir():
        _truncate_events(workdir.tensorboard, step)


def _logged_step(line: str) -> int | None:
    """The step of a metrics.jsonl line; None for a line a kill cut short."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def _truncate_metrics(path: Path, step: int) -> None:
    if not path.is_file():
        return
    text = path.read_text()
    kept = [
        line.rstrip("\n") + "\n"
        for line in text.splitlines(keepends=True)
        if (logged := _logged_step(line)) is not None and logged <= step
    ]
    if "".join(kept) != text:
        write_text(path, "".join(kept))


def _event_records(path: Path) -> tuple[list[bytes], bool]:
    """The whole records of an event file, and whether a kill cut its last one short."""
    records = []
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            records.append(record.numpy())
    except tf.errors.DataLossError:
        return records, True
    return records, False


def _kept(event, step: int) -> bool:
    """Whether a resume from ``step`` keeps an event: the file's own (its version) and the
    summaries up to ``step``, unless the run starts afresh and logs step 0 again."""
    return not event.HasField("summary") or (step > 0 and event.step <= step)


def _truncate_events(directory: Path, step: int) -> None:
    """Each event file without the events past ``step``. TensorBoard's two loaders tell a
    restart differently (the Rust one by a step going back, the Python one only by a
    SessionLog.START event) and a script reading the files sees every event; with the
    events gone, every reader draws one curve."""
    for path in directory.iterdir():
        if is_partial(path):  # a rewrite a kill interrupted; TensorBoard would read it
            path.unlink()
    for path in sorted(directory.glob("*tfevents*")):
        records, torn = _event_records(path)
        events = [tf.compat.v1.Event.FromString(record) for record in records]
        keep = [_kept(event, step) for event in events]
        if all(keep) and not torn:
            continue
        if not any(k and event.HasField("summary") for k, event in zip(keep, events, strict=True)):
            path.unlink()
            continue
        with atomic_path(path) as tmp, tf.io.TFRecordWriter(str(tmp)) as out:
            for record, kept in zip(records, keep, strict=True):
                if kept:
                    out.write(record)


def _weight_histograms(writer, step: int, model: keras.Model) -> None:
    """A histogram per weight, of an evenly strided subsample of at most 65536 values:
    tf.summary.histogram's working memory grows with its input times its bucket count
    (10 GB for AlexNet's fc6), and the shape of the distribution needs no more."""
    with writer.as_default(step=step):
        for variable in model.trainable_variables:
            values = tf.reshape(variable.value, [-1])
            stride = max(1, int(values.shape[0]) // HISTOGRAM_VALUES)
            tf.summary.histogram(variable.path, values[::stride])


def export(backbone: keras.Model, workdir: TrainWorkdir) -> None:
    """The backbone alone: a SavedModel whose serving signature maps float images to the
    named feature maps, and a .keras file to fine-tune under a new head."""
    workdir.export.mkdir(parents=True, exist_ok=True)
    module, signatures = _servable(backbone)
    tf.saved_model.save(module, str(workdir.saved_model), signatures=signatures)
    with atomic_path(workdir.backbone) as tmp:
        backbone.save(tmp)


def _servable(backbone: keras.Model) -> tuple[tf.Module, dict]:
    """The backbone as a tf.Module holding its tf.Variables, and its signatures ("serve" and
    "serving_default": float images of any size -> the named features).

    Not ``backbone.export``: Keras 3's SavedModel holds every weight twice, once through its
    keras.Variable wrappers and once through the tf.Variables the traced function captures
    (keras-team/keras#23553), so the file and every server's memory are twice the model.
    Tracking the captured tf.Variables alone stores each once, and TF1-style loaders (TF
    Serving, saved_model_cli run) find them, which they do not when the Keras model is
    tracked instead."""
    module = tf.Module()
    module.tf_variables = [variable.value for variable in backbone.variables]
    images = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
    module.serve = tf.function(lambda images: backbone(images, training=False), [images])
    return module, {"serve": module.serve, "serving_default": module.serve}
