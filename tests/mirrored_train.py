"""Run by test_resume.py in a fresh process (logical devices must be set before TensorFlow
starts): the tiny pretext run of tiny.py with the settings given as JSON, mirrored over two
logical CPUs, as tfambient-train runs it over two GPUs.

    python tests/mirrored_train.py DATA_DIR WORKDIR '{"train_steps": 30}'
"""

from __future__ import annotations

import json
import logging
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tiny import train_config  # noqa: E402  (after the devices are configured)

from tfambient.tasks import pretext  # noqa: E402

logging.basicConfig(level=logging.INFO)  # the trainer says which strategy it runs
config = train_config(sys.argv[1], sys.argv[2], **json.loads(sys.argv[3]))
pretext.train(config, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
