"""tfrecords-inspect end to end, run as `python -m tfambient.cli.inspect` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def inspect(*args: str, check_rc: int) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tfambient.cli.inspect", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == check_rc, result.stderr
    return result


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """DATA_DIR with shards/train-*-of-00002, shards/val-*-of-00001 and dataset.json."""
    from tfrecords_tools.example import serialize
    from tfrecords_tools.writer import ShardedRecordWriter

    rng = np.random.default_rng(3)
    entries = []
    for split, size, num_shards in [("train", 5, 2), ("val", 3, 1)]:
        with ShardedRecordWriter(tmp_path / "shards", split, num_shards) as writer:
            for i in range(size):
                record = serialize(
                    {"clip_id": f"{split}_{i}", "label": i % 2, "audio": rng.random(8)}
                )
                writer.write(i % num_shards, record)
        entries += [
            {"path": f"shards/{path.name}", "records": count}
            for path, count in zip(writer.paths, writer.counts, strict=True)
        ]
    manifest = {"counts": {"train": 5, "val": 3}, "shards": entries}
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    return tmp_path


def test_a_healthy_dataset_prints_counts_schema_and_examples(dataset):
    out = inspect(str(dataset), "--examples=2", check_rc=0).stdout
    assert "train           5  in 2 shard(s), 2 to 3 per shard" in out
    assert "val             3  in 1 shard(s)" in out
    assert "total           8" in out
    for line in ("audio    float  8", "clip_id  bytes  1", "label    int64  1"):
        assert line in out
    assert "example 2:" in out and "clip_id  b'train_2'" in out


def test_a_truncated_shard_is_named_and_exits_1(dataset):
    shard = dataset / "shards" / "train-00001-of-00002.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-10])
    err = inspect(str(dataset), check_rc=1).stderr
    assert f"tfrecords-inspect: bad shard: {shard}: truncated record" in err
    assert err.count("bad shard:") == 1


def test_a_missing_directory_is_one_line_and_exits_2(tmp_path):
    err = inspect(str(tmp_path / "nope"), check_rc=2).stderr.strip()
    assert "nope: no such directory" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_help_lists_the_flags_and_exits_0():
    out = inspect("--help", check_rc=0).stdout
    assert out.startswith("tfrecords-inspect DIR")
    assert "--examples" in out and "--[no]verify" in out
