"""Run by test_probe.py in a fresh process (logical devices must be set before TensorFlow
starts): the same probe on one CPU device and mirrored over two logical CPUs; print each
run's accuracies and one layer's loss curve as JSON."""

from __future__ import annotations

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tiny import probe_config  # noqa: E402  (after the devices are configured)

from tfambient.contracts.workdirs import ProbeWorkdir  # noqa: E402
from tfambient.tasks import probe  # noqa: E402

tree, root = sys.argv[1:]


def run(workdir: str, strategy) -> dict:
    config = probe_config(tree, workdir, steps_per_loop=1, seed=3)
    summary = probe.run(config, strategy)
    log = ProbeWorkdir(workdir).classifier_run("fc7").read_metrics_log()
    return {
        "top1": {layer: result["top1"] for layer, result in summary["layers"].items()},
        "selection": summary["layers"]["fc7"]["selection"],
        "losses": [record["loss"] for record in log],
    }


one = run(f"{root}/one", tf.distribute.OneDeviceStrategy("/cpu:0"))
two = run(f"{root}/two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print(json.dumps({"one": one, "two": two}))
