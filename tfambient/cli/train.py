"""tfambient-train: learn visual features by predicting the sound cluster of each frame.

  tfambient-train --flagfile=flags/pretext/alexnet_texture_k30.flags --data_dir=data/
      --workdir=runs/a1

Streams the shards of a tfambient-prepare directory into AlexNet or ResNet-18 with a softmax
(cluster ids) or sigmoid (PCA sign bits) head, with AdamW and a one-cycle schedule, under the
strategy --strategy picks (one device, all local GPUs, or the hosts of TF_CONFIG). Rerunning
the same command resumes from the last checkpoint in --workdir. At the end the backbone is
exported to WORKDIR/export/backbone (SavedModel) and WORKDIR/export/backbone.keras.
"""

from __future__ import annotations

import logging
from pathlib import Path

from absl import flags

from tfambient.cli.common import (
    UserError,
    dataclass_from_flags,
    define_dataclass_flags,
    load_tensorflow,
)
from tfambient.cli.common import run as run_app
from tfambient.contracts.manifest import Manifest

load_tensorflow()  # the flags are TrainConfig's fields, and tasks/pretext.py needs TensorFlow

FLAGS = flags.FLAGS

# Every field of tasks.pretext.TrainConfig is a flag of the same name.
HELP = {
    "data_dir": "A directory written by tfambient-prepare.",
    "workdir": "Checkpoints, TensorBoard logs, metrics and the exported backbone go here.",
    "arch": "Backbone: alexnet, alexnet_bn or resnet18.",
    "feature": "Backbone output the head reads; default fc7 (AlexNet) or pool (ResNet-18).",
    "label": "Target field: texture_k30, mfcc_k30, texture_bits30, ... (see dataset.json).",
    "image_size": "Side of the square crops fed to the network.",
    "batch_size": "Global batch size, over all replicas.",
    "train_steps": "Optimizer steps in the whole run.",
    "steps_per_loop": "Steps run inside one compiled loop between logs.",
    "learning_rate": "Peak learning rate of the one-cycle schedule.",
    "warmup_fraction": "Fraction of the steps spent warming up from peak/25 to the peak.",
    "anneal": "Shape of the fall from the peak to peak/1e4: cos or linear.",
    "weight_decay": "AdamW's decoupled weight decay.",
    "clip_norm": "Clip gradients to this global norm; 0: no clipping.",
    "label_smoothing": "Label smoothing of the cross-entropy.",
    "dropout": "AlexNet's dropout rate before fc6 and fc7.",
    "fc_units": "AlexNet's fc6 and fc7 width (4096 as published; smaller for quick trials).",
    "color_jitter": "Strength of the colour jitter augmentation in [0, 1]; 0: off.",
    "mixed_precision": "'' (float32), mixed_bfloat16, or mixed_float16 (with loss scaling).",
    "jit": "Compile each training step with XLA.",
    "strategy": "auto, default (one device), mirrored (local GPUs) or multiworker (TF_CONFIG).",
    "eval_every": "Evaluate on the validation split every this many steps.",
    "checkpoint_every": "Save a checkpoint every this many steps.",
    "keep_checkpoints": "Checkpoints kept (besides the best by validation loss).",
    "seed": "Random seed of initialisation, shuffling and augmentation.",
    "skip_corrupt": "Skip and count corrupt records instead of stopping at the first.",
    "data_service": "grpc://HOST:PORT of a tfambient-data-service dispatcher whose workers "
    "make the training input (unseeded); '': this host makes it.",
}


def _define_flags() -> None:
    from tfambient.tasks.pretext import TrainConfig

    define_dataclass_flags(TrainConfig, HELP, __name__)


_define_flags()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    for required in ("data_dir", "workdir"):
        if not getattr(FLAGS, required):
            raise UserError(f"--{required} is required")
    if not Manifest.exists(FLAGS.data_dir):
        raise UserError(f"{Manifest.path(FLAGS.data_dir)} not found: run tfambient-prepare first")
    from tfambient import data_service
    from tfambient.tasks import pretext

    logging.getLogger().setLevel(logging.INFO)
    try:
        config = dataclass_from_flags(pretext.TrainConfig)
        if config.data_service:
            data_service.check_reachable(*data_service.service_address(config.data_service))
        workdir = Path(config.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "flags.txt").write_text(FLAGS.flags_into_string())
        result = pretext.train(config)
    except ValueError as error:
        raise UserError(str(error)) from None
    print(f"trained to step {result['final'].get('step')}: {result['final']}")
    print(f"backbone: {Path(config.workdir) / 'export'}")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
