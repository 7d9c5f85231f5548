"""The pretext training loop on a tiny dataset whose labels are learnable (a colour per
cluster): the loss falls, a stopped run resumes from its checkpoint, the backbone exports."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import pytest
from parity import run_parity_script
from records import write_dataset
from tiny import train_config

from tfambient.contracts.files import write_json
from tfambient.contracts.workdirs import TrainWorkdir
from tfambient.tasks import pretext as train

pytestmark = pytest.mark.slow


def steps_logged(workdir: Path) -> list[int]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_the_loss_falls_well_below_chance_and_the_backbone_is_exported(data_dir, tmp_path):
    # Without dropout: at 0.5 on fc layers 64 wide, it makes the logged training loss of the
    # last 10 steps hang on two batches' masks (0.07 to 0.65 over seeds 0-7, float or uint8
    # crops alike), where the bar below should judge learning, not luck.
    result = train.train(train_config(data_dir, tmp_path, dropout=0.0))
    chance = math.log(3)
    assert result["final"]["loss"] < 0.3 * chance
    assert result["final"]["eval_loss"] < 0.5 * chance
    assert (tmp_path / "export" / "backbone" / "saved_model.pb").exists()
    assert (tmp_path / "export" / "backbone.keras").exists()


def test_a_stopped_run_resumes_at_its_last_checkpoint(data_dir, tmp_path):
    train.train(train_config(data_dir, tmp_path, train_steps=20))
    assert steps_logged(tmp_path) == [10, 20]
    train.train(train_config(data_dir, tmp_path, train_steps=30))
    assert steps_logged(tmp_path) == [10, 20, 30]  # steps 1-20 were not run again


def test_the_count_of_skipped_records_goes_on_across_a_resume(tmp_path):
    (tmp_path / "data").mkdir()
    data_dir = write_dataset(tmp_path / "data", {3: b"not a jpeg"})  # skipped every epoch
    settings = dict(skip_corrupt=True, steps_per_loop=5, checkpoint_every=5, eval_every=20)
    whole = train.train(train_config(data_dir, tmp_path / "whole", train_steps=20, **settings))
    train.train(train_config(data_dir, tmp_path / "parts", train_steps=10, **settings))
    parts = train.train(train_config(data_dir, tmp_path / "parts", train_steps=20, **settings))
    # Counted as the reader meets them, which runs ahead of training by what the timing of
    # the parallel reads allows: two runs may differ by a record. Restarted at zero, the
    # resumed count would hold only what was read after the resume (a few of 70 here).
    skipped = parts["final"]["skipped_records"], whole["final"]["skipped_records"]
    assert abs(skipped[0] - skipped[1]) <= 2 and skipped[1] > 10


def test_mirrored_over_two_devices_follows_the_one_device_loss_curve(data_dir, tmp_path):
    curves = run_parity_script("strategy_parity.py", data_dir, tmp_path)
    assert len(curves["one"]) == len(curves["two"]) == 6
    # The same global batches, the same initial weights: only the order of float32 sums
    # differs (each replica sums half the batch, then the two halves are added), a relative
    # difference of ~1e-7 per step that six Adam steps at lr 1e-4 leave far below 1e-4.
    np.testing.assert_allclose(curves["two"], curves["one"], rtol=1e-4)
    assert curves["one"][0] != curves["one"][-1]  # it trained


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_and_xla_run_the_same_loop(data_dir, tmp_path, policy):
    try:
        result = train.train(
            train_config(
                data_dir,
                tmp_path,
                mixed_precision=policy,
                jit=True,
                train_steps=4,
                steps_per_loop=2,
                eval_every=4,
                checkpoint_every=4,
            )
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert math.isfinite(result["final"]["loss"]) and result["final"]["step"] == 4


def test_the_one_cycle_schedule_rises_then_falls():
    schedule = train.OneCycle(1e-3, 100, 0.1, "cos")
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == pytest.approx(1e-3 / 25)
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-3)
    assert rates[2] > rates[3] > rates[4] == pytest.approx(1e-7, rel=1e-3)


def test_a_run_finished_before_a_setting_existed_is_finished_at_its_default(tmp_path):
    """A finished run recorded before --width existed trained at its default: rerunning it
    with that default has nothing to do; with another width it is a different run."""
    config = train_config(tmp_path, tmp_path / "run", width=1.0)
    layout = TrainWorkdir(config.workdir)
    layout.root.mkdir()
    older = {name: value for name, value in asdict(config).items() if name != "width"}
    write_json(layout.result, {"config": older, "final": {"step": config.train_steps}})
    assert train.finished_result(layout, config)["config"] == older
    assert train.finished_result(layout, replace(config, width=0.5)) is None
