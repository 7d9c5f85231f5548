"""tfambient-synth: write the synthetic audio-visual world, to try every command offline.

  tfambient-synth --output_dir demo

Writes DIR/corpus/ (H.264 + AAC clips of six scenes, rain, road, forest, crowd, sea and
wind, named as downloads are, with segments.csv and class_labels_indices.csv in AudioSet's
layouts: the input of tfambient-prepare), DIR/VOCdevkit/VOC2007 (a PASCAL VOC 2007 tree
of the 20 classes drawn with the scenes' textures: the input of tfambient-voc) and
DIR/scenes/{train,val}/<scene>/ (pictures of each scene, drawn apart from the clips: the
input of tfambient-probe), then DIR/world.json last; a tree without it is unfinished. The
same --seed and sizes write the same files. Rerunning with the same settings does nothing;
other settings need --overwrite. See docs/synthetic.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from absl import flags

from tfambient.cli.common import (
    UserError,
    dataclass_from_flags,
    define_dataclass_flags,
    worker_processes,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import option, required
from tfambient.world import CLIP_DURATION_S, MIN_DURATION_S, MIN_VOC_IMAGES, write_world

FLAGS = flags.FLAGS


@dataclass(frozen=True)
class SynthConfig:
    """The world's sizes and seed, and how it is written."""

    output_dir: str = required(
        "Where corpus/, VOCdevkit/, scenes/ and world.json go (created if missing)."
    )
    clips: int = option(300, "Video clips in the corpus, shared evenly by the six scenes.", lower=1)
    voc_images: int = option(
        600,
        "Images in the VOC tree: half test, a quarter each train and val (VOC 2007's proportions).",
        lower=MIN_VOC_IMAGES,
    )
    scene_images: int = option(
        90,
        "Pictures per scene in scenes/ (a third val, the rest train); 0: no scene tree.",
        lower=0,
    )
    seed: int = option(0, "Random seed: the same seed and sizes write the same files.")
    duration_s: float = option(
        CLIP_DURATION_S,
        "Seconds per clip (at least tfambient-prepare's 3.75 s audio window).",
        lower=MIN_DURATION_S,
    )
    num_workers: int = option(
        -1, "Worker processes; -1: one per CPU core; 0: no subprocesses.", lower=-1
    )
    overwrite: bool = option(
        False, "Replace a world (or an unfinished tree) already in --output_dir."
    )
    progress: bool = option(True, "Show a progress bar.")


define_dataclass_flags(SynthConfig, __name__)


def summary(manifest: dict) -> str:
    voc = manifest["voc"]
    splits = ", ".join(f"{split} {voc[split]['images']}" for split in ("train", "val", "test"))
    difficult = sum(voc[split]["difficult"] for split in ("train", "val", "test"))
    scenes = manifest["scene_tree"]
    tree = (
        f", scenes/ with {scenes['train']} train and {scenes['val']} val pictures per scene"
        if scenes
        else ""
    )
    return (
        f"{manifest['settings']['clips']} clips in corpus/ (segments.csv), "
        f"VOCdevkit/VOC2007 with {splits} images ({difficult} difficult objects){tree}"
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    started = time.monotonic()
    try:
        config = dataclass_from_flags(SynthConfig)
        workers = worker_processes(config.num_workers)
        world = write_world(**asdict(config) | {"num_workers": workers})
    except ValueError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        where = error.filename or FLAGS.output_dir
        raise UserError(f"cannot write {where}: {error.strerror or error}") from None
    if not world.written:
        print(f"{FLAGS.output_dir} already holds this world: {summary(world.manifest)}")
        return
    elapsed = time.monotonic() - started
    print(f"wrote {FLAGS.output_dir} in {elapsed:.0f} s: {summary(world.manifest)}")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
