"""tfambient.data on a tiny prepared-like directory (tests/records.py), written without
tfambient-prepare.

Every record's image is one solid colour of its own, so after any crop, flip and resize the
image still says which record it came from; each record's labels are functions of its index,
so a test can check that images and labels travel together.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from records import (
    COLOURS,
    HEIGHT,
    NUM_TRAIN,
    NUM_VAL,
    WIDTH,
    bits_of,
    cluster_of,
    solid_jpeg,
    write_dataset,
)

from tfambient import data


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("prepared"))


@pytest.fixture
def k3(prepared: Path) -> data.LabelSpec:
    return data.label_spec(prepared, "texture_k3")


def record_of(images: np.ndarray) -> np.ndarray:
    """The record whose colour each standardized image shows (from its central pixels)."""
    rgb = data.image_grid(tf.constant(images), len(images)).numpy().astype(np.float32)
    h, w = rgb.shape[1:3]
    centre = rgb[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean(axis=(1, 2))
    distances = np.abs(centre[:, None, :] - COLOURS[None, :, :]).max(axis=2)
    assert np.all(distances.min(axis=1) < 12), "an image is not one of the record colours"
    return distances.argmin(axis=1)


def all_records(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(record indices, labels) of every batch of a finite dataset."""
    batches = [(record_of(x.numpy()), y.numpy()) for x, y in dataset]
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def one_pass(directory: Path, label: data.LabelSpec, **kwargs) -> tf.data.Dataset:
    settings = {"training": False, "split": "train", "global_batch_size": 8} | kwargs
    return data.pretext_dataset(directory, label=label, **settings)


# label_spec, shard_files, Augment


def test_label_spec_reads_kind_and_size_from_the_schema(prepared: Path) -> None:
    expected = data.LabelSpec("label/texture_k3", "classes", 3)
    assert data.label_spec(prepared, "texture_k3") == expected
    assert data.label_spec(prepared, "label/texture_k3") == expected
    assert data.label_spec(prepared, "texture_bits4") == data.LabelSpec(
        "label/texture_bits4", "bits", 4
    )


def test_unknown_label_lists_the_available_ones(prepared: Path) -> None:
    with pytest.raises(ValueError, match=r"texture_k30.*available: broken_k3, texture_bits4, tex"):
        data.label_spec(prepared, "texture_k30")


def test_label_whose_schema_entry_does_not_fit_is_refused(prepared: Path) -> None:
    with pytest.raises(ValueError, match=r"broken_k3.*float x 1"):
        data.label_spec(prepared, "broken_k3")


def test_shard_files_lists_only_non_empty_shards(prepared: Path) -> None:
    assert [Path(p).name for p in data.shard_files(prepared, "train")] == [
        "train-00000-of-00003.tfrecord",
        "train-00001-of-00003.tfrecord",
    ]
    assert [Path(p) for p in data.shard_files(prepared, "val")] == [
        prepared / "shards/val-00000-of-00001.tfrecord"
    ]


def test_shard_files_refuses_a_split_without_records(tmp_path: Path, prepared: Path) -> None:
    manifest = json.loads((prepared / "dataset.json").read_text())
    manifest["shards"] = [s for s in manifest["shards"] if s["split"] == "train"]
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="no val records"):
        data.shard_files(tmp_path, "val")
    with pytest.raises(ValueError, match="'test'"):
        data.shard_files(tmp_path, "test")


def test_a_missing_shard_is_refused_up_front(tmp_path: Path, prepared: Path, k3) -> None:
    shutil.copytree(prepared, tmp_path, dirs_exist_ok=True)
    (tmp_path / "shards/val-00000-of-00001.tfrecord").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 val shards missing: .*val-00000-of-00001"):
        data.pretext_dataset(tmp_path, "val", k3, 4, training=False, skip_corrupt=True)


@pytest.mark.parametrize(
    "settings",
    [{"area_range": (0.0, 1.0)}, {"aspect_range": (2.0, 1.0)}, {"color_jitter": 1.5}],
)
def test_augment_refuses_impossible_settings(settings: dict) -> None:
    with pytest.raises(ValueError):
        data.Augment(**settings)


# Training


def take(dataset: tf.data.Dataset, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


def test_training_batches_keep_each_image_with_its_labels(prepared: Path, k3) -> None:
    dataset = data.pretext_dataset(prepared, "train", k3, 16, training=True, seed=1)
    assert dataset.element_spec[0].shape == (16, 224, 224, 3)  # static, for XLA
    # Twice the records: the stream repeats without an end.
    for images, labels in take(dataset, 4):
        assert images.shape == (16, 224, 224, 3) and images.dtype == np.float32
        assert labels.shape == (16,) and labels.dtype == np.int32
        indices = record_of(images)
        assert np.all(indices < NUM_TRAIN)
        np.testing.assert_array_equal(labels, [cluster_of(i) for i in indices])
        # Standardized: the colour's ImageNet z-score, not 0..255.
        expected = (COLOURS[indices] / 255 - data.IMAGENET_MEAN) / data.IMAGENET_STD
        np.testing.assert_allclose(images.mean(axis=(1, 2)), expected, atol=0.1)


def test_bits_labels_are_float_vectors(prepared: Path) -> None:
    bits = data.label_spec(prepared, "texture_bits4")
    dataset = data.pretext_dataset(prepared, "train", bits, 8, training=True, seed=2)
    for images, labels in take(dataset, 2):
        assert labels.shape == (8, 4) and labels.dtype == np.float32
        np.testing.assert_array_equal(labels, [bits_of(i) for i in record_of(images)])


def test_one_training_pass_holds_every_record_once(prepared: Path, k3) -> None:
    dataset = data.pretext_dataset(
        prepared, "train", k3, 5, training=True, seed=3, repeat=False, drop_remainder=False
    )
    indices, _ = all_records(dataset)
    assert sorted(indices) == list(range(NUM_TRAIN))
    assert list(indices) != sorted(indices), "the records were not shuffled"


def test_a_seed_gives_the_same_batches_and_another_seed_others(prepared: Path, k3) -> None:
    def batches(seed: int) -> list:
        augment = data.Augment(color_jitter=0.5)
        dataset = data.pretext_dataset(
            prepared, "train", k3, 8, training=True, augment=augment, seed=seed
        )
        return take(dataset, 3)

    first, again, other = batches(7), batches(7), batches(8)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(x1, x3) for (x1, _), (x3, _) in zip(first, other, strict=True))


def test_colour_jitter_changes_colours_within_the_valid_range(prepared: Path, k3) -> None:
    def first_batch(strength: float) -> np.ndarray:
        augment = data.Augment(color_jitter=strength)
        dataset = data.pretext_dataset(
            prepared, "train", k3, 16, training=True, augment=augment, seed=4
        )
        return take(dataset, 1)[0][0]

    plain, jittered = first_batch(0.0), first_batch(1.0)
    assert np.abs(jittered - plain).mean() > 0.1
    low = (0 - np.array(data.IMAGENET_MEAN)) / data.IMAGENET_STD
    high = (1 - np.array(data.IMAGENET_MEAN)) / data.IMAGENET_STD
    assert np.all(jittered >= low - 1e-4) and np.all(jittered <= high + 1e-4)


def test_crops_and_flips_are_drawn_per_record() -> None:
    """On a red | blue image: which side is left, and whether a crop holds one colour only."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:, : WIDTH // 2, 0] = image[:, WIDTH // 2 :, 2] = 255
    jpeg = tf.io.encode_jpeg(image, quality=95, chroma_downsampling=False)

    def red_left_and_one_colour(augment: data.Augment) -> tuple[set[bool], set[bool]]:
        seeds = tf.random.experimental.stateless_split(tf.constant([0, 1], tf.int64), 64)
        outputs = [data.train_image(jpeg, seed, augment).numpy() for seed in seeds]
        rgb = [data.image_grid(x[None], 1).numpy()[0].astype(int) for x in outputs]
        red_left = {x[:, 0, 0].mean() > x[:, -1, 0].mean() for x in rgb}
        one_colour = {np.ptp(x[..., 0]) < 64 for x in rgb}
        return red_left, one_colour

    whole = {"area_range": (1.0, 1.0), "aspect_range": (WIDTH / HEIGHT, WIDTH / HEIGHT)}
    assert red_left_and_one_colour(data.Augment(flip=False, **whole)) == ({True}, {False})
    assert red_left_and_one_colour(data.Augment(flip=True, **whole)) == ({True, False}, {False})
    assert red_left_and_one_colour(data.Augment(flip=False))[1] == {True, False}


def pipelines_see(directory: Path, label, pipelines: int) -> list[np.ndarray]:
    """The records each of `pipelines` input pipelines reads in one pass, 4 per replica."""
    seen = []
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(pipelines, pipeline, num_replicas_in_sync=pipelines)
        dataset = data.pretext_dataset(
            directory,
            "train",
            label,
            4 * pipelines,
            training=True,
            seed=5,
            input_context=context,
            repeat=False,
            drop_remainder=False,
        )
        assert dataset.element_spec[0].shape[0] is None  # not dropping the remainder
        assert max(len(x) for x, _ in dataset) == 4
        seen.append(all_records(dataset)[0])
    return seen


def test_two_pipelines_read_one_file_each(prepared: Path, k3) -> None:
    first, second = pipelines_see(prepared, k3, 2)
    # Record i is in file i % 2, so one file each means one parity each.
    assert {len(set(first % 2)), len(set(second % 2))} == {1}
    assert sorted(np.concatenate([first, second])) == list(range(NUM_TRAIN))


def test_more_pipelines_than_files_split_the_records(prepared: Path, k3) -> None:
    seen = pipelines_see(prepared, k3, 3)
    assert sorted(np.concatenate(seen)) == list(range(NUM_TRAIN))
    assert all(abs(len(s) - NUM_TRAIN / 3) < 2 for s in seen)


# Evaluation and decoding


def test_evaluation_reads_each_record_once_in_a_fixed_order(prepared: Path, k3) -> None:
    dataset = one_pass(prepared, k3, split="val", global_batch_size=3)
    assert [len(x) for x, _ in dataset] == [3, 3, 2]  # the remainder is kept
    first, labels = all_records(dataset)
    again, _ = all_records(dataset)
    np.testing.assert_array_equal(first, again)
    assert sorted(first) == list(range(NUM_TRAIN, NUM_TRAIN + NUM_VAL))
    np.testing.assert_array_equal(labels, [cluster_of(i) for i in first])


def test_evaluation_takes_the_central_crop(prepared: Path, k3) -> None:
    images, _ = next(iter(one_pass(prepared, k3, split="val")))
    assert images.shape[1:] == (224, 224, 3)
    rgb = data.image_grid(images, len(images)).numpy().astype(np.float32)
    colours = COLOURS[record_of(images.numpy())]
    # The black frame of the stored image lies outside the central 87.5 %.
    edges = np.concatenate([rgb[:, 0], rgb[:, -1], rgb[:, :, 0], rgb[:, :, -1]], axis=1)
    assert np.abs(edges - colours[:, None, :]).max() < 30


def test_decode_only_gives_images_at_their_stored_size(prepared: Path) -> None:
    batches = list(data.decode_only_dataset(prepared, "train", 10))
    assert [b.nrows() for b in batches] == [10, 10, 10, 2]
    for batch in batches:
        assert batch.dtype == tf.uint8
        assert batch.to_tensor().shape[1:] == (HEIGHT, WIDTH, 3)
        assert np.all(batch.row_lengths(axis=1) == HEIGHT)


def test_image_grid_undoes_standardize() -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    grid = data.image_grid(data.standardize(images), 2)
    assert grid.dtype == tf.uint8
    np.testing.assert_array_equal(grid.numpy(), images[:2])


# Corrupt data


def damage_record(path: Path, record: int) -> None:
    """Flip a byte in the data of the given record, so that its CRC fails."""
    content = bytearray(path.read_bytes())
    offset = 0
    for _ in range(record):
        (length,) = struct.unpack_from("<Q", content, offset)
        offset += 16 + length
    content[offset + 12 + 5] ^= 0xFF
    path.write_bytes(bytes(content))


@pytest.fixture
def damaged(prepared: Path, tmp_path: Path) -> Path:
    """A copy whose train shard 0 (records 0, 2, ..., 30) breaks at its 6th record."""
    copy = tmp_path / "damaged"
    shutil.copytree(prepared, copy)
    damage_record(copy / "shards/train-00000-of-00003.tfrecord", 5)
    return copy


def shard_0_after(record: int) -> set[int]:
    return set(range(2 * record, NUM_TRAIN, 2))


def test_a_damaged_shard_is_named(damaged: Path, k3) -> None:
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"corrupt shard \S*train-00000-of-00003.tfrecord: dataset.json lists 16 records, 5",
    ):
        all_records(one_pass(damaged, k3))


def test_skip_corrupt_keeps_the_rest_and_counts(damaged: Path, k3, capfd) -> None:
    skipped = data.skip_counter()
    indices, _ = all_records(one_pass(damaged, k3, skip_corrupt=True, skipped=skipped))
    lost = shard_0_after(5)
    assert sorted(indices) == sorted(set(range(NUM_TRAIN)) - lost)
    assert int(skipped.numpy()) == len(lost)
    assert "train-00000-of-00003.tfrecord" in capfd.readouterr().err


def test_skip_counts_only_the_records_of_its_pipeline(damaged: Path, k3) -> None:
    skipped = data.skip_counter()
    seen = []
    for pipeline in range(3):
        context = tf.distribute.InputContext(3, pipeline)
        dataset = one_pass(damaged, k3, input_context=context, skip_corrupt=True, skipped=skipped)
        seen.append(all_records(dataset)[0])
    assert sorted(np.concatenate(seen)) == sorted(set(range(NUM_TRAIN)) - shard_0_after(5))
    assert int(skipped.numpy()) == len(shard_0_after(5))


def with_jpegs(directory: Path, jpegs: dict[int, Callable[[bytes], bytes]]) -> Path:
    return write_dataset(
        directory, {i: damage(solid_jpeg(i, False)) for i, damage in jpegs.items()}
    )


def truncate(jpeg: bytes) -> bytes:
    return jpeg[: len(jpeg) // 2]


def break_header(jpeg: bytes) -> bytes:
    """Markers intact, quantization tables gone: only the decoder can tell."""
    return jpeg[:20] + bytes(30) + jpeg[50:]


def test_a_truncated_jpeg_is_named_or_skipped_and_counted(tmp_path: Path, k3) -> None:
    directory = with_jpegs(tmp_path, {3: truncate, 7: lambda jpeg: b"not a jpeg"})
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"train-00001-of-00003.tfrecord: .* 16 could be read, 2 of them without a whole",
    ):
        all_records(one_pass(directory, k3))
    skipped = data.skip_counter()
    indices, _ = all_records(one_pass(directory, k3, skip_corrupt=True, skipped=skipped))
    assert sorted(indices) == sorted(set(range(NUM_TRAIN)) - {3, 7})
    assert int(skipped.numpy()) == 2


def test_a_jpeg_that_only_the_decoder_rejects_is_skipped(tmp_path: Path, k3) -> None:
    directory = with_jpegs(tmp_path, {4: break_header})
    with pytest.raises(tf.errors.InvalidArgumentError, match="jpeg::Uncompress failed"):
        all_records(one_pass(directory, k3))
    skipped = data.skip_counter()
    indices, _ = all_records(one_pass(directory, k3, skip_corrupt=True, skipped=skipped))
    assert sorted(indices) == sorted(set(range(NUM_TRAIN)) - {4})
    assert int(skipped.numpy()) == 0  # dropped by ignore_errors, which cannot count
