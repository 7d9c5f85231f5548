"""Lists of images to measure features on: labelled folder trees, CSVs, any folder.

The layouts a linear probe reads (tfambient-probe), each giving the images' paths, their
class indices and the class names:

* a folder tree with one subfolder per class, Keras's ``image_dataset_from_directory``,
  ImageNet's and Places205's layout: ``DIR/<class>/**/<image>``; the classes are the
  subfolders, sorted by name;
* a CSV of ``path,label`` (a header row ``path,label`` is optional; relative paths are read
  from the CSV's folder).

A validation list is read against the training classes: an image of a class the training
list lacks cannot be scored and is skipped. tfambient-features reads any folder (every image
under it) or a CSV whose first column is the path.

Images are told by their extension (what TensorFlow decodes: JPEG, PNG, BMP, GIF); whether one
decodes is found when it is read. Nothing is dropped silently: every file that is no image,
every image outside a class folder or of an unknown class, every damaged CSV row and every
empty class is a :class:`Problem` of the list, with the reason. No TensorFlow here.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CSV_HEADER = ("path", "label")


@dataclass(frozen=True)
class Problem:
    """An image (or class, or CSV line) left out, and why."""

    path: str
    reason: str  # not_an_image, not_in_a_class, unknown_class, empty_class, missing, bad_row
    detail: str = ""


@dataclass(frozen=True)
class ImageList:
    """Images in a fixed order, each with a class index into ``classes`` (-1: unlabelled)."""

    paths: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> np.ndarray:
        """Images per class."""
        return np.bincount(np.asarray(self.labels, np.int64), minlength=len(self.classes))

    def subsample(self, per_class: int, seed: int) -> ImageList:
        """At most ``per_class`` images of each class, drawn with ``seed``, in list order."""
        if per_class <= 0:
            return self
        labels = np.asarray(self.labels)
        rng = np.random.default_rng(seed)
        keep = np.zeros(len(labels), bool)
        for label in range(len(self.classes)):
            members = np.flatnonzero(labels == label)
            keep[rng.permutation(members)[:per_class]] = True
        rows = np.flatnonzero(keep)
        return ImageList(
            tuple(self.paths[i] for i in rows),
            tuple(int(labels[i]) for i in rows),
            self.classes,
            self.problems,
        )


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _files_under(directory: Path) -> list[Path]:
    """Every file below ``directory``, in sorted order (so that a list is repeatable)."""
    found = [
        Path(root) / name
        for root, _, names in os.walk(directory, followlinks=True)
        for name in names
    ]
    return sorted(found)


def _split_images(files: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    images, problems = [], []
    for path in files:
        if is_image(path):
            images.append(path)
        else:
            problems.append(Problem(str(path), "not_an_image", f"extension {path.suffix!r}"))
    return images, problems


def _check_source(source: str | os.PathLike) -> Path:
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder or CSV")
    return path


def read_labelled(source: str | os.PathLike, classes: Sequence[str] | None = None) -> ImageList:
    """The images of a class-folder tree or a path,label CSV. Without ``classes`` (a training
    list) its classes are those with images; with them (a validation list) labels index them,
    and images of other classes are problems."""
    path = _check_source(source)
    if path.is_dir():
        pairs, problems = _folder_pairs(path)
    else:
        pairs, problems = _csv_rows(path, labelled=True)
    named = sorted({label for _, label in pairs}) if classes is None else list(classes)
    index = {name: i for i, name in enumerate(named)}
    paths, labels = [], []
    for image, label in pairs:
        if label in index:
            paths.append(image)
            labels.append(index[label])
        else:
            problems.append(Problem(image, "unknown_class", f"class {label!r} is not trained on"))
    present = {label for _, label in pairs}
    problems += [
        Problem(str(path / name) if path.is_dir() else name, "empty_class", "no images")
        for name in named
        if name not in present
    ]
    if path.is_dir():
        problems += _empty_folders(path, present, named)
    return ImageList(tuple(paths), tuple(labels), tuple(named), tuple(problems))


def _empty_folders(root: Path, present: set[str], named: Sequence[str]) -> list[Problem]:
    """Class folders without images that the class list does not name (a training tree's)."""
    return [
        Problem(str(folder), "empty_class", "no images")
        for folder in sorted(root.iterdir())
        if folder.is_dir() and folder.name not in present and folder.name not in named
    ]


def _folder_pairs(root: Path) -> tuple[list[tuple[str, str]], list[Problem]]:
    """(image, class folder name) of every image in a class subfolder of ``root``."""
    pairs, problems = [], []
    images, problems = _split_images(_files_under(root))
    for image in images:
        parts = image.relative_to(root).parts
        if len(parts) < 2:
            problems.append(Problem(str(image), "not_in_a_class", "directly in the root folder"))
        else:
            pairs.append((str(image), parts[0]))
    return pairs, problems


def _csv_rows(path: Path, labelled: bool) -> tuple[list[tuple[str, str]], list[Problem]]:
    """(image, label) of each row of a CSV; damaged rows, missing files and non-images are
    problems. Unlabelled, the label is '' and only the first column is read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read ({error})") from None
    pairs, problems = [], []
    for line, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if line == 1 and tuple(cells[:2]) in (CSV_HEADER, CSV_HEADER[:1]):
            continue
        if not any(cells):
            continue
        if (labelled and len(cells) != 2) or not cells[0] or (labelled and not cells[1]):
            wanted = "path,label" if labelled else "path first"
            problems.append(Problem(f"{path}:{line}", "bad_row", f"expected {wanted}: {row}"))
            continue
        image = path.parent / cells[0]
        if not image.is_file():
            problems.append(Problem(str(image), "missing", f"listed at {path}:{line}"))
        elif not is_image(image):
            problems.append(Problem(str(image), "not_an_image", f"extension {image.suffix!r}"))
        else:
            pairs.append((str(image), cells[1] if labelled else ""))
    return pairs, problems


def read_unlabelled(source: str | os.PathLike) -> ImageList:
    """Every image below a folder, or the paths of a CSV (first column): for feature export."""
    path = _check_source(source)
    if path.is_dir():
        images, problems = _split_images(_files_under(path))
        paths = [str(image) for image in images]
    else:
        pairs, problems = _csv_rows(path, labelled=False)
        paths = [image for image, _ in pairs]
    return ImageList(tuple(paths), (-1,) * len(paths), (), tuple(problems))
