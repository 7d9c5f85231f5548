"""A resumed run continues exactly where it stopped: tfambient-train killed with -9 right
after a checkpoint, rerun, killed again mid-interval and rerun logs, step for step, the figures
of a run that was never stopped (the input stream, its shuffles and augmentation draws, and
dropout included), each step once, in metrics.jsonl and TensorBoard; under the default strategy
and mirrored over two logical CPUs. Rerunning a finished run changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import tensorflow as tf
from killing import (
    assert_logged_alike,
    assert_same_figures,
    contents,
    figures,
    kill_twice_and_rerun,
    logged_steps,
    run,
    without_timing,
)
from tiny import smoke_flags, train_config

from tfambient.tasks import pretext

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# Checkpoints at 10, 20, 30; logs every 2 steps, so a kill lands between checkpoints.
SETTINGS = {
    "batch_size": 8,
    "train_steps": 30,
    "steps_per_loop": 2,
    "checkpoint_every": 10,
    "eval_every": 10,
    "keep_checkpoints": 1,
    "color_jitter": 0.5,  # one more random draw per image
}
STEPS = list(range(2, 31, 2))


def train_command(data_dir: Path, workdir: Path) -> list[str]:
    """tfambient-train as a user runs it: the smoke flags (a narrow AlexNet with dropout)."""
    flags = [f"--{name}={value}" for name, value in SETTINGS.items()]
    return [str(BIN / "tfambient-train"), *smoke_flags(data_dir, workdir), *flags]


def mirrored_command(data_dir: Path, workdir: Path) -> list[str]:
    """The same run mirrored over two logical CPUs (tiny.py's narrow AlexNet, with dropout)."""
    script = Path(__file__).with_name("mirrored_train.py")
    return [sys.executable, str(script), str(data_dir), str(workdir), json.dumps(SETTINGS)]


def test_a_run_killed_twice_logs_what_an_unstopped_run_logs_and_a_rerun_changes_nothing(
    data_dir, tmp_path
):
    reference, workdir = tmp_path / "reference", tmp_path / "killed"
    run(train_command(data_dir, reference))
    kill_twice_and_rerun(train_command(data_dir, workdir), workdir)

    assert logged_steps(workdir) == STEPS
    assert_logged_alike(workdir, reference)
    result = json.loads((workdir / "result.json").read_text())
    assert_same_figures([without_timing(result["final"])], figures(reference)[-1:])

    finished = contents(workdir)
    rerun = run(train_command(data_dir, workdir))
    assert contents(workdir) == finished  # result.json, export, metrics, TensorBoard
    assert "trained to step 30" in rerun.stdout


def test_mirrored_over_two_devices_a_killed_run_logs_what_an_unstopped_run_logs(data_dir, tmp_path):
    reference, workdir = tmp_path / "reference", tmp_path / "killed"
    done = run(mirrored_command(data_dir, reference))
    assert "MirroredStrategy over 2 replica(s)" in done.stderr
    kill_twice_and_rerun(mirrored_command(data_dir, workdir), workdir)

    assert logged_steps(workdir) == STEPS
    assert_logged_alike(workdir, reference)


def test_a_checkpoint_from_before_exact_resume_is_one_line_and_status_2(data_dir, tmp_path):
    """A checkpoint holding only the weights and the optimizer, as tfambient wrote them before
    it saved the input position: the rerun says what to do instead of a traceback."""
    workdir = tmp_path / "old"
    config = train_config(data_dir, workdir)
    task = pretext.PretextTask(config, tf.distribute.get_strategy())
    task.optimizer.build(task.model.trainable_variables)
    task.optimizer.iterations.assign(10)
    old = tf.train.Checkpoint(model=task.model, optimizer=task.optimizer)
    tf.train.CheckpointManager(old, str(workdir / "ckpt"), 1).save(checkpoint_number=10)
    before = contents(workdir / "ckpt")

    flags = [f"--{name}={value}" for name, value in asdict(config).items()]
    done = subprocess.run(
        [str(BIN / "tfambient-train"), *flags], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("\n") == 1, done.stderr
    assert "ckpt-10 has no input, random, best_eval_loss" in done.stderr
    assert "start it again with a new --workdir" in done.stderr
    assert contents(workdir / "ckpt") == before
    assert not (workdir / "metrics.jsonl").exists() and not (workdir / "tb").exists()
