"""tfambient-cluster: re-cluster prepared data without touching the media.

  tfambient-cluster --data_dir data/ --num_clusters 2,5,10,30,60

Refits the scaler, k-means and PCA bits on the stored sound descriptors and rewrites the
label fields of every shard (images and descriptors are copied byte for byte), with new
models, sizes and montages in data/clusters/. The label fields afterwards are exactly the
ones asked for here. A kill at any moment leaves the old shards or the new ones, never a mix,
and dataset.json says which: rerun the command after a kill. --engine=beam does the work
as Apache Beam pipelines, on any runner and filesystem Beam reads.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from tfambient import audioset
from tfambient.cli import engine_flags, label_flags
from tfambient.cli.common import (
    UserError,
    dataclass_from_flags,
    define_dataclass_flags,
    load_tensorflow_for_records,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import ClusterConfig
from tfambient.contracts.files import is_url
from tfambient.contracts.manifest import Manifest

define_dataclass_flags(ClusterConfig, __name__)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = dataclass_from_flags(ClusterConfig)
    except ValueError as error:
        raise UserError(str(error)) from None
    engine_flags.engine_config(config.data_dir)
    remote = is_url(config.data_dir)
    with engine_flags.mirrored(config.data_dir) if remote else contextlib.nullcontext() as mirror:
        data_dir = mirror.local if mirror else Path(config.data_dir)
        if not Manifest.exists(data_dir):
            raise UserError(
                f"{Manifest.path(config.data_dir)} not found: run tfambient-prepare first"
            )
        text = recluster(config, data_dir, mirror)
    print(text.replace(str(data_dir), mirror.url) if mirror else text)


def recluster(config: ClusterConfig, data_dir: Path, mirror) -> str:
    load_tensorflow_for_records()
    from tfambient import prepare

    try:
        names = (
            audioset.read_ontology(config.ontology)
            if config.ontology
            else audioset.default_ontology()
        )
        manifest = prepare.recluster(
            data_dir,
            label_flags.label_settings(),
            config.descriptors,
            names,
            config.progress,
            engine=engine_flags.make_engine(mirror=mirror),
        )
    except (prepare.PrepareError, audioset.AudioSetFormatError, ValueError) as error:
        raise UserError(str(error)) from None
    return prepare.summary(data_dir, manifest)


def run() -> None:
    run_app(main, flag_modules=[label_flags.__name__, engine_flags.__name__])


if __name__ == "__main__":
    run()
