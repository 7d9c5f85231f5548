"""The trainer knows no task: a task it has never seen (a linear classifier on points)
trains, evaluates, keeps its best checkpoint and resumes, exactly where it stopped (its input
order and dropout too), dropping what was logged after its checkpoint; and it imports no task."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from killing import figures, tensorboard_curves

from tfambient import trainer
from tfambient.contracts.workdirs import RunWorkdir

POINTS = 256


def points(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in 4-d whose class is the sign of their first coordinate."""
    x = np.random.default_rng(seed).normal(size=(POINTS, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32)


class PointsTask(trainer.Task):
    score_name = "accuracy"

    def __init__(self, strategy: tf.distribute.Strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            self.model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
            self.optimizer = keras.optimizers.SGD(0.5)
            self.optimizer.build(self.model.trainable_variables)

    def train_inputs(self, context):
        batch = context.get_per_replica_batch_size(16)
        return tf.data.Dataset.from_tensor_slices(points(1)).repeat().batch(batch)

    def validation_inputs(self):
        """Labels flipped: the better it learns, the worse it validates."""
        x, y = points(2)
        return tf.data.Dataset.from_tensor_slices((x, 1 - y)).batch(100)

    def loss(self, targets, logits):
        return keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)

    def score(self, targets, logits):
        return tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == targets, tf.float32)


def plan(train_steps: int) -> trainer.Plan:
    return trainer.Plan(
        train_steps=train_steps,
        global_batch_size=16,
        steps_per_loop=5,
        checkpoint_every=10,
        keep_checkpoints=2,
        eval_every=10,
    )


def test_a_task_the_trainer_has_never_seen_trains_evaluates_and_resumes(tmp_path):
    strategy = tf.distribute.get_strategy()
    history = trainer.fit(PointsTask(strategy), strategy, tmp_path, plan(20))
    assert [record["step"] for record in history] == [5, 10, 15, 20]
    evaluated = [record["step"] for record in history if "eval_loss" in record]
    assert evaluated == [10, 20]
    assert set(history[-1]) >= {"loss", "accuracy", "eval_loss", "eval_accuracy"}
    assert history[-1]["accuracy"] > 0.9 and history[-1]["eval_accuracy"] < 0.1
    assert history[1]["eval_loss"] < history[3]["eval_loss"]
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == history
    assert tf.train.latest_checkpoint(tmp_path / "ckpt").endswith("ckpt-20")
    # The best by validation loss is the first evaluated, not the last saved.
    assert tf.train.latest_checkpoint(tmp_path / "ckpt" / "best").endswith("best-10")
    assert list((tmp_path / "tb").iterdir())

    again = trainer.fit(PointsTask(strategy), strategy, tmp_path, plan(30))
    assert [record["step"] for record in again] == [25, 30]  # resumed at step 20


class ShuffledPointsTask(PointsTask):
    """The points in a shuffled order, through a dropout layer: a resume must restore both."""

    def __init__(self, strategy: tf.distribute.Strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            layers = [keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(2)]
            self.model = keras.Sequential([keras.Input((4,)), *layers])
            self.optimizer = keras.optimizers.SGD(0.1)
            self.optimizer.build(self.model.trainable_variables)

    def train_inputs(self, context):
        batch = context.get_per_replica_batch_size(16)
        points_ = tf.data.Dataset.from_tensor_slices(points(1))
        return points_.shuffle(POINTS, seed=1).repeat().batch(batch)


def test_a_run_stopped_at_a_checkpoint_goes_on_as_a_run_never_stopped(tmp_path):
    strategy = tf.distribute.get_strategy()
    whole = trainer.fit(ShuffledPointsTask(strategy), strategy, tmp_path / "whole", plan(30))
    trainer.fit(ShuffledPointsTask(strategy), strategy, tmp_path / "parts", plan(20))
    rest = trainer.fit(ShuffledPointsTask(strategy), strategy, tmp_path / "parts", plan(30))
    assert [r["loss"] for r in rest] == [r["loss"] for r in whole[-2:]]
    assert figures(tmp_path / "parts") == figures(tmp_path / "whole")
    # The best validation loss is the first (PointsTask validates on flipped labels), here too.
    best = [
        tf.train.latest_checkpoint(tmp_path / run / "ckpt" / "best") for run in ("parts", "whole")
    ]
    assert best[0].endswith("best-10") and best[1].endswith("best-10")
    # Stopped at its last step, a run does nothing more.
    assert trainer.fit(ShuffledPointsTask(strategy), strategy, tmp_path / "parts", plan(30)) == []


def log(workdir: Path, steps: list[int]) -> None:
    """metrics.jsonl lines and TensorBoard scalars at ``steps``, as a run logs them."""
    writer = tf.summary.create_file_writer(str(workdir / "tb"))
    for step in steps:
        trainer.log_record(writer, workdir / "metrics.jsonl", {"step": step, "loss": step / 10})
    writer.close()


def test_a_resume_forgets_what_was_logged_after_its_checkpoint(tmp_path):
    log(tmp_path, [5, 10, 15])
    log(tmp_path, [20])  # a second event file, all of it past the checkpoint
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 25, "lo')  # cut short by a kill
    layout = RunWorkdir(tmp_path)
    trainer.forget_after(layout, 10)
    assert [r["step"] for r in layout.read_metrics_log()] == [5, 10]
    assert tensorboard_curves(tmp_path) == {"loss": [(5, 0.5), (10, 1.0)]}
    assert len(list((tmp_path / "tb").iterdir())) == 1

    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    kept = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files}
    trainer.forget_after(layout, 10)  # nothing past step 10: nothing rewritten
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files} == kept

    trainer.forget_after(layout, 0)  # a fresh start logs everything again
    assert layout.read_metrics_log() == [] and not list((tmp_path / "tb").iterdir())


def test_the_trainer_imports_no_task_and_tasks_import_no_other_task():
    package = Path(trainer.__file__).parent

    def imported(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        return {name for name in names if name.startswith("tfambient")}

    below = ("tfambient.tasks", "tfambient.data", "tfambient.models", "tfambient.voc")
    assert not {name for name in imported(package / "trainer.py") if name.startswith(below)}
    for task in ("pretext", "voc"):
        others = {f"tfambient.tasks.{other}" for other in ("pretext", "voc") if other != task}
        assert not imported(package / "tasks" / f"{task}.py") & others
        assert "tfambient.trainer" in imported(package / "tasks" / f"{task}.py")
