"""Tiny labelled image folders for the probe and feature-export tests: one subfolder per
class, each class a colour under heavy noise, so that any backbone's features tell the
classes apart while chance stays 1 / classes; and the damage a real folder holds (a JPEG
that does not decode, a file that is no image, an empty class folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 50, 50), "green": (50, 200, 50), "blue": (50, 50, 200)}
SIZE = (56, 72)  # height, width: not square, so the central crop matters
BROKEN = "broken.jpg"  # starts like a JPEG, then is not one
NOT_AN_IMAGE = "notes.txt"
EMPTY_CLASS = "empty"


def write_class_images(folder: Path, colour, count: int, rng, first: int = 0) -> list[Path]:
    """``count`` noisy pictures of ``colour``; every fourth a PNG (folders mix formats)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(first, first + count):
        pixels = np.clip(rng.normal(colour, 45, (*SIZE, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{i:03d}.{'png' if i % 4 == 3 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def write_tree(root: Path, train: int = 10, val: int = 5, seed: int = 0) -> Path:
    """root/{train,val}/<colour>/... with ``train`` and ``val`` pictures per class."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for name, colour in COLOURS.items():
            write_class_images(root / split / name, colour, count, rng)
    return root


def damage(root: Path) -> None:
    """A JPEG that does not decode, a text file and an empty class folder in train."""
    (root / "train" / "red" / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 and then nothing JPEG")
    (root / "train" / NOT_AN_IMAGE).write_text("a note left in the folder\n")
    (root / "train" / EMPTY_CLASS).mkdir()
