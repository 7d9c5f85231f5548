"""AlexNet in torchvision's layout (the 2019 reproduction of Owens et al.), channels-last.

conv1 64@11x11/4 -> pool1 -> conv2 192@5x5 -> pool2 -> conv3 384@3x3 -> conv4 256@3x3 ->
conv5 256@3x3 -> pool5 -> adaptive average pool to 6x6 -> fc6 4096 -> fc7 4096, with a ReLU
after every conv and fc and dropout before fc6 and fc7. The 1000-way fc8 is left to a head
(:mod:`tfambient.models.heads`), so the backbone has 57,003,840 parameters. ``fc_units``
narrows fc6 and fc7 (which hold 54.5M of them) for small experiments such as the demo, and
``width`` scales every conv's channels (the remaining 2.5M shrink as its square) for the
smallest ones: quick trials and tests.

The adaptive pool (:class:`AdaptiveAveragePooling2D`) makes fc6 see 6x6x256 whatever the
input size, as torchvision's ``AdaptiveAvgPool2d`` does: any input of at least 63 px works,
and a SavedModel can take images of any size. At 224 px pool5 is already 6x6 and the pool is
the identity. Keras's own ``AdaptiveAveragePooling2D`` needs static spatial sizes under the
TensorFlow backend, and resizing is not the same average, hence the layer here.

Flatten orders fc6's inputs (h, w, c), not torchvision's (c, h, w): a port of torchvision
weights would permute fc6's kernel rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from tfambient.architectures import channels

MIN_SIZE = 63  # smallest input side that leaves pool5 at least 1x1
CONV_CHANNELS = (64, 192, 384, 256, 256)  # conv1..conv5 at width 1


@keras.saving.register_keras_serializable(package="tfambient")
class AdaptiveAveragePooling2D(layers.Layer):
    """torchvision's ``AdaptiveAvgPool2d`` for channels-last inputs of any, even unknown, size.

    Output cell ``(i, j)`` averages input rows ``floor(i*H/h) .. ceil((i+1)*H/h) - 1`` and the
    same for columns. The averaging is two small matrices built from the runtime shape, so it
    traces once for all sizes (serving signatures) and compiles under XLA.
    """

    def __init__(self, output_size: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.output_size = tuple(int(n) for n in output_size)

    def call(self, inputs):
        shape = ops.shape(inputs)
        rows = _bin_weights(shape[1], self.output_size[0], self.compute_dtype)
        cols = _bin_weights(shape[2], self.output_size[1], self.compute_dtype)
        return ops.einsum("ih,bhwc,jw->bijc", rows, inputs, cols)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


def _bin_weights(size, bins: int, dtype: str):
    """A (bins, size) matrix whose row i averages torchvision's i-th adaptive-pooling bin."""
    i = ops.expand_dims(ops.arange(bins, dtype="int32"), 1)
    j = ops.expand_dims(ops.arange(size, dtype="int32"), 0)
    size = ops.cast(size, "int32")
    start = (i * size) // bins
    end = ((i + 1) * size + bins - 1) // bins
    inside = ops.cast(ops.logical_and(j >= start, j < end), "float32")
    return ops.cast(inside / ops.sum(inside, axis=1, keepdims=True), dtype)


def alexnet(
    input_shape: Sequence[int | None] = (None, None, 3),
    batch_norm: bool = False,
    dropout: float = 0.5,
    fc_units: int = 4096,
    width: float = 1.0,
    name: str = "alexnet",
) -> keras.Model:
    """The AlexNet backbone: images -> dict of named features.

    Outputs ``conv1``..``conv5`` (after their ReLU), ``pool5`` (before the adaptive pool, so
    its size follows the input) and ``fc6``, ``fc7`` (after their ReLU). With ``batch_norm``
    each conv is followed by BatchNormalization ``convN_bn`` and loses its bias, which the
    batch mean would cancel. ``width`` multiplies the channels of conv1..conv5 (64, 192, 384,
    256, 256 at 1). Inputs are float images normalised by the caller.
    """
    _check_input_shape(input_shape)
    c1, c2, c3, c4, c5 = (channels(n, width) for n in CONV_CHANNELS)
    images = keras.Input(shape=tuple(input_shape), name="images")
    x = layers.ZeroPadding2D(2, name="conv1_pad")(images)
    conv1 = _conv(x, c1, 11, "conv1", batch_norm, strides=4, padding="valid")
    x = layers.MaxPooling2D(3, 2, name="pool1")(conv1)
    conv2 = _conv(x, c2, 5, "conv2", batch_norm)
    x = layers.MaxPooling2D(3, 2, name="pool2")(conv2)
    conv3 = _conv(x, c3, 3, "conv3", batch_norm)
    conv4 = _conv(conv3, c4, 3, "conv4", batch_norm)
    conv5 = _conv(conv4, c5, 3, "conv5", batch_norm)
    pool5 = layers.MaxPooling2D(3, 2, name="pool5")(conv5)
    x = AdaptiveAveragePooling2D((6, 6), name="avgpool")(pool5)
    x = layers.Flatten(name="flatten")(x)
    fc6 = _fc(x, "fc6", dropout, fc_units)
    fc7 = _fc(fc6, "fc7", dropout, fc_units)
    outputs = {
        "conv1": conv1,
        "conv2": conv2,
        "conv3": conv3,
        "conv4": conv4,
        "conv5": conv5,
        "pool5": pool5,
        "fc6": fc6,
        "fc7": fc7,
    }
    return keras.Model(images, outputs, name=name)


def _check_input_shape(input_shape: Sequence[int | None]) -> None:
    """Fail at build time, with the reason, rather than deep inside a conv."""
    if len(input_shape) != 3 or input_shape[2] is None:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    if any(side is not None and side < MIN_SIZE for side in input_shape[:2]):
        raise ValueError(f"AlexNet needs inputs of at least {MIN_SIZE} px, got {input_shape}")


def _conv(x, filters, kernel, name, batch_norm, strides=1, padding="same"):
    """conv -> (BatchNorm) -> ReLU; He-normal kernels keep activations' scale without BN."""
    x = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=not batch_norm,
        kernel_initializer="he_normal",
        name=name,
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _fc(x, name: str, dropout: float, units: int):
    """dropout -> dense -> ReLU, torchvision's classifier order."""
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Dense(units, kernel_initializer="he_normal", name=name)(x)
    return layers.ReLU(name=f"{name}_relu")(x)
