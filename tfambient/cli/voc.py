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
from tfambient.contracts.workdirs import VocWorkdir

load_tensorflow()  # the flags are VocConfig's fields, and tasks/voc.py needs TensorFlow

FLAGS = flags.FLAGS

# Every field of tasks.voc.VocConfig is a flag of the same name.
HELP = {
    "workdir": "Results, checkpoints, TensorBoard logs and the fine-tuned model go here.",
    "voc_dir": "VOCdevkit/ (or VOCdevkit/VOC2007/): JPEGImages, Annotations, ImageSets/Main.",
    "tfds_dir": "Read TFDS voc/2007 from this data dir instead (needs tensorflow-datasets).",
    "backbone": "'random', a tfambient-train workdir, its export/ dir, or a backbone .keras file.",
    "arch": "alexnet, alexnet_bn or resnet18; default: the saved backbone's (alexnet if random).",
    "fc_units": "With --backbone=random: AlexNet's fc6 and fc7 width (match the pretext runs').",
    "mode": "head (fc6-fc8 on frozen convs), all (every layer) or svm (linear probe of --layer).",
    "train_split": "Split trained on: train, val, trainval or test.",
    "test_split": "Split evaluated on.",
    "image_size": "Side of the square crops fed to the network.",
    "batch_size": "Global batch size, over all replicas.",
    "train_steps": "SGD steps of fine-tuning (the literature uses 80k-150k).",
    "learning_rate": "Initial learning rate; 0: the protocol's (head 0.003, all 0.001).",
    "halve_every": "Halve the learning rate every this many steps; 0: head 5000, all 10000.",
    "momentum": "SGD momentum.",
    "weight_decay": "SGD weight decay.",
    "clip_norm": "Clip gradients to this global norm; 0: no clipping.",
    "crop_area_min": "Smallest training crop, as a fraction of the image area.",
    "crop_area_max": "Largest training crop, as a fraction of the image area.",
    "test_crops": "Random crops averaged per test image; 1: the central crop alone.",
    "rescale": "Krähenbühl et al.'s data-dependent rescaling of the layers before training.",
    "layer": "svm: the backbone feature probed; default fc7 (AlexNet) or pool (ResNet-18).",
    "svm_costs": "svm: comma-separated costs C, one chosen per class by cross-validated AP.",
    "svm_folds": "svm: cross-validation folds for the choice of C.",
    "strategy": "auto, default (one device), mirrored (local GPUs) or multiworker (TF_CONFIG).",
    "steps_per_loop": "Steps run inside one compiled loop between logs.",
    "checkpoint_every": "Save a checkpoint every this many steps.",
    "jit": "Compile each training step with XLA.",
    "seed": "Random seed of initialisation, crops and cross-validation folds.",
    "deterministic": (
        "Read, crop and batch the training images in a fixed order (tf.data's deterministic "
        "map and batch), so that a run, and a run resumed after a kill, gives the same "
        "figures; --nodeterministic takes whatever input is ready first."
    ),
}


def _define_flags() -> None:
    from tfambient.tasks.voc import VocConfig

    define_dataclass_flags(VocConfig, HELP, __name__)


_define_flags()
flags.DEFINE_bool(
    "compare_published", False, "Print the published AlexNet mAPs beside ours at the end."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir:
        raise UserError("--workdir is required")
    from tfambient.tasks import voc as voc_task
    from tfambient.voc import metrics

    logging.getLogger().setLevel(logging.INFO)
    try:
        config = dataclass_from_flags(voc_task.VocConfig)
        result = voc_task.run(config)
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
    print(f"results: {VocWorkdir(config.workdir).metrics}, ap_table.md")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
