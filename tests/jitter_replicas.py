"""Run by test_image_input.py in a fresh process (logical devices must be set before
TensorFlow starts): the input layer's jitter over two mirrored CPU replicas, each given half
of a global batch, against one device given the whole batch; prints "replicas match one
device" when every call's outputs agree."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tfambient import models  # noqa: E402  (after the devices are configured)

CALLS = 3
images = np.random.default_rng(0).integers(0, 256, (CALLS, 8, 6, 6, 3), dtype=np.uint8)


def outputs(strategy: tf.distribute.Strategy) -> list[np.ndarray]:
    with strategy.scope():
        layer = models.ImageInput(1.0, seed=4)
        layer.build((None, 6, 6, 3))
    # As the trainer runs a step: strategy.run of a step inside a tf.function.
    step = tf.function(lambda x: layer(x, training=True))
    call = tf.function(lambda batch: strategy.run(step, args=(batch,)))
    dataset = tf.data.Dataset.from_tensor_slices(images).unbatch().batch(8)
    results = []
    for batch in strategy.experimental_distribute_dataset(dataset):
        results.append(np.concatenate(strategy.experimental_local_results(call(batch))))
    assert int(layer.draws.numpy()) == CALLS, int(layer.draws.numpy())
    return results


# Uncompiled: XLA cannot reach a mirrored variable on a second logical CPU (XLA's known issue
# "tf.Variable on a different device"), and draws another stream than TensorFlow's kernels.
one = outputs(tf.distribute.OneDeviceStrategy("/cpu:0"))
two = outputs(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
for a, b in zip(one, two, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
assert not np.allclose(one[0], one[1])
print("replicas match one device")
