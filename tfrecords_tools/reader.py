"""Reading TFRecord shards in a fixed order, and proving that each one is whole.

TensorFlow checks every record's CRCs, but stops without complaint at a partial record
header after the last record, which is what a write cut short can leave. count_records
therefore also checks that the records it read account for every byte of the file.
Reading errors are raised as CorruptShard naming the file, never as a bare TensorFlow
error about "a record at offset N" of some file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfrecords_tools.example import RAW_KEY

# Each record is framed by a length (8 bytes), its CRC (4) and the data's CRC (4).
RECORD_OVERHEAD = 16
# Records are moved in batches even when handed out one by one: per-element work in
# tf.data costs far more than the records themselves.
_READ_BATCH = 1024
# What a damaged or vanished file raises mid-read (a parse error is the caller's business).
_READ_ERRORS = (tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.PermissionDeniedError)

Paths = Sequence[str | os.PathLike[str]]
FeatureSpec = tf.io.FixedLenFeature | tf.io.VarLenFeature


class CorruptShard(Exception):
    """A shard that cannot be read to its end: truncated, corrupted or unreadable."""

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        super().__init__(Path(path), detail)
        self.path = Path(path)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


def list_shards(directory: str | os.PathLike[str]) -> list[Path]:
    """The *.tfrecord files directly in `directory`, or in `directory/shards` if it exists.

    Temporaries (name.tfrecord.tmp-...) do not end in .tfrecord, so they are never listed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    if (directory / "shards").is_dir():
        directory = directory / "shards"
    return sorted(path for path in directory.glob("*.tfrecord") if path.is_file())


def _error_detail(error: tf.errors.OpError) -> str:
    """TensorFlow's message without the op names wrapped around it."""
    detail = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", error.message)
    return re.sub(r"\s*\[Op:\w+\].*$", "", detail, flags=re.DOTALL)


def _count_and_payload(path: Path) -> tuple[int, int]:
    """Records in the file and their total length, checking every CRC on the way."""

    def add(state: tuple[tf.Tensor, tf.Tensor], records: tf.Tensor) -> tuple[tf.Tensor, ...]:
        lengths = tf.cast(tf.strings.length(records), tf.int64)
        return state[0] + tf.size(records, tf.int64), state[1] + tf.reduce_sum(lengths)

    zero = tf.constant(0, tf.int64)
    batches = tf.data.TFRecordDataset(str(path)).batch(_READ_BATCH)
    count, payload = batches.reduce((zero, zero), add)
    return int(count), int(payload)


def count_records(path: str | os.PathLike[str]) -> int:
    """The number of records, after reading every one to the end of the file.

    Raises CorruptShard if a CRC fails, the last record is cut short, bytes follow the
    last complete record, or the file cannot be read at all.
    """
    path = Path(path)
    try:
        count, payload = _count_and_payload(path)
        size = path.stat().st_size
    except tf.errors.OpError as error:
        raise CorruptShard(path, _error_detail(error)) from None
    except OSError as error:
        raise CorruptShard(path, error.strerror or str(error)) from None
    trailing = size - count * RECORD_OVERHEAD - payload
    if trailing:
        raise CorruptShard(
            path, f"{trailing} bytes after the last complete record (record {count})"
        )
    return count


def verify_shards(
    paths: Paths, progress: bool = True
) -> tuple[dict[Path, int], list[CorruptShard]]:
    """Record counts of the whole shards, and every bad shard (it never stops at the first)."""
    counts: dict[Path, int] = {}
    bad: list[CorruptShard] = []
    for path in tqdm(paths, desc="verify", unit="shard", disable=not progress, file=sys.stderr):
        try:
            counts[Path(path)] = count_records(path)
        except CorruptShard as error:
            bad.append(error)
    return counts, bad


def _numbered_records(paths: list[Path]) -> tf.data.Dataset:
    """(record, index of its file) for every record of every file, files one after another."""
    names = tf.constant([str(path) for path in paths], dtype=tf.string)
    files = tf.data.Dataset.from_tensor_slices((names, np.arange(len(paths), dtype=np.int64)))
    return files.flat_map(
        lambda path, index: tf.data.TFRecordDataset(path).map(lambda record: (record, index))
    )


def _first_corrupt(paths: list[Path]) -> CorruptShard | None:
    for path in paths:
        try:
            count_records(path)
        except CorruptShard as error:
            return error
    return None


def _elements_naming_bad_files(dataset: tf.data.Dataset, paths: list[Path]) -> Iterator[tuple]:
    """The dataset's elements (each ending with its file indices); a read error is
    re-raised as CorruptShard naming its file.

    Files are read in order, so the culprit is the first bad file at or after the last
    file that a delivered element came from: only those few files are read again.
    """
    first_unfinished = 0
    iterator = iter(dataset)
    while True:
        try:
            element = next(iterator)
        except StopIteration:
            return
        except _READ_ERRORS as error:
            culprit = _first_corrupt(paths[first_unfinished:])
            if culprit is None:
                raise
            raise culprit from error
        first_unfinished = int(np.max(element[-1]))
        yield element


def read_records(paths: Paths, batch_size: int | None = None) -> Iterator[bytes | np.ndarray]:
    """Every serialized record, file after file in the order given: deterministic.

    With batch_size, arrays (dtype object) of up to that many records, spanning files.
    """
    paths = [Path(p) for p in paths]
    dataset = _numbered_records(paths).batch(batch_size or _READ_BATCH)
    for records, _ in _elements_naming_bad_files(dataset, paths):
        if batch_size:
            yield records.numpy()
        else:
            yield from records.numpy().tolist()


def _ragged_to_objects(ragged: tf.RaggedTensor) -> np.ndarray:
    """A batch of variable-length values as an object array of per-record arrays."""
    splits = ragged.row_splits.numpy()
    parts = np.split(ragged.values.numpy(), splits[1:-1])
    out = np.empty(len(parts), dtype=object)
    for index, part in enumerate(parts):
        out[index] = part
    return out


def _to_numpy(value: tf.Tensor | tf.RaggedTensor) -> np.ndarray:
    return _ragged_to_objects(value) if isinstance(value, tf.RaggedTensor) else value.numpy()


def parse_batches(
    paths: Paths,
    spec: Mapping[str, FeatureSpec],
    batch_size: int = 256,
    with_raw: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of parsed features as NumPy, files in the order given: deterministic.

    A FixedLenFeature gives an array of shape (batch, *shape); a VarLenFeature an object
    array holding one 1-d array per record. with_raw adds the serialized records under
    "__raw__" (an object array of bytes), e.g. to rewrite them with with_features.
    """
    if RAW_KEY in spec:
        raise ValueError(f"{RAW_KEY!r} is reserved for the raw records")
    paths = [Path(p) for p in paths]

    def parse(records: tf.Tensor, index: tf.Tensor) -> tuple[dict, tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_example(records, dict(spec))
        unsparse = {
            key: tf.RaggedTensor.from_sparse(value) if isinstance(value, tf.SparseTensor) else value
            for key, value in parsed.items()
        }
        return unsparse, records, index

    dataset = (
        _numbered_records(paths)
        .batch(batch_size)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    for parsed, records, _ in _elements_naming_bad_files(dataset, paths):
        batch = {key: _to_numpy(value) for key, value in parsed.items()}
        if with_raw:
            batch[RAW_KEY] = records.numpy()
        yield batch
