"""tfrecords_tools on small files in tmp_path: values, atomic writes, hashing, checks, reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfrecords_tools.example import (
    feature_kinds,
    make_example,
    serialize,
    to_dict,
    with_features,
)
from tfrecords_tools.inspect import format_report, split_name, summarize
from tfrecords_tools.reader import (
    CorruptShard,
    count_records,
    list_shards,
    parse_batches,
    read_records,
    verify_shards,
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


def numbered(i: int) -> bytes:
    """A small record that says where it came from."""
    return serialize({"id": f"r{i:03d}", "n": i, "x": np.full(3, i / 2, np.float32)})


def write_file(path: Path, records: list[bytes]) -> Path:
    with AtomicRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    return path


def test_every_value_kind_round_trips_through_an_example():
    values = {
        "bytes": b"\x00\xffraw",
        "text": "héllo",
        "byte_list": [b"a", b"", b"c\x00"],
        "text_tuple": ("x", "y"),
        "int": -(2**40),
        "np_int": np.int32(7),
        "bool": True,
        "int_list": [1, 2, 3],
        "uint8_image": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "bool_array": np.array([True, False]),
        "float": 0.25,
        "np_float": np.float64(1.5),
        "float_array": np.array([[0.5, -1.0], [2.0, 3.25]]),
        "mixed_numbers": [1, 2.5],
        "empty_ints": np.array([], dtype=np.int64),
        "empty_floats": np.zeros(0, np.float32),
    }
    decoded = to_dict(make_example(values).SerializeToString())
    assert list(decoded) == sorted(values)
    assert decoded["bytes"] == [b"\x00\xffraw"]
    assert decoded["text"] == ["héllo".encode()]
    assert decoded["byte_list"] == [b"a", b"", b"c\x00"]
    assert decoded["text_tuple"] == [b"x", b"y"]
    for key, expected in [
        ("int", [-(2**40)]),
        ("np_int", [7]),
        ("bool", [1]),
        ("int_list", [1, 2, 3]),
        ("uint8_image", [0, 1, 2, 3, 4, 5]),
        ("bool_array", [1, 0]),
        ("empty_ints", []),
    ]:
        assert decoded[key].dtype == np.int64
        np.testing.assert_array_equal(decoded[key], expected)
    for key, expected in [
        ("float", [0.25]),
        ("np_float", [1.5]),
        ("float_array", [0.5, -1.0, 2.0, 3.25]),
        ("mixed_numbers", [1.0, 2.5]),
        ("empty_floats", []),
    ]:
        assert decoded[key].dtype == np.float32
        np.testing.assert_array_equal(decoded[key], expected)
    kinds = feature_kinds(make_example(values))
    assert kinds["text_tuple"] == ("bytes", 2)
    assert kinds["uint8_image"] == ("int64", 6)
    assert kinds["empty_floats"] == ("float", 0)


@pytest.mark.parametrize("empty", [[], ()])
def test_an_empty_list_is_refused_because_its_type_is_unknown(empty):
    with pytest.raises(ValueError, match=r"'v'.*empty list"):
        make_example({"v": empty})


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, TypeError),
        (1 + 2j, TypeError),
        ([b"a", 1], TypeError),
        (np.array([2**63], dtype=np.uint64), ValueError),
    ],
)
def test_values_that_cannot_be_stored_faithfully_are_refused(value, error):
    with pytest.raises(error):
        make_example({"v": value})


def test_serialize_is_independent_of_key_order():
    assert serialize({"a": 1, "b": b"x"}) == serialize({"b": b"x", "a": 1})


def test_with_features_drops_prefixes_sets_updates_and_keeps_the_rest_byte_identical():
    rng = np.random.default_rng(0)
    original = make_example(
        {
            "id": "clip_1",
            "audio": rng.standard_normal(50).astype(np.float32),
            "label": 3,
            "embedding/a": [0.1, 0.2],
            "embedding/b": [0.3],
        }
    )
    updated = with_features(
        original.SerializeToString(),
        {"label": 4, "embedding/c": np.ones(2, np.float32)},
        drop_prefixes=["embedding/"],
    )
    result = tf.train.Example.FromString(updated).features.feature
    assert sorted(result) == ["audio", "embedding/c", "id", "label"]
    assert list(result["label"].int64_list.value) == [4]
    for key in ("id", "audio"):
        before = original.features.feature[key].SerializeToString()
        assert result[key].SerializeToString() == before


def test_atomic_writer_shows_the_final_name_only_after_a_clean_exit(tmp_path):
    path = tmp_path / "out" / "data.tfrecord"
    with AtomicRecordWriter(path) as writer:
        writer.write(numbered(0))
        writer.write(numbered(1))
        assert not path.exists()
        assert [p.name for p in path.parent.iterdir()] == [writer.temporary.name]
    assert writer.count == 2
    assert list(path.parent.iterdir()) == [path]
    assert list(read_records([path])) == [numbered(0), numbered(1)]


def test_an_exception_leaves_neither_a_final_file_nor_a_temporary(tmp_path):
    path = write_file(tmp_path / "data.tfrecord", [numbered(7)])
    with pytest.raises(RuntimeError), AtomicRecordWriter(path) as writer:
        writer.write(numbered(8))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == [path]
    assert list(read_records([path])) == [numbered(7)]  # the earlier file is untouched


def test_a_killed_writer_leaves_only_a_temporary_which_is_ignored_and_swept(tmp_path):
    keep = write_file(tmp_path / "shards" / "keep.tfrecord", [numbered(0)])
    killed = AtomicRecordWriter(tmp_path / "shards" / "killed.tfrecord")
    killed.write(numbered(1))  # and never committed: as if killed here
    assert is_temporary(killed.temporary) and killed.temporary.exists()
    assert not is_temporary(keep)
    assert list_shards(tmp_path) == [keep]
    assert remove_temporaries(tmp_path) == [killed.temporary]
    assert list((tmp_path / "shards").iterdir()) == [keep]


def test_temporary_names_are_fresh_and_beside_the_final_name(tmp_path):
    first, second = temporary_name(tmp_path / "a.tfrecord"), temporary_name(tmp_path / "a.tfrecord")
    assert first != second and first.parent == tmp_path
    assert first.name.startswith("a.tfrecord.tmp-") and is_temporary(first)


def test_sharded_writer_commits_every_shard_including_empty_ones(tmp_path):
    with ShardedRecordWriter(tmp_path, "train", 3) as writer:
        for i in range(5):
            writer.write(i % 2, numbered(i))
    assert [p.name for p in writer.paths] == [
        "train-00000-of-00003.tfrecord",
        "train-00001-of-00003.tfrecord",
        "train-00002-of-00003.tfrecord",
    ]
    assert writer.counts == [3, 2, 0]
    assert list_shards(tmp_path) == writer.paths
    assert [count_records(p) for p in writer.paths] == [3, 2, 0]
    assert list(read_records(writer.paths[:2])) == [numbered(i) for i in (0, 2, 4, 1, 3)]


def test_sharded_writer_commits_nothing_on_an_exception(tmp_path):
    with pytest.raises(KeyError), ShardedRecordWriter(tmp_path, "val", 2) as writer:
        writer.write(0, numbered(0))
        writer.write(1, numbered(1))
        raise KeyError("stop")
    assert list(tmp_path.iterdir()) == []


def test_shard_names_and_out_of_range_shards():
    assert shard_name("train", 3, 64) == "train-00003-of-00064.tfrecord"
    with pytest.raises(ValueError):
        shard_name("train", 64, 64)
    assert split_name("val-00001-of-00002.tfrecord") == "val"
    assert split_name("extra.tfrecord") == "extra"


def test_hashes_are_stable_known_values():
    # Computed once; a change here reshuffles every existing dataset.
    assert shard_index("clip_0001", 64) == 16
    assert shard_index(b"clip_0002", 64) == 58
    assert shard_index("clip_0001", 64, salt="v2") == 4
    assert unit_hash("clip_0001") == pytest.approx(0.6884566806216399, abs=1e-15)
    assert unit_hash(b"clip_0002", salt="v2") == pytest.approx(0.2139681972459403, abs=1e-15)
    assert shard_index("é", 7) == shard_index("é".encode(), 7)


def test_hashes_are_roughly_uniform_and_vectorised_versions_agree():
    keys = [f"video_{i}" for i in range(10_000)]
    shards = shard_indices(keys, 10)
    counts = np.bincount(shards, minlength=10)
    assert counts.min() > 900 and counts.max() < 1100  # expected 1000, sd about 30
    units = unit_hashes(keys)
    assert units.min() >= 0 and units.max() < 1
    assert np.histogram(units, bins=10, range=(0, 1))[0].min() > 900
    assert shards[123] == shard_index(keys[123], 10) and units[45] == unit_hash(keys[45])
    assert abs(np.corrcoef(shards, units)[0, 1]) < 0.05


@pytest.fixture
def good_truncated_flipped(tmp_path):
    records = [numbered(i) for i in range(6)]
    good = write_file(tmp_path / "a-good.tfrecord", records)
    data = good.read_bytes()
    truncated = tmp_path / "b-truncated.tfrecord"
    truncated.write_bytes(data[:-10])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "c-flipped.tfrecord").write_bytes(bytes(flipped))
    # A record header cut short after the last record: TensorFlow alone reads this quietly.
    (tmp_path / "d-tail.tfrecord").write_bytes(data + data[:5])
    return list_shards(tmp_path)


def test_count_records_accepts_a_whole_file_and_names_each_kind_of_damage(
    good_truncated_flipped,
):
    good, truncated, flipped, tail = good_truncated_flipped
    assert count_records(good) == 6
    for path, detail in [
        (truncated, "truncated record"),
        (flipped, "corrupted record"),
        (tail, "5 bytes after the last complete record"),
    ]:
        with pytest.raises(CorruptShard, match=detail) as raised:
            count_records(path)
        assert raised.value.path == path and str(raised.value).startswith(f"{path}: ")


def test_verify_reports_every_bad_shard_and_counts_the_good_ones(good_truncated_flipped):
    good, *bad = good_truncated_flipped
    shards = [*bad, good]  # a bad shard first must not stop the rest
    counts, problems = verify_shards(shards, progress=False)
    assert counts == {good: 6}
    assert [problem.path for problem in problems] == bad


def test_reading_through_a_bad_shard_names_it(good_truncated_flipped):
    good, truncated, *_ = good_truncated_flipped
    with pytest.raises(CorruptShard) as raised:
        list(read_records([good, truncated], batch_size=4))
    assert raised.value.path == truncated


def test_read_records_in_file_order_singly_and_in_batches_spanning_files(tmp_path):
    first = write_file(tmp_path / "1.tfrecord", [numbered(i) for i in range(3)])
    second = write_file(tmp_path / "2.tfrecord", [numbered(i) for i in range(3, 5)])
    assert list(read_records([second, first])) == [numbered(i) for i in (3, 4, 0, 1, 2)]
    batches = list(read_records([first, second], batch_size=2))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert list(np.concatenate(batches)) == [numbered(i) for i in range(5)]


def test_parse_batches_keeps_file_order_and_can_carry_the_raw_records(tmp_path):
    first = write_file(tmp_path / "1.tfrecord", [numbered(i) for i in range(5)])
    extra = serialize({"id": "tags", "n": 5, "x": np.zeros(3, np.float32), "tags": [1, 2, 3]})
    second = write_file(tmp_path / "2.tfrecord", [numbered(6), extra])
    spec = {
        "id": tf.io.FixedLenFeature([], tf.string),
        "n": tf.io.FixedLenFeature([], tf.int64),
        "x": tf.io.FixedLenFeature([3], tf.float32),
        "tags": tf.io.VarLenFeature(tf.int64),
    }
    batches = list(parse_batches([first, second], spec, batch_size=3, with_raw=True))
    assert [len(batch["n"]) for batch in batches] == [3, 3, 1]
    assert np.concatenate([b["n"] for b in batches]).tolist() == [0, 1, 2, 3, 4, 6, 5]
    assert batches[0]["x"].shape == (3, 3) and batches[0]["x"][2].tolist() == [1.0] * 3
    assert batches[1]["id"].tolist() == [b"r003", b"r004", b"r006"]
    assert [tags.tolist() for tags in batches[2]["tags"]] == [[1, 2, 3]]
    assert batches[0]["tags"][0].size == 0
    raw = np.concatenate([b["__raw__"] for b in batches]).tolist()
    assert raw == [*[numbered(i) for i in (0, 1, 2, 3, 4, 6)], extra]
    with pytest.raises(ValueError, match="reserved"):
        next(parse_batches([first], {"__raw__": spec["id"]}))


def write_dataset(root: Path) -> list[Path]:
    """Two splits in root/shards and a dataset.json listing them."""
    jpeg = tf.io.encode_jpeg(np.zeros((6, 8, 3), np.uint8)).numpy()
    rng = np.random.default_rng(0)
    entries, paths = [], []
    for split, size, num_shards in [("train", 7, 2), ("val", 2, 2)]:
        with ShardedRecordWriter(root / "shards", split, num_shards) as writer:
            for i in range(size):
                key = f"{split}/{i}"
                features = {
                    "id": key,
                    "image": jpeg,
                    "blob": bytes(40),
                    "audio": rng.standard_normal(9).astype(np.float32),
                    "label": i,
                }
                writer.write(shard_index(key, num_shards), serialize(features))
        entries += [
            {"path": f"shards/{p.name}", "records": n}
            for p, n in zip(writer.paths, writer.counts, strict=True)
        ]
        paths += writer.paths
    manifest = {"counts": {"train": 7, "val": 2}, "schema": {"image": "jpeg"}, "shards": entries}
    (root / "dataset.json").write_text(json.dumps(manifest))
    return paths


def test_summary_of_a_healthy_dataset(tmp_path):
    paths = write_dataset(tmp_path)
    report = summarize(tmp_path, examples=2)
    assert report.problems == []
    assert [shard.path for shard in report.shards] == paths
    assert {name: sum(s.records for s in shards) for name, shards in report.splits().items()} == {
        "train": 7,
        "val": 2,
    }
    assert report.schema == {
        "audio": ("float", 9),
        "blob": ("bytes", 1),
        "id": ("bytes", 1),
        "image": ("bytes", 1),
        "label": ("int64", 1),
    }
    first = report.examples[0]
    assert first["image"] == "<JPEG 8x6, " + first["image"].split(", ")[1]
    assert first["blob"] == "<40 bytes>"
    assert first["audio"].endswith(", ...] (9 floats)") and first["audio"].count(",") == 5
    assert first["id"].startswith("b'train/")
    text = format_report(report)
    for expected in ('"train": 7', "train", "total", "9", "image  bytes  1", "example 2:"):
        assert expected in text


def test_summary_names_shards_that_disagree_with_dataset_json(tmp_path):
    paths = write_dataset(tmp_path)
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    manifest["shards"][0]["records"] += 1
    manifest["shards"].append({"path": "shards/gone.tfrecord", "records": 1})
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    stray = write_file(tmp_path / "shards" / "stray.tfrecord", [numbered(0)])
    problems = {problem.path: problem.detail for problem in summarize(tmp_path).problems}
    assert problems == {
        paths[0]: f"dataset.json says {manifest['shards'][0]['records']} records, "
        f"the file holds {manifest['shards'][0]['records'] - 1}",
        stray: "not listed in dataset.json",
        (tmp_path / "shards" / "gone.tfrecord").resolve(): "listed in dataset.json but missing",
    }


def test_summary_without_verifying_takes_counts_from_dataset_json(tmp_path):
    paths = write_dataset(tmp_path)
    paths[0].write_bytes(paths[0].read_bytes()[:-3])  # would be caught when verifying
    report = summarize(tmp_path, verify=False, examples=0)
    listed = json.loads((tmp_path / "dataset.json").read_text())["shards"]
    assert [shard.records for shard in report.shards] == [e["records"] for e in listed]
    assert report.examples == [] and "label" in report.schema
    assert "counts from dataset.json" in format_report(report)
