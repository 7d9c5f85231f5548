"""tfambient-voc: measure a backbone by PASCAL VOC 2007 classification (mAP, per-class AP).

  tfambient-voc --backbone=runs/a1 --voc_dir=VOCdevkit --mode=head --workdir=runs/a1_voc_head
  tfambient-voc --backbone=random --arch=alexnet --voc_dir=VOCdevkit --mode=all --workdir=...
  tfambient-voc --backbone=runs/a1 --voc_dir=VOCdevkit --mode=svm --layer=pool5 --workdir=...

--mode=head trains fc6-fc8 on frozen convolutional layers, --mode=all trains every layer,
--mode=svm fits a linear SVM per class on frozen, L2-normalized features of --layer. The
defaults are the protocol of the self-supervised literature (SGD, crops of 10-50 % of the
image, 10 test crops averaged; lr and its halving period follow the mode unless given).
Rerunning the same command resumes fine-tuning from WORKDIR/ckpt exactly where it stopped;
rerunning a finished run changes nothing. The result: the AP table printed at the end and
WORKDIR/metrics.json, ap_table.{md,csv,json}, model.keras, problems.csv (images skipped or
corrected, and why), tb/ (TensorBoard).
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
from tfambient.configs import VocConfig
from tfambient.contracts.workdirs import VocWorkdir

FLAGS = flags.FLAGS


define_dataclass_flags(VocConfig, __name__)
define_cluster_timeout_flag(__name__)
flags.DEFINE_bool(
    "compare_published", False, "Print the published AlexNet mAPs beside ours at the end."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    config, strategy = start_from_flags(VocConfig)
    from tfambient import trainer
    from tfambient.tasks import voc as finetune
    from tfambient.voc import metrics

    try:
        result = finetune.run(config, strategy)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    ap = metrics.APResult.from_dict(result)
    name = f"{Path(config.backbone).name or config.backbone}, {config.mode}"
    print(f"\nVOC 2007 {config.test_split}, {result['images']} images ({result['arch']})")
    print(ap.markdown(name=name))
    if FLAGS.compare_published:
        if config.mode == "svm":
            print("(the published table has head and all rows only)")
        else:
            ours = {config.mode: ap.map_voc07}
            print(metrics.published_markdown(ours, name=f"{name} (VOC07 11-point)"))
    print(f"mAP {100 * ap.map_voc07:.1f} (VOC07 11-point), {100 * ap.map_sklearn:.1f} (sklearn)")
    if trainer.is_chief(strategy):
        print(f"results: {VocWorkdir(config.workdir).metrics}, ap_table.md")
    else:
        print("results: in worker 0's workdir")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
