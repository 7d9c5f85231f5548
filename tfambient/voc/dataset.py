"""PASCAL VOC 2007 classification data: the devkit tree read into targets, and written.

Reading. :func:`read_split` takes the image ids of ``ImageSets/Main/<split>.txt`` and builds
each image's targets from its ``Annotations/<id>.xml`` (see :func:`targets_of`): per class,
1 if a non-difficult object of it is there, 0 (ignore) if only difficult ones are, -1
otherwise. The XML is the truth; the per-class lists ``<class>_<split>.txt`` are only
checked against it. Real copies of the devkit are sometimes incomplete or edited, so
nothing about one image stops the read: each oddity becomes a :class:`Problem` naming the
image, and the image is dropped or kept as its reason says:

=======================  =======  ===================================================
reason                   image    when
=======================  =======  ===================================================
``missing_image``        dropped  no ``JPEGImages/<id>.jpg``
``missing_annotation``   dropped  no ``Annotations/<id>.xml``
``bad_annotation``       dropped  the XML does not parse, or an object lacks its name or
                                  box
``no_objects``           kept     the XML has no object (all targets -1)
``unknown_class``        kept     an object's name is not one of the 20 (it is ignored)
``class_list_disagrees`` kept     ``<class>_<split>.txt`` gives another label than the
                                  XML (the XML's is used)
=======================  =======  ===================================================

TFDS. :func:`read_tfds` gives the same :class:`VocSplit` from TensorFlow Datasets'
``voc/2007`` when that optional package is installed, images left encoded.

Writing. :func:`write_annotation` and :func:`write_image_sets` write the devkit's own
formats, so that a generated tree (tests, the synthetic world) is read by this module and
by any other VOC tool alike.

TensorFlow is imported only by :meth:`VocSplit.dataset` and :func:`read_tfds`, so that
reading and writing trees stays light.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tfambient.contracts.files import write_text
from tfambient.voc import CLASSES

if TYPE_CHECKING:
    import tensorflow as tf

PRESENT, IGNORE, ABSENT = 1, 0, -1
NUM_CLASSES = len(CLASSES)
_CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}

# Our split names and the TFDS splits of voc/2007 that make them up.
TFDS_SPLITS = {
    "train": "train",
    "val": "validation",
    "trainval": "train+validation",
    "test": "test",
}
TFDS_NAME = "voc/2007"


@dataclass(frozen=True)
class VocObject:
    """One annotated object; ``bbox`` is (xmin, ymin, xmax, ymax) in 1-based pixels."""

    name: str
    bbox: tuple[int, int, int, int]
    difficult: bool = False
    truncated: bool = False
    pose: str = "Unspecified"


@dataclass(frozen=True)
class Problem:
    """Something wrong with one image of a split; ``reason`` is one of the module's codes."""

    image_id: str
    reason: str
    detail: str


@dataclass(frozen=True, eq=False)
class VocSplit:
    """The images of a split, in the split file's order, and their (n, 20) int8 targets.

    ``paths`` are the JPEG files, or empty for a source without files (TFDS), which gives
    ``images`` instead: a factory of the dataset of encoded images in ``ids`` order.
    """

    ids: tuple[str, ...]
    paths: tuple[str, ...]
    targets: np.ndarray
    problems: tuple[Problem, ...] = ()
    images: Callable[[], tf.data.Dataset] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        targets = np.array(self.targets, dtype=np.int8)  # a read-only copy: the split is frozen
        if targets.shape != (len(self.ids), NUM_CLASSES):
            raise ValueError(
                f"targets must be ({len(self.ids)}, {NUM_CLASSES}), got {targets.shape}"
            )
        if self.images is None and len(self.paths) != len(self.ids):
            raise ValueError(f"{len(self.paths)} paths for {len(self.ids)} ids")
        targets.flags.writeable = False
        object.__setattr__(self, "targets", targets)

    def __len__(self) -> int:
        return len(self.ids)

    def dataset(self) -> tf.data.Dataset:
        """(encoded JPEG tf.string, targets int8 (20,)) per image, in order; files read lazily."""
        import tensorflow as tf

        if self.images is not None:
            images = self.images()
        else:
            paths = tf.constant(self.paths, dtype=tf.string, shape=(len(self.paths),))
            images = tf.data.Dataset.from_tensor_slices(paths).map(
                tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
            )
        return tf.data.Dataset.zip(images, tf.data.Dataset.from_tensor_slices(self.targets))


def targets_of(objects: Sequence[VocObject]) -> np.ndarray:
    """int8 (20,) targets of one image: 1 present, 0 difficult only, -1 absent."""
    unknown = sorted({o.name for o in objects} - _CLASS_INDEX.keys())
    if unknown:
        raise ValueError(f"unknown VOC classes {unknown}; the classes are {list(CLASSES)}")
    index = np.array([_CLASS_INDEX[o.name] for o in objects], dtype=np.intp)
    difficult = np.array([o.difficult for o in objects], dtype=bool)
    targets = np.full(NUM_CLASSES, ABSENT, dtype=np.int8)
    targets[index[difficult]] = IGNORE
    targets[index[~difficult]] = PRESENT  # after IGNORE: one easy object makes it present
    return targets


def tfds_targets(
    labels: Sequence[np.ndarray], labels_no_difficult: Sequence[np.ndarray]
) -> np.ndarray:
    """int8 (n, 20) targets from TFDS voc's per-image class-index lists.

    ``labels`` holds every object's class, ``labels_no_difficult`` the non-difficult ones:
    present if in the second, ignored if only in the first, absent otherwise.
    """
    if len(labels) != len(labels_no_difficult):
        raise ValueError(f"{len(labels)} labels for {len(labels_no_difficult)} no-difficult")
    targets = np.full((len(labels), NUM_CLASSES), ABSENT, dtype=np.int8)
    for lists, value in ((labels, IGNORE), (labels_no_difficult, PRESENT)):
        rows, columns = _ragged_coordinates(lists)
        targets[rows, columns] = value
    return targets


def _ragged_coordinates(lists: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(row, value) pairs of a list of 1-D integer arrays, for one fancy-indexed write."""
    lengths = np.array([len(values) for values in lists], dtype=np.intp)
    rows = np.repeat(np.arange(len(lists)), lengths)
    columns = np.concatenate([np.asarray(v, dtype=np.intp) for v in lists]) if len(lists) else []
    return rows, np.asarray(columns, dtype=np.intp)


def find_voc2007(voc_dir: str | os.PathLike[str]) -> Path:
    """The ``VOC2007`` directory given it, ``VOCdevkit/`` or the folder the devkit's tar made."""
    voc_dir = Path(voc_dir)
    candidates = (voc_dir, voc_dir / "VOC2007", voc_dir / "VOCdevkit" / "VOC2007")
    for candidate in candidates:
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    expected = ", ".join(str(c / "ImageSets" / "Main") for c in candidates)
    raise ValueError(f"no VOC2007 tree in {voc_dir}: expected one of {expected}")


def split_names(voc2007_dir: str | os.PathLike[str]) -> list[str]:
    """The splits that ``ImageSets/Main`` lists (its files without a class prefix)."""
    main = Path(voc2007_dir) / "ImageSets" / "Main"
    return sorted(p.stem for p in main.glob("*.txt") if "_" not in p.stem)


def read_split(voc_dir: str | os.PathLike[str], split: str) -> VocSplit:
    """One split of a devkit tree: ids, JPEG paths, targets from the XML, and problems."""
    root = find_voc2007(voc_dir)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise ValueError(f"no split file {split_file}; the splits there: {split_names(root)}")
    jpegs = _file_names(root / "JPEGImages")
    xmls = _file_names(root / "Annotations")
    ids, paths, rows, problems = [], [], [], []
    for image_id in _read_ids(split_file):
        image, annotation = f"{image_id}.jpg", f"{image_id}.xml"
        if image not in jpegs:
            problems.append(Problem(image_id, "missing_image", str(root / "JPEGImages" / image)))
            continue
        if annotation not in xmls:
            xml_path = str(root / "Annotations" / annotation)
            problems.append(Problem(image_id, "missing_annotation", xml_path))
            continue
        try:
            objects = read_annotation(root / "Annotations" / annotation)
        except ValueError as error:
            problems.append(Problem(image_id, "bad_annotation", str(error)))
            continue
        known, object_problems = _known_objects(image_id, objects)
        problems.extend(object_problems)
        ids.append(image_id)
        paths.append(str(root / "JPEGImages" / image))
        rows.append(targets_of(known))
    targets = np.stack(rows) if rows else np.empty((0, NUM_CLASSES), dtype=np.int8)
    problems.extend(_class_list_disagreements(root, split, ids, targets))
    return VocSplit(tuple(ids), tuple(paths), targets, tuple(problems))


def _file_names(directory: Path) -> set[str]:
    """Names in a directory (one listing, not 10k stat calls); empty if it is missing."""
    try:
        return set(os.listdir(directory))
    except FileNotFoundError:
        return set()


def _read_ids(split_file: Path) -> list[str]:
    """Image ids of a split file, one per line; blank lines skipped."""
    return [line.strip() for line in split_file.read_text().splitlines() if line.strip()]


def _known_objects(
    image_id: str, objects: list[VocObject]
) -> tuple[list[VocObject], list[Problem]]:
    """The objects of the 20 classes, and a problem for each other one (or for none at all)."""
    if not objects:
        return [], [Problem(image_id, "no_objects", "the annotation has no object")]
    known = [o for o in objects if o.name in _CLASS_INDEX]
    problems = [
        Problem(image_id, "unknown_class", f"object {i} is named {o.name!r}; ignored")
        for i, o in enumerate(objects)
        if o.name not in _CLASS_INDEX
    ]
    return known, problems


def read_annotation(path: str | os.PathLike[str]) -> list[VocObject]:
    """The objects of one VOC XML file; ValueError if it does not parse or an object lacks
    its name or box. Boxes written as decimals (a few VOC2012 files) are truncated."""
    try:
        root = ET.parse(path).getroot()
        return [_parse_object(element) for element in root.findall("object")]
    except (ET.ParseError, OSError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from error


def _parse_object(element: ET.Element) -> VocObject:
    """One <object>; difficult, truncated and pose are optional (defaults), name and box not."""
    box = element.find("bndbox")
    if box is None:
        raise ValueError("an object has no bndbox")
    name = element.findtext("name")
    if not name or not name.strip():
        raise ValueError("an object has no name")
    bbox = tuple(int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
    return VocObject(
        name=name.strip(),
        bbox=bbox,
        difficult=_flag(element, "difficult"),
        truncated=_flag(element, "truncated"),
        pose=(element.findtext("pose") or "Unspecified").strip(),
    )


def _flag(element: ET.Element, tag: str) -> bool:
    """A 0/1 child element as a bool; absent means 0."""
    return int((element.findtext(tag) or "0").strip()) != 0


def _read_class_list(class_file: Path, row_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows (of the ids in `row_of`) and labels, as text, of a ``<class>_<split>.txt``.

    Labels stay text so that a garbled one is reported as a disagreement, not a crash.
    """
    lines = (line.split() for line in class_file.read_text().splitlines())
    listed = [(row_of[f[0]], f[1]) for f in lines if len(f) == 2 and f[0] in row_of]
    rows = np.array([row for row, _ in listed], dtype=np.intp)
    return rows, np.array([label for _, label in listed], dtype=str)


def _class_list_disagreements(
    root: Path, split: str, ids: Sequence[str], targets: np.ndarray
) -> list[Problem]:
    """A problem for each (image, class) whose <class>_<split>.txt label is not the XML's."""
    row_of = {image_id: row for row, image_id in enumerate(ids)}
    problems = []
    for column, name in enumerate(CLASSES):
        class_file = root / "ImageSets" / "Main" / f"{name}_{split}.txt"
        if not class_file.is_file():
            continue
        rows, labels = _read_class_list(class_file, row_of)
        disagree = targets[rows, column].astype(str) != labels
        for row, file_label in zip(rows[disagree], labels[disagree], strict=True):
            detail = (
                f"{name}: {class_file.name} says {file_label}, "
                f"the XML says {targets[row, column]}; the XML's is used"
            )
            problems.append(Problem(ids[row], "class_list_disagrees", detail))
    return problems


class TfdsUnavailable(ImportError, ValueError):
    """tensorflow_datasets is not installed (an ImportError, and a ValueError: a user error)."""


def read_tfds(data_dir: str | os.PathLike[str], split: str) -> VocSplit:
    """A split of TFDS ``voc/2007`` already prepared in data_dir (never downloads).

    Its ``train+validation`` is our trainval. Images stay encoded (SkipDecoding); the ids
    and targets are read in one pass over the records, the images again by ``dataset()``.
    """
    if split not in TFDS_SPLITS:
        raise ValueError(f"unknown split {split!r}; TFDS voc/2007 gives {list(TFDS_SPLITS)}")
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise TfdsUnavailable(
            "reading VOC through TFDS needs tensorflow_datasets: pip install tensorflow-datasets"
        ) from error
    examples = tfds.load(
        TFDS_NAME,
        split=TFDS_SPLITS[split],
        data_dir=os.fspath(data_dir),
        download=False,
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    labels = examples.map(
        lambda ex: (ex["image/filename"], ex["labels"], ex["labels_no_difficult"])
    )
    rows = list(labels.as_numpy_iterator())
    return VocSplit(
        ids=tuple(os.path.splitext(filename.decode())[0] for filename, _, _ in rows),
        paths=(),
        targets=tfds_targets([row[1] for row in rows], [row[2] for row in rows]),
        images=lambda: examples.map(lambda ex: ex["image"]),
    )


def write_annotation(
    path: str | os.PathLike[str],
    filename: str,
    width: int,
    height: int,
    objects: Sequence[VocObject],
) -> None:
    """Write one image's annotation in the devkit's XML structure (tab-indented, as VOC2007's
    files are), atomically."""
    annotation = ET.Element("annotation")
    _add(annotation, "folder", "VOC2007")
    _add(annotation, "filename", filename)
    source = _add(annotation, "source")
    _add(source, "database", "The VOC2007 Database")
    _add(source, "annotation", "PASCAL VOC2007")
    _add(source, "image", "generated")
    size = _add(annotation, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        _add(size, tag, str(int(value)))
    _add(annotation, "segmented", "0")
    for obj in objects:
        element = _add(annotation, "object")
        _add(element, "name", obj.name)
        _add(element, "pose", obj.pose)
        _add(element, "truncated", str(int(obj.truncated)))
        _add(element, "difficult", str(int(obj.difficult)))
        box = _add(element, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.bbox, strict=True):
            _add(box, tag, str(int(value)))
    ET.indent(annotation, space="\t")
    write_text(Path(path), ET.tostring(annotation, encoding="unicode") + "\n")


def _add(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def write_image_sets(
    voc2007_dir: str | os.PathLike[str],
    split: str,
    ids: Sequence[str],
    targets: np.ndarray,
) -> None:
    """Write ``ImageSets/Main/<split>.txt`` and the 20 ``<class>_<split>.txt``.

    The devkit's format, ``%s %2d``: the id, one space, the label right-aligned in two
    characters, so ``000005 -1`` but ``000012  1`` and ``000023  0`` (two spaces).
    """
    targets = np.asarray(targets)
    if targets.shape != (len(ids), NUM_CLASSES):
        raise ValueError(f"targets must be ({len(ids)}, {NUM_CLASSES}), got {targets.shape}")
    if not np.isin(targets, (PRESENT, IGNORE, ABSENT)).all():
        raise ValueError("targets must be 1, 0 or -1")
    main = Path(voc2007_dir) / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    write_text(main / f"{split}.txt", "".join(f"{i}\n" for i in ids))
    for column, name in enumerate(CLASSES):
        lines = (f"{i} {label:2d}\n" for i, label in zip(ids, targets[:, column], strict=True))
        write_text(main / f"{name}_{split}.txt", "".join(lines))
