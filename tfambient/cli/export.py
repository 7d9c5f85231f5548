"""tfambient-export: the backbone of a training run, ready for transfer experiments.

  tfambient-export --workdir=runs/a1 [--checkpoint=20000]

Writes WORKDIR/export/backbone (a SavedModel whose "serve" signature maps float images,
standardized as in training, to the named feature maps: conv1..conv5, pool5, fc6, fc7 for
AlexNet; stage1..stage4 and pool for ResNet-18) and WORKDIR/export/backbone.keras (to load
with keras.models.load_model after importing tfambient.models, and put under a new head).
tfambient-train does this at its end; this command exports an earlier checkpoint, or a run
that was stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from absl import flags

from tfambient.cli.common import UserError, define_dataclass_flags, load_tensorflow
from tfambient.cli.common import run as run_app
from tfambient.configs import option

FLAGS = flags.FLAGS


@dataclass(frozen=True)
class ExportConfig:
    workdir: str | None = option(None, "A tfambient-train work directory.")
    checkpoint: int | None = option(
        None, "The step of the checkpoint to export; default: the last."
    )


define_dataclass_flags(ExportConfig, __name__)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir:
        raise UserError("--workdir is required")
    load_tensorflow()
    from tfambient.tasks import pretext

    try:
        print(f"exported {pretext.export_checkpoint(FLAGS.workdir, FLAGS.checkpoint)}")
    except ValueError as error:
        raise UserError(str(error)) from None


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
