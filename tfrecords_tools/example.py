"""tf.train.Example from plain Python and NumPy values, and back.

The three value lists of a tf.train.Feature (bytes, int64, float32) are chosen from the
value's type so callers never build protos by hand. An empty Python list has no type, so
it is refused rather than guessed; an empty NumPy array carries its dtype and is fine.

The messages are tfrecords_tools.proto's, wire-identical to ``tf.train.Example``, so that
making and rewriting records needs no TensorFlow (``tf.train.Example`` objects are accepted
too, as their bytes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfrecords_tools import proto

# Where batches of parsed records keep each record's serialized bytes (reader.parse_batches).
RAW_KEY = "__raw__"

Value = Any  # bytes | str | int | float | bool | np.generic | np.ndarray | Sequence of these

# The kind names used by feature_kinds, by the oneof field they stand for. A Feature with
# no list set at all ("none") is legal in the proto, though make_example never writes one.
KINDS = {"bytes_list": "bytes", "int64_list": "int64", "float_list": "float", None: "none"}

_INT64_MAX = np.iinfo(np.int64).max


def _is_text(value: object) -> bool:
    return isinstance(value, bytes | str)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _bytes_feature(values: Sequence[bytes | str]) -> proto.Feature:
    return proto.Feature(bytes_list=proto.BytesList(value=[_as_bytes(v) for v in values]))


def _int64_values(array: np.ndarray) -> np.ndarray:
    """Integers as int64; uint64 values beyond int64 are refused, not wrapped around."""
    if array.dtype.kind == "u" and array.size and array.max() > _INT64_MAX:
        raise ValueError(f"integer {array.max()} does not fit in int64")
    return array.astype(np.int64).ravel()


def _array_feature(array: np.ndarray) -> proto.Feature:
    kind = array.dtype.kind
    if kind in "biu":
        return proto.Feature(int64_list=proto.Int64List(value=_int64_values(array)))
    if kind == "f":
        values = array.astype(np.float32).ravel()
        return proto.Feature(float_list=proto.FloatList(value=values))
    if kind in "SU" or (kind == "O" and array.size and all(map(_is_text, array.flat))):
        return _bytes_feature(array.ravel().tolist())
    raise TypeError(f"cannot store values of dtype {array.dtype} in a tf.train.Feature")


def make_feature(value: Value) -> proto.Feature:
    """One Feature; its list type follows the value's type (see the module docstring)."""
    if _is_text(value):
        return _bytes_feature([value])
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("an empty list has no type: pass np.array([], dtype=...) to say which")
        texts = sum(map(_is_text, value))
        if texts == len(value):
            return _bytes_feature(value)
        if texts:
            raise TypeError("a list mixes text with other values")
    return _array_feature(np.asarray(value))


def make_example(features: Mapping[str, Value]) -> proto.Example:
    """A tf.train.Example (tfrecords_tools.proto's) holding each value under its key."""
    example = proto.Example()
    for key, value in features.items():
        try:
            example.features.feature[key].CopyFrom(make_feature(value))
        except (TypeError, ValueError) as error:
            raise type(error)(f"feature {key!r}: {error}") from None
    return example


def serialize(features: Mapping[str, Value]) -> bytes:
    """make_example, serialized with sorted keys so equal features give equal bytes."""
    return make_example(features).SerializeToString(deterministic=True)


def _as_example(example: proto.Example | bytes) -> proto.Example:
    """The message of ``example``: bytes, one of ours, or a tf.train.Example."""
    if isinstance(example, bytes):
        return proto.Example.FromString(example)
    if isinstance(example, proto.Example):
        return example
    return proto.Example.FromString(example.SerializeToString())


def _feature_values(feature: proto.Feature) -> list[bytes] | np.ndarray:
    kind = feature.WhichOneof("kind")
    if kind == "int64_list":
        return np.array(feature.int64_list.value, dtype=np.int64)
    if kind == "float_list":
        return np.array(feature.float_list.value, dtype=np.float32)
    return list(feature.bytes_list.value)  # also a Feature with no list set: []


def to_dict(example: proto.Example | bytes) -> dict[str, list[bytes] | np.ndarray]:
    """Feature values by key (sorted): int64 and float32 arrays, or lists of bytes."""
    features = _as_example(example).features.feature
    return {key: _feature_values(features[key]) for key in sorted(features)}


def _feature_length(feature: proto.Feature) -> int:
    kind = feature.WhichOneof("kind")
    return len(getattr(feature, kind).value) if kind else 0


def feature_kinds(example: proto.Example | bytes) -> dict[str, tuple[str, int]]:
    """Each key's kind ("bytes", "int64", "float" or "none") and value count, sorted by key."""
    features = _as_example(example).features.feature
    return {
        key: (KINDS[features[key].WhichOneof("kind")], _feature_length(features[key]))
        for key in sorted(features)
    }


def with_features(
    serialized: bytes, updates: Mapping[str, Value], drop_prefixes: Sequence[str] = ()
) -> bytes:
    """The record with every key starting with a drop prefix removed, then `updates` set.

    Features neither dropped nor updated are carried over as parsed, so their serialized
    bytes do not change; an update is kept even if its key starts with a drop prefix.
    """
    example = proto.Example.FromString(serialized)
    features = example.features.feature
    prefixes = tuple(drop_prefixes)
    for key in [key for key in features if prefixes and key.startswith(prefixes)]:
        del features[key]
    for key, value in updates.items():
        features[key].CopyFrom(make_feature(value))
    return example.SerializeToString(deterministic=True)
