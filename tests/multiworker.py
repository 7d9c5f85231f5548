"""Run by test_train.py as one of two worker processes of a MultiWorkerMirroredStrategy
on 127.0.0.1 (TF_CONFIG must be set before TensorFlow starts): train, and print this
worker's loss curve as JSON."""

from __future__ import annotations

import json
import sys

from workers import join_cluster

data_dir, workdir = join_cluster(sys.argv[1:])

from tiny import train_config  # noqa: E402  (after TF_CONFIG is set)

from tfambient.tasks import pretext as train  # noqa: E402

config = train_config(
    data_dir,
    workdir,
    train_steps=4,
    steps_per_loop=2,
    eval_every=4,
    checkpoint_every=2,
    learning_rate=1e-4,
    strategy="auto",  # TF_CONFIG names two workers: multi-worker
    seed=5,
)
result = train.train(config)
print(json.dumps([record["loss"] for record in result["history"]]))
