"""The one place the tests' tiny runs are configured: a narrow AlexNet (a quarter of its conv
channels, 64-unit fc6 and fc7) on 64 px crops for a few steps, so that every checkpoint and
export stays a few MB (a full-width AlexNet's checkpoint is 0.7 GB). A test overrides only
what it is about. Plain functions, not fixtures, because the scripts that tests start in
fresh processes (strategy_parity.py, multiworker.py, voc_parity.py) use them too."""

from __future__ import annotations

from pathlib import Path

from tfambient.tasks import pretext as train
from tfambient.tasks import probe
from tfambient.tasks import voc as finetune

IMAGE_SIZE = 64
FC_UNITS = 64  # AlexNet's fc6 and fc7 width (4096 as published)
WIDTH = 0.25  # every conv's channels, times the published count
ALEXNET = {"fc_units": FC_UNITS, "width": WIDTH}  # the builder's arguments for it
ALEXNET_FLAGS = (f"--fc_units={FC_UNITS}", f"--width={WIDTH}")  # the commands' flags for it
SMOKE = Path(__file__).parents[1] / "flags" / "smoke.flags"


def smoke_flags(data_dir: Path | str, workdir: Path | str) -> list[str]:
    """tfambient-train's flags as a user's smoke run gives them (flags/smoke.flags: a narrow
    AlexNet with dropout), on the texture_k3 labels of the test data."""
    return [
        f"--flagfile={SMOKE}",
        f"--data_dir={data_dir}",
        f"--workdir={workdir}",
        "--label=texture_k3",  # the test data's; the smoke flags name the demo's
    ]


def train_config(data_dir: Path | str, workdir: Path | str, **overrides) -> train.TrainConfig:
    """A pretext run on the texture_k3 labels of tests/records.py's datasets."""
    settings = dict(
        data_dir=str(data_dir),
        workdir=str(workdir),
        arch="alexnet",
        label="texture_k3",
        image_size=IMAGE_SIZE,
        fc_units=FC_UNITS,
        width=WIDTH,
        batch_size=8,
        train_steps=30,
        steps_per_loop=10,
        eval_every=30,
        checkpoint_every=10,
        keep_checkpoints=1,  # and the best: all a resume needs
        learning_rate=1e-3,
    )
    return train.TrainConfig(**(settings | overrides))


def voc_config(voc_dir: Path | str, workdir: Path | str, **overrides) -> finetune.VocConfig:
    """A VOC transfer run (head mode of a random AlexNet unless overridden)."""
    settings = dict(
        voc_dir=str(voc_dir),
        workdir=str(workdir),
        image_size=IMAGE_SIZE,
        fc_units=FC_UNITS,
        width=WIDTH,
        batch_size=8,
        train_steps=6,
        steps_per_loop=3,
        checkpoint_every=3,
        test_crops=2,
    )
    return finetune.VocConfig(**(settings | overrides))


def probe_config(tree: Path | str, workdir: Path | str, **overrides) -> probe.ProbeConfig:
    """A linear probe of a random AlexNet on conv5 and fc7 of an image_tree.py folder tree,
    choosing between two learning rates on a fifth of train."""
    settings = dict(
        workdir=str(workdir),
        train_dir=f"{tree}/train",
        val_dir=f"{tree}/val",
        fc_units=FC_UNITS,
        width=WIDTH,
        layers="conv5,fc7",
        image_size=IMAGE_SIZE,
        batch_size=8,
        epochs=4,
        learning_rates="0.01,0.1",
        weight_decays="1e-4",
        holdout_fraction=0.2,
    )
    return probe.ProbeConfig(**(settings | overrides))
