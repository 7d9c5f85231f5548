"""tfambient-features: the features of any images, for use anywhere, as .npy shards.

  tfambient-features --backbone=runs/a1 --images=photos/ --layer=fc7 --output=photos_fc7
  tfambient-features --backbone=runs/a1 --images=list.csv --layer=conv5,fc7 --pool=probe ...

--images is a folder (every image below it, sorted by path) or a CSV whose first column is a
path (relative to the CSV). Each image's central crop goes through the backbone (the numbers
the SavedModel export serves for the same crop). Writes OUTPUT/<layer>-KKKKK-of-NNNNN.npy
(float16, one row per image; a layer's shards concatenated in order give its rows),
OUTPUT/index.csv (path,row), OUTPUT/features.json (settings, dimensions, shards) and
OUTPUT/problems.csv (every file skipped: not an image, or one that does not decode). A rerun
resumes; another layer into the same OUTPUT is added beside the first. See docs/probe.md.
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
from tfambient.contracts.workdirs import FeatureDir

load_tensorflow()  # the flags are FeaturesConfig's fields, and tasks/probe.py needs TensorFlow

FLAGS = flags.FLAGS

# Every field of tasks.probe.FeaturesConfig is a flag of the same name.
HELP = {
    "images": "A folder of images (searched recursively) or a CSV whose first column is a path.",
    "output": "Where the .npy shards, index.csv, features.json and problems.csv go.",
    "backbone": "A tfambient-train workdir, its export/ dir, a backbone .keras file, or 'random'.",
    "arch": "alexnet, alexnet_bn or resnet18; default: the saved backbone's (alexnet if random).",
    "fc_units": "With --backbone=random: AlexNet's fc6 and fc7 width.",
    "layer": "Comma-separated layers; default: fc7 (AlexNet) or pool (ResNet-18).",
    "image_size": "Side of the central crop fed to the backbone.",
    "pool": "none: each layer as the backbone gives it, flattened; probe: conv maps "
    "average-pooled to about 9,000 numbers as tfambient-probe does.",
    "batch_size": "Images per batch.",
    "shard_size": "Images per .npy shard.",
    "seed": "Random seed of a random backbone.",
}


def _define_flags() -> None:
    from tfambient.tasks.probe import FeaturesConfig

    define_dataclass_flags(FeaturesConfig, HELP, __name__)


_define_flags()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    for required in ("images", "output"):
        if not getattr(FLAGS, required):
            raise UserError(f"--{required} is required")
    from tfambient.tasks import probe

    logging.getLogger().setLevel(logging.INFO)
    try:
        config = dataclass_from_flags(probe.FeaturesConfig)
        description = probe.export_features(config)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    layout = FeatureDir(config.output)
    for layer, entry in description["layers"].items():
        print(
            f"{layer}: {description['images']} x {entry['dims']} {entry['dtype']}, "
            f"{len(entry['shards'])} shard(s)"
        )
    if description["skipped"]:
        print(f"{description['skipped']} files skipped: see {layout.problems}")
    print(f"index: {layout.index}")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
