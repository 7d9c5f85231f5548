"""Run by test_probe.py as one of two worker processes of a MultiWorkerMirroredStrategy on
127.0.0.1 (TF_CONFIG must be set before TensorFlow starts): probe, sharing the feature
shards and training the classifiers together; print this worker's results as JSON."""

from __future__ import annotations

import json
import sys

from workers import join_cluster

tree, workdir = join_cluster(sys.argv[1:])

from tiny import probe_config  # noqa: E402  (after TF_CONFIG is set)

from tfambient.tasks import probe  # noqa: E402

config = probe_config(
    tree,
    workdir,
    epochs=2,
    shard_size=8,  # 4 train and 2 val shards, shared by the workers
    strategy="auto",  # TF_CONFIG names two workers: multi-worker
    seed=5,
)
summary = probe.run(config)
print(json.dumps({layer: result["top1"] for layer, result in summary["layers"].items()}))
