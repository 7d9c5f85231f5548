"""A tiny generated VOCdevkit: coloured rectangles of four classes, for VOC transfer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tfambient.voc import CLASSES
from tfambient.voc.dataset import VocObject, targets_of, write_annotation, write_image_sets

USED = CLASSES[:4]  # four classes, each a coloured rectangle
COLOURS = {"aeroplane": (220, 30, 30), "bicycle": (30, 220, 30), "bird": (30, 30, 220)}
COLOURS["boat"] = (220, 220, 30)


def write_tree(root: Path, seed: int = 0) -> Path:
    """VOCdevkit/VOC2007 with trainval (40) and test (32) images of 1-2 rectangles."""
    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations"):
        (voc / sub).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for split, count in (("trainval", 40), ("test", 32)):
        ids, targets = [], []
        for i in range(count):
            image_id = f"{split[:2]}{i:04d}"
            image = rng.normal(128, 20, (72, 96, 3))
            objects = []
            for _ in range(rng.integers(1, 3)):
                name = USED[rng.integers(len(USED))]
                x, y = int(rng.integers(0, 48)), int(rng.integers(0, 36))
                image[y : y + 30, x : x + 40] = COLOURS[name]
                objects.append(VocObject(name, (x + 1, y + 1, x + 40, y + 30)))
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                voc / "JPEGImages" / f"{image_id}.jpg"
            )
            write_annotation(voc / "Annotations" / f"{image_id}.xml", image_id, 96, 72, objects)
            ids.append(image_id)
            targets.append(targets_of(objects))
        write_image_sets(voc, split, ids, np.stack(targets))
    return root / "VOCdevkit"
