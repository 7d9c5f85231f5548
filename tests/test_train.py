"""The pretext training loop on a tiny dataset whose labels are learnable (a colour per
cluster): the loss falls, a stopped run resumes from its checkpoint, the backbone exports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_data import HEIGHT, NUM_TRAIN, NUM_VAL, WIDTH, write_dataset

from tfambient import train

pytestmark = pytest.mark.slow


CLASS_COLOURS = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)], np.float32)


def class_jpeg(index: int) -> bytes:
    """A noisy frame of its cluster's colour (test_data gives cluster index % 3)."""
    rng = np.random.default_rng(index)
    image = CLASS_COLOURS[index % 3] + rng.normal(0, 15, (HEIGHT, WIDTH, 3))
    return tf.io.encode_jpeg(np.clip(image, 0, 255).astype(np.uint8)).numpy()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    jpegs = {i: class_jpeg(i) for i in range(NUM_TRAIN + NUM_VAL)}
    return write_dataset(tmp_path_factory.mktemp("data"), jpegs)


def config(data_dir: Path, workdir: Path, **overrides) -> train.TrainConfig:
    settings = dict(
        data_dir=str(data_dir),
        workdir=str(workdir),
        arch="alexnet",
        label="texture_k3",
        image_size=64,
        batch_size=8,
        train_steps=30,
        steps_per_loop=10,
        eval_every=30,
        checkpoint_every=10,
        learning_rate=1e-3,
    )
    return train.TrainConfig(**(settings | overrides))


def steps_logged(workdir: Path) -> list[int]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_the_loss_falls_well_below_chance_and_the_backbone_is_exported(data_dir, tmp_path):
    result = train.train(config(data_dir, tmp_path))
    chance = math.log(3)
    assert result["final"]["loss"] < 0.3 * chance
    assert result["final"]["eval_loss"] < 0.5 * chance
    assert (tmp_path / "export" / "backbone" / "saved_model.pb").exists()
    assert (tmp_path / "export" / "backbone.keras").exists()


def test_a_stopped_run_resumes_at_its_last_checkpoint(data_dir, tmp_path):
    train.train(config(data_dir, tmp_path, train_steps=20))
    assert steps_logged(tmp_path) == [10, 20]
    train.train(config(data_dir, tmp_path, train_steps=30))
    assert steps_logged(tmp_path) == [10, 20, 30]  # steps 1-20 were not run again


def test_the_one_cycle_schedule_rises_then_falls():
    schedule = train.OneCycle(1e-3, 100, 0.1, "cos")
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == pytest.approx(1e-3 / 25)
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-3)
    assert rates[2] > rates[3] > rates[4] == pytest.approx(1e-7, rel=1e-3)
