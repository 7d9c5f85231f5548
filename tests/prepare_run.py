"""Running the installed tfambient-prepare (and its sibling commands) on the test corpus,
and reading back every record it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tensorflow as tf

BIN = Path(sys.executable).parent
FRAMES_PER_CLIP = 2


def run(command: str, *args, check_rc=0, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The installed command, as a user runs it; its exit status must be ``check_rc``."""
    result = subprocess.run(
        [str(BIN / command), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == check_rc, result.stderr[-3000:]
    return result


def prepare_args(corpus, output_dir, *extra):
    """tfambient-prepare's flags for the corpus: small frames, three clusters, four bits."""
    return [
        f"--audioset={corpus.csv}",
        f"--media_dir={corpus.media_dir}",
        f"--output_dir={output_dir}",
        f"--frames_per_clip={FRAMES_PER_CLIP}",
        "--short_side=64",
        "--num_clusters=3",
        "--num_bits=4",
        "--val_fraction=0.25",
        "--noprogress",
        *extra,
    ]


def read_dataset(data_dir: Path) -> list[dict]:
    """Every record, parsed with tf.data using the schema dataset.json states."""
    manifest = json.loads((data_dir / "dataset.json").read_text())
    dtypes = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
    spec = {
        key: tf.io.FixedLenFeature([field["length"]], dtypes[field["kind"]])
        if field["length"]
        else tf.io.VarLenFeature(dtypes[field["kind"]])
        for key, field in manifest["schema"].items()
    }
    files = [str(data_dir / s["path"]) for s in manifest["shards"]]
    records = []
    for raw in tf.data.TFRecordDataset(files):
        parsed = tf.io.parse_single_example(raw, spec)
        records.append(
            {
                k: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
                for k, v in parsed.items()
            }
        )
    return records


def by_frame(records: list[dict]) -> dict[tuple[str, int], dict]:
    return {(r["clip/id"][0].decode(), int(r["frame/index"][0])): r for r in records}
