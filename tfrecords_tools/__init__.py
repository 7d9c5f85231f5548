"""tfrecords_tools: sharded TFRecord files of tf.train.Example, written so nothing is lost.

Files are written under temporary names and renamed only when complete (writer), read in
a fixed order with every shard provable to its end (reader), built from and decoded to
plain values (example), and summarised for a person (inspect). Independent of tfambient.

Only the reader needs TensorFlow, and it is imported when first asked for: writing and
rewriting records, and the hashes that pick shards, serve processes without it.
"""

import importlib

from tfrecords_tools.example import (
    feature_kinds,
    make_example,
    make_feature,
    serialize,
    to_dict,
    with_features,
)
from tfrecords_tools.writer import (
    AtomicRecordWriter,
    ShardedRecordWriter,
    is_temporary,
    remove_temporaries,
    shard_index,
    shard_indices,
    shard_name,
    temporary_name,
    unit_hash,
    unit_hashes,
)

__all__ = [
    "AtomicRecordWriter",
    "CorruptShard",
    "ShardedRecordWriter",
    "count_records",
    "feature_kinds",
    "is_temporary",
    "list_shards",
    "make_example",
    "make_feature",
    "parse_batches",
    "read_records",
    "remove_temporaries",
    "serialize",
    "shard_index",
    "shard_indices",
    "shard_name",
    "temporary_name",
    "to_dict",
    "unit_hash",
    "unit_hashes",
    "verify_shards",
    "with_features",
]
_READER_NAMES = (
    "CorruptShard",
    "count_records",
    "list_shards",
    "parse_batches",
    "read_records",
    "verify_shards",
)


def __getattr__(name: str):
    if name in _READER_NAMES:
        return getattr(importlib.import_module("tfrecords_tools.reader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
