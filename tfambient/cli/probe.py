"""tfambient-probe: how well each layer of a backbone tells labelled images apart, linearly.

  tfambient-probe --backbone=runs/a1 --train_dir=places/train --val_dir=places/val
      --layers=conv1,conv2,conv3,conv4,conv5,fc6,fc7 --workdir=runs/a1_probe
  tfambient-probe --backbone=random --arch=alexnet --train_dir=... --val_dir=... --workdir=...

--train_dir and --val_dir are folders with one subfolder per class (the Keras, ImageNet and
Places layout) or CSVs of path,label. Each layer's frozen features of every image's central
crop are computed once and cached as float16 shards (conv maps average-pooled to about 9,000
numbers, as in Zhang et al.'s protocol); a linear softmax classifier is trained on them, its
learning rate and weight decay chosen on a held-out part of train, and scored on val: top-1,
top-5 and per-class accuracy. Images that do not decode are skipped and listed. Rerunning the
same command resumes; other classifier settings reuse the cached features. The result: the
table printed at the end and WORKDIR/probe.json, accuracy.{md,csv}, per_class.csv,
problems.csv. See docs/probe.md.
"""

from __future__ import annotations

import logging

from absl import flags

from tfambient.cli.common import (
    UserError,
    dataclass_from_flags,
    define_dataclass_flags,
    load_tensorflow,
)
from tfambient.cli.common import run as run_app
from tfambient.contracts.workdirs import ProbeWorkdir

load_tensorflow()  # the flags are ProbeConfig's fields, and tasks/probe.py needs TensorFlow

FLAGS = flags.FLAGS

# Every field of tasks.probe.ProbeConfig is a flag of the same name.
HELP = {
    "workdir": "Cached features, classifier checkpoints and the results go here.",
    "train_dir": "Training images: a folder of class subfolders, or a CSV of path,label.",
    "val_dir": "Validation images, the same way; classes the training images lack are skipped.",
    "backbone": "'random', a tfambient-train workdir, its export/ dir, or a backbone .keras file.",
    "arch": "alexnet, alexnet_bn or resnet18; default: the saved backbone's (alexnet if random).",
    "fc_units": "With --backbone=random: AlexNet's fc6 and fc7 width (match the pretext runs').",
    "layers": "Comma-separated layers to probe; default: conv1-conv5, fc6, fc7 (ResNet-18: "
    "stage1-stage4, pool).",
    "image_size": "Side of the central crop fed to the backbone.",
    "train_per_class": "Use at most this many training images per class (seeded); 0: all.",
    "batch_size": "Global batch size of the classifier's SGD, over all replicas.",
    "epochs": "Passes of the classifier over the training features.",
    "learning_rates": "Comma-separated learning rates tried (each a cosine decay to 0).",
    "weight_decays": "Comma-separated L2 weight decays tried, each with every learning rate.",
    "momentum": "SGD momentum.",
    "holdout_fraction": "Part of each class's training images held out to choose the setting.",
    "feature_batch_size": "Images per batch when computing features.",
    "shard_size": "Images per cached feature shard (a resumed run redoes at most one).",
    "strategy": "auto, default (one device), mirrored (local GPUs) or multiworker (TF_CONFIG).",
    "steps_per_loop": "Classifier steps run inside one compiled loop between logs.",
    "checkpoint_every": "Save a classifier checkpoint every this many steps.",
    "seed": "Random seed: held-out part, shuffling, subsampling, a random backbone.",
}


def _define_flags() -> None:
    from tfambient.tasks.probe import ProbeConfig

    define_dataclass_flags(ProbeConfig, HELP, __name__)


_define_flags()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir:
        raise UserError("--workdir is required")
    from tfambient.tasks import probe

    logging.getLogger().setLevel(logging.INFO)
    try:
        config = dataclass_from_flags(probe.ProbeConfig)
        summary = probe.run(config)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    print()
    print(probe.accuracy_markdown(summary))
    skipped = sum(summary["skipped"].values())
    layout = ProbeWorkdir(config.workdir)
    if skipped:
        print(f"{skipped} files or classes skipped: see {layout.problems}")
    print(f"results: {layout.results}, {layout.table_markdown.name}, {layout.per_class.name}")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
