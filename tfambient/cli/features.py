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

from tfambient.cli.common import (
    UserError,
    define_cluster_timeout_flag,
    define_dataclass_flags,
    start_from_flags,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import FeaturesConfig
from tfambient.contracts.workdirs import FeatureDir

define_dataclass_flags(FeaturesConfig, __name__)
define_cluster_timeout_flag(__name__)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    config, strategy = start_from_flags(FeaturesConfig)
    from tfambient.tasks import probe

    try:
        description = probe.export_features(config, strategy)
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
