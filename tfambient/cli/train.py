"""tfambient-train: learn visual features by predicting the sound cluster of each frame.

  tfambient-train --flagfile=flags/pretext/alexnet_texture_k30.flags --data_dir=data/
      --workdir=runs/a1

Streams the shards of a tfambient-prepare directory into AlexNet or ResNet-18 with a softmax
(cluster ids) or sigmoid (PCA sign bits) head, with AdamW and a one-cycle schedule, under the
strategy --strategy picks (one device, all local GPUs, or the hosts of TF_CONFIG). Rerunning
the same command resumes from the last checkpoint in --workdir exactly where the run stopped
(the input stream and dropout included); rerunning a finished run changes nothing. At the
end the backbone is exported to WORKDIR/export/backbone (SavedModel) and
WORKDIR/export/backbone.keras.
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from tfambient.cli.common import (
    UserError,
    define_cluster_timeout_flag,
    define_dataclass_flags,
    start_from_flags,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import TrainConfig
from tfambient.contracts.files import write_text
from tfambient.contracts.manifest import Manifest
from tfambient.contracts.workdirs import TrainWorkdir
from tfambient.hosts import check_dispatcher, data_service_address

FLAGS = flags.FLAGS


define_dataclass_flags(TrainConfig, __name__)
define_cluster_timeout_flag(__name__)


def inputs_ready(config: TrainConfig) -> None:
    """The prepared data, and with --data_service its dispatcher, must be there before any
    work starts."""
    if not Manifest.exists(config.data_dir):
        raise ValueError(f"{Manifest.path(config.data_dir)} not found: run tfambient-prepare first")
    if config.data_service:
        check_dispatcher(data_service_address(config.data_service))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    config, strategy = start_from_flags(TrainConfig, check=inputs_ready)
    from tfambient import trainer
    from tfambient.tasks import pretext

    chief = trainer.is_chief(strategy)
    try:
        workdir = Path(config.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        if chief:  # the others write only their checkpoints
            write_text(TrainWorkdir(workdir).flags, FLAGS.flags_into_string())
        result = pretext.train(config, strategy)
    except ValueError as error:
        raise UserError(str(error)) from None
    print(f"trained to step {result['final'].get('step')}: {result['final']}")
    if chief:
        print(f"backbone: {workdir / 'export'}")
    else:
        print(f"checkpoints: {trainer.own_dir(strategy, workdir)} (worker 0 exports the backbone)")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
