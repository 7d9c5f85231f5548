"""Run by test_train.py in a fresh process (logical devices must be set before TensorFlow
starts): train the same run on one CPU device and mirrored over two logical CPUs, and
print both loss curves as JSON."""

from __future__ import annotations

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tiny import train_config  # noqa: E402  (after the devices are configured)

from tfambient.tasks import pretext as train  # noqa: E402


def curve(workdir: str, strategy) -> list[float]:
    config = train_config(
        sys.argv[1],
        workdir,
        train_steps=6,
        steps_per_loop=1,
        eval_every=1000,
        checkpoint_every=1000,
        learning_rate=1e-4,
        dropout=0.0,  # dropout masks differ per replica by design
        seed=3,
    )
    train.train(config, strategy)
    with open(f"{workdir}/metrics.jsonl") as f:
        return [json.loads(line)["loss"] for line in f]


one = curve(sys.argv[2] + "/one", tf.distribute.OneDeviceStrategy("/cpu:0"))
two = curve(sys.argv[2] + "/two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print(json.dumps({"one": one, "two": two}))
