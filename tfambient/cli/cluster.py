"""tfambient-cluster: re-cluster prepared data without touching the media.

  tfambient-cluster --data_dir data/ --num_clusters 2,5,10,30,60

Refits the scaler, k-means and PCA bits on the stored sound descriptors and rewrites the
label fields of every shard (images and descriptors are copied byte for byte), with new
models, sizes and montages in data/clusters/. The label fields afterwards are exactly the
ones asked for here. A kill at any moment leaves the old shards or the new ones, never a mix,
and dataset.json says which: rerun the command after a kill.
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from tfambient import audioset
from tfambient.cli import label_flags
from tfambient.cli.common import UserError, define_dataclass_flags, load_tensorflow_for_records
from tfambient.cli.common import run as run_app
from tfambient.configs import ClusterConfig
from tfambient.contracts.manifest import Manifest

FLAGS = flags.FLAGS
define_dataclass_flags(ClusterConfig, __name__)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.data_dir:
        raise UserError("--data_dir is required")
    data_dir = Path(FLAGS.data_dir)
    if not Manifest.exists(data_dir):
        raise UserError(f"{Manifest.path(data_dir)} not found: run tfambient-prepare first")
    load_tensorflow_for_records()
    from tfambient import prepare

    try:
        names = (
            audioset.read_ontology(FLAGS.ontology)
            if FLAGS.ontology
            else audioset.default_ontology()
        )
        manifest = prepare.recluster(
            data_dir, label_flags.label_settings(), FLAGS.descriptors, names, FLAGS.progress
        )
    except (prepare.PrepareError, audioset.AudioSetFormatError, ValueError) as error:
        raise UserError(str(error)) from None
    print(prepare.summary(data_dir, manifest))


def run() -> None:
    run_app(main, flag_modules=[label_flags.__name__])


if __name__ == "__main__":
    run()
