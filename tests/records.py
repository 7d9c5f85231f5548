"""A tiny prepared-like directory (dataset.json and TFRecord shards) written without
tfambient-prepare, for the tests of the input pipeline, training and the report.

Every record's labels are functions of its index, so a test can check that images and labels
travel together. By default each record's image is one solid colour of its own, so after any
crop, flip and resize the image still says which record it came from; the learnable dataset
instead gives each record a noisy frame of its cluster's colour, which a model can learn.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfambient.contracts.manifest import Manifest, Shard
from tfambient.contracts.records import Field
from tfrecords_tools.example import serialize
from tfrecords_tools.writer import ShardedRecordWriter

HEIGHT, WIDTH = 48, 64
NUM_TRAIN, NUM_VAL = 32, 8
# 64 colours at least 60 apart in every channel: far beyond JPEG's error on a solid colour.
COLOURS = np.array(list(itertools.product((40, 100, 160, 220), repeat=3)), np.float32)
FRAME = 2  # val images have a black frame this wide, which the centre crop must cut off
SCHEMA = {
    "clip/id": {"kind": "bytes", "length": 1, "doc": "id"},
    "image/encoded": {"kind": "bytes", "length": 1, "doc": "JPEG"},
    "sound/texture": {"kind": "float", "length": 5, "doc": "not read by the pipeline"},
    "label/texture_k3": {"kind": "int64", "length": 1, "doc": "in [0, 3)"},
    "label/texture_bits4": {"kind": "int64", "length": 4, "doc": "bits"},
    "label/broken_k3": {"kind": "float", "length": 1, "doc": "not a usable label"},
}
CLASS_COLOURS = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)], np.float32)


def cluster_of(index: int) -> int:
    """The record's texture_k3 label."""
    return index % 3


def bits_of(index: int) -> list[int]:
    """The record's texture_bits4 label."""
    return [(index >> bit) & 1 for bit in range(4)]


def solid_jpeg(index: int, framed: bool) -> bytes:
    """The record's own colour, framed in black for val records."""
    image = np.broadcast_to(COLOURS[index], (HEIGHT, WIDTH, 3)).astype(np.uint8).copy()
    if framed:
        image[:FRAME] = image[-FRAME:] = image[:, :FRAME] = image[:, -FRAME:] = 0
    return tf.io.encode_jpeg(image, quality=95, chroma_downsampling=False).numpy()


def class_jpeg(index: int) -> bytes:
    """A noisy frame of its cluster's colour."""
    rng = np.random.default_rng(index)
    image = CLASS_COLOURS[cluster_of(index)] + rng.normal(0, 15, (HEIGHT, WIDTH, 3))
    return tf.io.encode_jpeg(np.clip(image, 0, 255).astype(np.uint8)).numpy()


def _record(index: int, jpeg: bytes) -> bytes:
    return serialize(
        {
            "clip/id": f"clip{index}",
            "image/encoded": jpeg,
            "sound/texture": np.full(5, index, np.float32),
            "label/texture_k3": cluster_of(index),
            "label/texture_bits4": bits_of(index),
        }
    )


def write_dataset(directory: Path, jpegs: dict[int, bytes] | None = None) -> Path:
    """Train records 0..31 alternate between shards 0 and 1 of 3 (shard 2 stays empty);
    val records 32..39 fill one shard. `jpegs` replaces the JPEG of some records."""
    jpegs = jpegs or {}
    shards = []
    for split, indices, num_shards in (
        ("train", range(NUM_TRAIN), 3),
        ("val", range(NUM_TRAIN, NUM_TRAIN + NUM_VAL), 1),
    ):
        with ShardedRecordWriter(directory / "shards", split, num_shards) as writer:
            for index in indices:
                jpeg = jpegs.get(index) or solid_jpeg(index, framed=split == "val")
                writer.write(index % 2 if split == "train" else 0, _record(index, jpeg))
        shards += [
            Shard(f"shards/{path.name}", split, count)
            for path, count in zip(writer.paths, writer.counts, strict=True)
        ]
    schema = {key: Field.from_json(entry) for key, entry in SCHEMA.items()}
    Manifest.for_records(schema, shards).write(directory)
    return directory


def write_learnable_dataset(directory: Path) -> Path:
    """Every record a noisy frame of its cluster's colour: texture_k3 can be learned."""
    return write_dataset(directory, {i: class_jpeg(i) for i in range(NUM_TRAIN + NUM_VAL)})
