"""One input path: a source of (JPEG, target) pairs (VOC's) goes through the same sharding,
seeding and batching rule as the prepared shards (test_data.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfambient import data

RECORDS = 12
SIZE = 16


@pytest.fixture(scope="module")
def pairs():
    """A factory of the dataset of RECORDS noisy JPEGs, each labelled with its index."""
    rng = np.random.default_rng(0)
    jpegs = [
        tf.io.encode_jpeg(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).numpy()
        for _ in range(RECORDS)
    ]
    return lambda: tf.data.Dataset.from_tensor_slices((jpegs, np.arange(RECORDS)))


def context(pipeline: int) -> tf.distribute.InputContext:
    return tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
    )


def labels(dataset: tf.data.Dataset, batches: int | None = None) -> list[int]:
    return [int(x) for _, y in dataset.take(batches or -1) for x in y.numpy()]


def test_two_pipelines_read_disjoint_records_of_a_single_source_that_cover_it(pairs):
    read = [
        labels(
            data.batches(
                data.PairDecoder(pairs),
                data.eval_crop(SIZE),
                4,
                training=False,
                input_context=context(pipeline),
            )
        )
        for pipeline in (0, 1)
    ]
    assert sorted(read[0] + read[1]) == list(range(RECORDS))
    assert read[0] == list(range(0, RECORDS, 2))  # record j when j % pipelines is the id


def test_a_seeded_training_stream_repeats_and_keeps_to_its_pipelines_share(pairs):
    def stream(pipeline: int):
        return data.batches(
            data.PairDecoder(pairs),
            data.train_crop(data.Augment(image_size=SIZE)),
            4,
            training=True,
            seed=7,
            input_context=context(pipeline),
        )

    first, again = (list(stream(1).take(8)) for _ in range(2))
    for (a_images, a_labels), (b_images, b_labels) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a_labels, b_labels)
        np.testing.assert_array_equal(a_images, b_images)
    read = labels(stream(1), 8)
    assert first[0][0].shape == (2, SIZE, SIZE, 3)  # the replica's half of the batch of 4
    assert set(read) == set(range(1, RECORDS, 2))  # repeated, shuffled, only its share


def test_an_evaluation_draws_each_records_crops_from_its_own_seed(pairs):
    """(seed, record index) keys the crops: the same whatever the batch size, pass or run."""

    def crops(batch: int) -> np.ndarray:
        parse = data.test_crops(data.Augment(image_size=SIZE), 3)
        dataset = data.batches(data.PairDecoder(pairs), parse, batch, training=False, seed=5)
        return np.concatenate([images.numpy() for images, _ in dataset])

    one, four = crops(1), crops(4)
    assert one.shape == (RECORDS, 3, SIZE, SIZE, 3)
    np.testing.assert_array_equal(one, four)
    assert not np.array_equal(one[0, 0], one[0, 1])  # the crops of a record differ
