"""Run by test_voc_finetune.py in a fresh process (logical devices must be set before
TensorFlow starts): fine-tune the same VOC run on one CPU device and mirrored over two
logical CPUs, and print both loss curves and test mAPs as JSON."""

from __future__ import annotations

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tiny import voc_config  # noqa: E402  (after the devices are configured)

from tfambient.tasks import voc as finetune  # noqa: E402


def run(workdir: str, strategy) -> dict:
    config = voc_config(
        sys.argv[1],
        workdir,
        backbone="random",
        arch="resnet18",  # head mode: BatchNorm frozen, no dropout; the replicas agree exactly
        mode="head",
        train_steps=6,
        steps_per_loop=1,
        checkpoint_every=1000,
        seed=3,
    )
    metrics = finetune.run(config, strategy)
    with open(f"{workdir}/metrics.jsonl") as f:
        return {"losses": [json.loads(line)["loss"] for line in f], "map": metrics["map_voc07"]}


one = run(sys.argv[2] + "/one", tf.distribute.OneDeviceStrategy("/cpu:0"))
two = run(sys.argv[2] + "/two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print(json.dumps({"one": one, "two": two}))
