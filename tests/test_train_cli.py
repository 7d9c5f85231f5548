"""tfambient-train and tfambient-export as a user runs them: killed with -9 part-way, the
same command resumes at the last checkpoint; the exported SavedModel, loaded in a fresh
process, gives the Keras backbone's features."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfambient.models  # noqa: F401  (registers the layers a saved AlexNet needs)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SMOKE = Path(__file__).parents[1] / "flags" / "smoke.flags"


def train_args(data_dir: Path, workdir: Path) -> list[str]:
    return [
        str(BIN / "tfambient-train"),
        f"--flagfile={SMOKE}",
        f"--data_dir={data_dir}",
        f"--workdir={workdir}",
        "--label=texture_k3",  # the test data's; the smoke flags name the demo's
        "--batch_size=8",
        "--train_steps=40",
        "--steps_per_loop=5",
        "--checkpoint_every=10",
        "--keep_checkpoints=2",  # 30 and 40: the export below takes 30
        "--eval_every=20",
    ]


def test_killed_training_resumes_then_exports_a_backbone_that_loads_anywhere(data_dir, tmp_path):
    workdir = tmp_path / "run"
    job = subprocess.Popen(train_args(data_dir, workdir), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while tf.train.latest_checkpoint(str(workdir / "ckpt")) is None:
        assert job.poll() is None and time.monotonic() < deadline, "no checkpoint was saved"
        time.sleep(0.1)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "training ended before it could be killed"
    saved = int(tf.train.latest_checkpoint(str(workdir / "ckpt")).rsplit("-", 1)[1])
    assert 10 <= saved < 40

    resumed = subprocess.run(
        train_args(data_dir, workdir), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"restored {workdir / 'ckpt' / f'ckpt-{saved}'}" in resumed.stderr
    assert json.loads((workdir / "result.json").read_text())["final"]["step"] == 40
    assert "--label=texture_k3" in (workdir / "flags.txt").read_text()

    exported = subprocess.run(
        [str(BIN / "tfambient-export"), f"--workdir={workdir}", "--checkpoint=30"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "model = tf.saved_model.load(sys.argv[1])\n"
        "out = model.serve(tf.constant(np.load(sys.argv[2])))\n"
        "np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(workdir / "export" / "backbone"),
            str(tmp_path / "images.npy"),
            str(tmp_path / "served.npz"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    served = np.load(tmp_path / "served.npz")
    backbone = keras.models.load_model(workdir / "export" / "backbone.keras")
    features = backbone(images, training=False)
    assert set(served.files) == set(features)
    for name in ("pool5", "fc7"):
        np.testing.assert_allclose(served[name], features[name], atol=1e-5)

    # As TF Serving loads it (a TF1 session, no Python objects): the same features, and each
    # weight stored once (Keras's own export stores each twice).
    served_by_session = [
        str(BIN / "saved_model_cli"),
        "run",
        f"--dir={workdir / 'export' / 'backbone'}",
        "--tag_set=serve",
        "--signature_def=serving_default",
        f"--inputs=images={tmp_path / 'images.npy'}",
        f"--outdir={tmp_path / 'session'}",
    ]
    session = subprocess.run(
        served_by_session,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert session.returncode == 0, session.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "session" / "fc7.npy"), served["fc7"], atol=1e-5)
    stored = (workdir / "export" / "backbone" / "variables").glob("variables.data-*")
    assert sum(p.stat().st_size for p in stored) < 1.05 * 4 * backbone.count_params()


def test_user_mistakes_give_one_line_and_status_2(tmp_path):
    result = subprocess.run(
        [str(BIN / "tfambient-train"), f"--data_dir={tmp_path}", f"--workdir={tmp_path}/w"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "dataset.json not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    flags = [f"--data_dir={tmp_path}", f"--workdir={tmp_path}/w", "--width=-0.5"]
    result = subprocess.run(
        [str(BIN / "tfambient-train"), *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--width must be above 0, got -0.5" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run(
        [str(BIN / "tfambient-export"), f"--workdir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "not a tfambient-train workdir" in result.stderr


def test_a_checkpoint_without_the_jitter_count_gives_one_line_and_status_2(data_dir, tmp_path):
    """A workdir trained before the input layer drew --color_jitter's factors in the model
    holds no count of its draws: its checkpoints are those of a run without jitter today.
    Rerun with jitter, it is refused in one line, not with TensorFlow's traceback."""
    workdir = tmp_path / "run"
    before = [*train_args(data_dir, workdir), "--train_steps=5", "--checkpoint_every=5"]
    trained = subprocess.run(before, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    rerun = subprocess.run(
        [*train_args(data_dir, workdir), "--color_jitter=0.5"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 2, rerun.stderr[-3000:]
    said = "tfambient-train: error: "
    errors = [line for line in rerun.stderr.splitlines() if line.startswith(said)]
    assert "Traceback" not in rerun.stderr and len(errors) == 1, rerun.stderr[-3000:]
    assert errors[0].startswith(f"{said}cannot restore {workdir / 'ckpt'}")
    assert errors[0].endswith("train into a new --workdir")
