"""What the resume tests need: a command killed with -9 at a chosen moment, as a preempted
machine kills it, and what a run leaves behind, read as a user (or TensorBoard) reads it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

# Wall-clock figures: no two runs agree on them.
TIMING = ("images_per_s", "input_wait_fraction")


def run(command: list[str]) -> subprocess.CompletedProcess:
    """The command to its end; its stderr is shown if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def kill_when(command: list[str], moment: Callable[[], bool], timeout: float = 600) -> None:
    """Start the command and kill -9 it as soon as ``moment()`` is true."""
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not moment():
            assert job.poll() is None, "the run ended before the moment to kill it"
            assert time.monotonic() < deadline, "the moment to kill the run never came"
            time.sleep(0.005)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    assert job.returncode == -signal.SIGKILL


def checkpoint_step(workdir: Path) -> int:
    """The step of the last checkpoint saved in WORKDIR/ckpt; 0 before the first."""
    path = tf.train.latest_checkpoint(str(workdir / "ckpt"))
    return int(path.rsplit("-", 1)[1]) if path else 0


def logged(workdir: Path) -> list[dict]:
    """metrics.jsonl's records; a line a kill cut short is not one."""
    path = workdir / "metrics.jsonl"
    records = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


def logged_steps(workdir: Path) -> list[int]:
    return [record["step"] for record in logged(workdir)]


def past_checkpoint(workdir: Path) -> bool:
    """Whether two logs have been written since the last checkpoint: the moment mid-interval,
    when the TensorBoard summaries of the first are on disk too."""
    return sum(step > checkpoint_step(workdir) for step in logged_steps(workdir)) >= 2


def kill_twice_and_rerun(command: list[str], workdir: Path) -> None:
    """Killed right after its first checkpoint, rerun and killed mid-interval, rerun."""
    kill_when(command, lambda: checkpoint_step(workdir) > 0)
    before = len(logged_steps(workdir))  # the rerun logs more than the killed run did
    kill_when(command, lambda: len(logged_steps(workdir)) > before and past_checkpoint(workdir))
    # The killed run logged steps past its last checkpoint: the rerun does them again.
    saved = checkpoint_step(workdir)
    assert max(logged_steps(workdir)) > saved
    assert any(s > saved for curve in tensorboard_curves(workdir).values() for s, _ in curve)
    run(command)


def without_timing(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in TIMING}


def figures(workdir: Path) -> list[dict]:
    """metrics.jsonl's records without the wall-clock figures."""
    return [without_timing(record) for record in logged(workdir)]


def assert_same_figures(got: list[dict], want: list[dict]) -> None:
    """The same steps, each once, and the same figures at each, to float32 rounding (they
    are float32 results; the same ops on the same values give the same bits)."""
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for mine, theirs in zip(got, want, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert abs(mine[key] - value) <= 1e-6 * abs(value), (mine["step"], key)


def tensorboard_curves(workdir: Path) -> dict[str, list[tuple[int, float | None]]]:
    """Every series of WORKDIR/tb as TensorBoard's Python loader reads it (all its points):
    (step, value) for scalars, (step, None) for histograms and images."""
    events = event_accumulator.EventAccumulator(
        str(workdir / "tb"), size_guidance={event_accumulator.TENSORS: 0}
    )
    events.Reload()
    curves = {}
    for tag in set(events.Tags()["tensors"]) - set(TIMING):
        values = [(e.step, tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
        curves[tag] = [(step, float(v) if v.ndim == 0 else None) for step, v in values]
    return curves


def assert_same_curves(got: dict, want: dict) -> None:
    """The same series, with the same steps, each once, and the same scalars (to float32
    rounding)."""
    assert got.keys() == want.keys()
    for tag, points in want.items():
        assert [step for step, _ in got[tag]] == [step for step, _ in points], tag
        for (step, mine), (_, theirs) in zip(got[tag], points, strict=True):
            if theirs is not None:
                assert abs(mine - theirs) <= 1e-6 * abs(theirs), (tag, step)


def assert_logged_alike(workdir: Path, reference: Path) -> None:
    """metrics.jsonl and TensorBoard of ``workdir`` hold the figures of ``reference`` (a run
    of the same command that was never stopped): the same steps, each once."""
    assert_same_figures(figures(workdir), figures(reference))
    assert_same_curves(tensorboard_curves(workdir), tensorboard_curves(reference))


def contents(workdir: Path) -> dict[str, str]:
    """Every file under ``workdir`` and a hash of its bytes."""
    return {
        str(path.relative_to(workdir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(workdir.rglob("*"))
        if path.is_file()
    }
