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

from tfambient.cli.common import (
    UserError,
    define_cluster_timeout_flag,
    define_dataclass_flags,
    start_from_flags,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import ProbeConfig
from tfambient.contracts.workdirs import ProbeWorkdir

define_dataclass_flags(ProbeConfig, __name__)
define_cluster_timeout_flag(__name__)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    config, strategy = start_from_flags(ProbeConfig)
    from tfambient.tasks import probe

    try:
        summary = probe.run(config, strategy)
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
