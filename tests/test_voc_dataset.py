"""The VOC 2007 reader and writer, on small devkit trees written here."""

from __future__ import annotations

import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfambient.voc import CLASSES
from tfambient.voc.dataset import (
    Problem,
    TfdsUnavailable,
    VocObject,
    VocSplit,
    find_voc2007,
    read_annotation,
    read_split,
    read_tfds,
    targets_of,
    tfds_targets,
    write_annotation,
    write_image_sets,
)

C = {name: i for i, name in enumerate(CLASSES)}
BOX = (2, 3, 10, 12)

# id -> objects of the image; every one has a JPEG and an XML.
ANNOTATED = {
    "000001": [
        VocObject("dog", BOX),
        VocObject("cat", BOX, difficult=True),
        VocObject("person", BOX, difficult=True),
        VocObject("person", (1, 1, 4, 4), truncated=True, pose="Left"),
    ],
    "000002": [VocObject("car", BOX)],
    "000003": [],
    "000004": [VocObject("unicorn", BOX), VocObject("bus", BOX, difficult=True)],
}
KEPT = ("000001", "000002", "000003", "000004")
SPLIT = ("000001", "000005", "000002", "000006", "000003", "000007", "000004")


def expected_targets() -> np.ndarray:
    targets = np.full((len(KEPT), 20), -1, dtype=np.int8)
    targets[0, [C["dog"], C["person"]]] = 1
    targets[0, C["cat"]] = 0
    targets[1, C["car"]] = 1
    targets[3, C["bus"]] = 0
    return targets


def write_jpeg(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


@pytest.fixture
def voc2007(tmp_path: Path) -> Path:
    """VOCdevkit/VOC2007 with 4 good images, one without JPEG (000005), one without XML
    (000006), one with a broken XML (000007), and matching per-class lists."""
    root = tmp_path / "VOCdevkit" / "VOC2007"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    for seed, (image_id, objects) in enumerate(ANNOTATED.items()):
        write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", seed)
        write_annotation(
            root / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", 16, 12, objects
        )
    write_annotation(root / "Annotations" / "000005.xml", "000005.jpg", 16, 12, [])
    write_jpeg(root / "JPEGImages" / "000006.jpg", 6)
    write_jpeg(root / "JPEGImages" / "000007.jpg", 7)
    (root / "Annotations" / "000007.xml").write_text("<annotation><object><name>dog</name>")
    write_image_sets(root, "trainval", KEPT, expected_targets())
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(SPLIT) + "\n")
    return root


def by_reason(problems: tuple[Problem, ...], reason: str) -> list[Problem]:
    return [p for p in problems if p.reason == reason]


def test_targets_present_difficult_only_and_absent(voc2007):
    split = read_split(voc2007, "trainval")
    assert split.ids == KEPT
    assert split.paths == tuple(str(voc2007 / "JPEGImages" / f"{i}.jpg") for i in KEPT)
    assert split.targets.dtype == np.int8
    np.testing.assert_array_equal(split.targets, expected_targets())


def test_targets_of_difficult_only_is_ignored_and_one_easy_object_makes_present():
    targets = targets_of(
        [
            VocObject("cow", BOX, difficult=True),
            VocObject("sheep", BOX, difficult=True),
            VocObject("sheep", BOX),
            VocObject("sofa", BOX),
        ]
    )
    expected = np.full(20, -1, dtype=np.int8)
    expected[C["cow"]] = 0
    expected[[C["sheep"], C["sofa"]]] = 1
    np.testing.assert_array_equal(targets, expected)
    assert targets.dtype == np.int8
    np.testing.assert_array_equal(targets_of([]), np.full(20, -1))


def test_targets_of_rejects_an_unknown_class():
    with pytest.raises(ValueError, match="unicorn"):
        targets_of([VocObject("unicorn", BOX)])


def test_missing_image_is_reported_and_dropped(voc2007):
    split = read_split(voc2007, "trainval")
    (problem,) = by_reason(split.problems, "missing_image")
    assert problem.image_id == "000005"
    assert "000005.jpg" in problem.detail
    assert "000005" not in split.ids


def test_missing_and_unparseable_annotations_are_reported_and_dropped(voc2007):
    split = read_split(voc2007, "trainval")
    assert [p.image_id for p in by_reason(split.problems, "missing_annotation")] == ["000006"]
    (bad,) = by_reason(split.problems, "bad_annotation")
    assert bad.image_id == "000007"
    assert "000007.xml" in bad.detail
    assert not {"000006", "000007"} & set(split.ids)


def test_annotation_without_objects_is_reported_and_kept_all_absent(voc2007):
    split = read_split(voc2007, "trainval")
    assert [p.image_id for p in by_reason(split.problems, "no_objects")] == ["000003"]
    np.testing.assert_array_equal(split.targets[split.ids.index("000003")], np.full(20, -1))


def test_unknown_class_object_is_reported_and_ignored(voc2007):
    split = read_split(voc2007, "trainval")
    (problem,) = by_reason(split.problems, "unknown_class")
    assert problem.image_id == "000004"
    assert "unicorn" in problem.detail
    row = split.targets[split.ids.index("000004")]
    assert row[C["bus"]] == 0
    assert (np.delete(row, C["bus"]) == -1).all()


def test_agreeing_class_lists_give_no_problem(voc2007):
    split = read_split(voc2007, "trainval")
    assert by_reason(split.problems, "class_list_disagrees") == []
    assert len(split.problems) == 5


def test_disagreeing_class_list_is_reported_and_the_xml_wins(voc2007):
    dog_list = voc2007 / "ImageSets" / "Main" / "dog_trainval.txt"
    dog_list.write_text(dog_list.read_text().replace("000001  1", "000001 -1"))
    split = read_split(voc2007, "trainval")
    (problem,) = by_reason(split.problems, "class_list_disagrees")
    assert problem.image_id == "000001"
    assert problem.detail.startswith("dog: dog_trainval.txt says -1, the XML says 1")
    assert split.targets[0, C["dog"]] == 1


def test_missing_split_file_names_the_path_and_the_existing_splits(voc2007):
    write_image_sets(voc2007, "val", KEPT[:1], expected_targets()[:1])
    with pytest.raises(ValueError) as error:
        read_split(voc2007, "test")
    message = str(error.value)
    assert str(voc2007 / "ImageSets" / "Main" / "test.txt") in message
    assert "['trainval', 'val']" in message


@pytest.mark.parametrize("levels_up", [0, 1, 2], ids=["VOC2007", "VOCdevkit", "tar_root"])
def test_find_voc2007_accepts_the_three_forms(voc2007, levels_up):
    given = voc2007.parents[levels_up - 1] if levels_up else voc2007
    assert find_voc2007(given) == voc2007
    assert read_split(given, "trainval").ids == KEPT


def test_find_voc2007_says_what_it_expected(tmp_path):
    with pytest.raises(ValueError, match=r"no VOC2007 tree in .*ImageSets/Main"):
        find_voc2007(tmp_path)


def test_dataset_yields_jpeg_bytes_and_targets_in_order(voc2007):
    split = read_split(voc2007, "trainval")
    items = list(split.dataset().as_numpy_iterator())
    assert [image for image, _ in items] == [Path(p).read_bytes() for p in split.paths]
    np.testing.assert_array_equal(np.stack([t for _, t in items]), split.targets)
    assert items[0][1].dtype == np.int8


def test_split_checks_and_freezes_its_targets():
    with pytest.raises(ValueError, match=r"targets must be \(2, 20\)"):
        VocSplit(("a", "b"), ("a.jpg", "b.jpg"), np.zeros((2, 19), dtype=np.int8))
    with pytest.raises(ValueError, match="1 paths for 2 ids"):
        VocSplit(("a", "b"), ("a.jpg",), np.zeros((2, 20), dtype=np.int8))
    split = VocSplit(("a",), ("a.jpg",), np.zeros((1, 20)))
    assert split.targets.dtype == np.int8
    with pytest.raises(ValueError):
        split.targets[0, 0] = 1


def test_tfds_label_lists_to_targets():
    labels = [np.array([C["dog"], C["cat"], C["dog"]]), np.array([], dtype=np.int64), [C["car"]]]
    no_difficult = [np.array([C["dog"]]), np.array([], dtype=np.int64), []]
    targets = tfds_targets(labels, no_difficult)
    expected = np.full((3, 20), -1, dtype=np.int8)
    expected[0, C["dog"]] = 1
    expected[0, C["cat"]] = 0
    expected[2, C["car"]] = 0
    np.testing.assert_array_equal(targets, expected)
    assert targets.dtype == np.int8
    assert tfds_targets([], []).shape == (0, 20)


def test_read_tfds_without_the_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(TfdsUnavailable, match="pip install tensorflow-datasets") as error:
        read_tfds(tmp_path, "trainval")
    assert isinstance(error.value, ImportError)
    assert isinstance(error.value, ValueError)


def test_read_tfds_maps_splits_and_converts_labels(monkeypatch, tmp_path):
    import tensorflow as tf

    examples = [
        (b"jpeg-a", b"000009.jpg", [C["bird"], C["boat"]], [C["bird"]]),
        (b"jpeg-b", b"000012.jpg", [], []),
    ]
    calls = []

    def load(name, **kwargs):
        calls.append((name, kwargs))
        signature = {
            "image": tf.TensorSpec((), tf.string),
            "image/filename": tf.TensorSpec((), tf.string),
            "labels": tf.TensorSpec((None,), tf.int64),
            "labels_no_difficult": tf.TensorSpec((None,), tf.int64),
        }
        rows = [dict(zip(signature, example, strict=True)) for example in examples]
        return tf.data.Dataset.from_generator(lambda: iter(rows), output_signature=signature)

    skip = object()
    fake = types.SimpleNamespace(load=load, decode=types.SimpleNamespace(SkipDecoding=lambda: skip))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)

    split = read_tfds(tmp_path, "trainval")
    (name, kwargs), *_ = calls
    assert name == "voc/2007"
    assert kwargs["split"] == "train+validation"
    assert kwargs["download"] is False
    assert kwargs["data_dir"] == str(tmp_path)
    assert kwargs["decoders"] == {"image": skip}
    assert split.ids == ("000009", "000012")
    assert split.targets[0, C["bird"]] == 1
    assert split.targets[0, C["boat"]] == 0
    assert (split.targets[1] == -1).all()
    items = list(split.dataset().as_numpy_iterator())
    assert [image for image, _ in items] == [b"jpeg-a", b"jpeg-b"]
    np.testing.assert_array_equal(np.stack([t for _, t in items]), split.targets)
    with pytest.raises(ValueError, match="unknown split"):
        read_tfds(tmp_path, "everything")


def test_written_annotation_has_the_devkit_xml_structure(tmp_path):
    objects = ANNOTATED["000001"]
    path = tmp_path / "000001.xml"
    write_annotation(path, "000001.jpg", 500, 375, objects)
    root = ET.parse(path).getroot()
    assert root.tag == "annotation"
    assert [child.tag for child in root][:5] == [
        "folder",
        "filename",
        "source",
        "size",
        "segmented",
    ]
    assert root.findtext("folder") == "VOC2007"
    assert root.findtext("filename") == "000001.jpg"
    assert root.findtext("source/database") == "The VOC2007 Database"
    assert root.findtext("source/annotation") == "PASCAL VOC2007"
    assert (root.findtext("size/width"), root.findtext("size/height")) == ("500", "375")
    assert root.findtext("size/depth") == "3"
    assert root.findtext("segmented") == "0"
    elements = root.findall("object")
    assert len(elements) == len(objects)
    last = elements[-1]
    assert [child.tag for child in last] == ["name", "pose", "truncated", "difficult", "bndbox"]
    assert (last.findtext("name"), last.findtext("pose")) == ("person", "Left")
    assert (last.findtext("truncated"), last.findtext("difficult")) == ("1", "0")
    box = [last.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
    assert box == ["1", "1", "4", "4"]
    assert elements[1].findtext("difficult") == "1"
    assert read_annotation(path) == objects
    assert [p.name for p in tmp_path.iterdir()] == ["000001.xml"]  # no temporary left


def test_written_image_sets_use_the_devkit_spacing(tmp_path):
    targets = np.full((3, 20), -1, dtype=np.int8)
    targets[1, C["aeroplane"]] = 1
    targets[2, C["aeroplane"]] = 0
    write_image_sets(tmp_path, "train", ["000005", "000012", "000023"], targets)
    main = tmp_path / "ImageSets" / "Main"
    assert (main / "train.txt").read_text() == "000005\n000012\n000023\n"
    aeroplane = (main / "aeroplane_train.txt").read_text()
    assert aeroplane == "000005 -1\n000012  1\n000023  0\n"
    assert sorted(p.name for p in main.iterdir()) == sorted(
        ["train.txt", *(f"{name}_train.txt" for name in CLASSES)]
    )
    with pytest.raises(ValueError, match="1, 0 or -1"):
        write_image_sets(tmp_path, "val", ["000005"], np.full((1, 20), 2))


def test_decimal_boxes_and_missing_optional_fields_are_read(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(
        "<annotation><object><name>horse</name>"
        "<bndbox><xmin>1.5</xmin><ymin>2</ymin><xmax>30.9</xmax><ymax>40</ymax></bndbox>"
        "</object></annotation>"
    )
    assert read_annotation(path) == [VocObject("horse", (1, 2, 30, 40))]
