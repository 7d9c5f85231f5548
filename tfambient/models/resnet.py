"""ResNet-18 in torchvision's layout, channels-last, without its fc.

Stem conv1 64@7x7/2 + BN + ReLU + pool1 (max 3x3/2), then four stages of two basic blocks
(3x3 convs, 64/128/256/512 filters, the first block of stages 2-4 at stride 2 with a 1x1
stride-2 conv + BN projection shortcut), then global average pooling. 11,176,512 trainable
parameters (torchvision's 11,689,512 less its 1000-way fc) and 9,600 BatchNorm statistics.

Strided convs pad explicitly on both sides as torchvision does; Keras's ``padding="same"``
would pad only bottom/right at stride 2 and shift every feature map by half a pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from tfambient.architectures import channels

STAGE_FILTERS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2


def resnet18(
    input_shape: Sequence[int | None] = (None, None, 3),
    zero_init_residual: bool = False,
    width: float = 1.0,
    name: str = "resnet18",
) -> keras.Model:
    """The ResNet-18 backbone: images -> dict of named features.

    Outputs ``stage1``..``stage4`` (torchvision's layer1..layer4, strides 4/8/16/32) and
    ``pool`` (512-d). ``zero_init_residual`` starts each block's last BN gamma at zero, so
    every block begins as the identity (Goyal et al. 2017), as torchvision's flag does.
    ``width`` multiplies every conv's channels (64 in the stem, then ``STAGE_FILTERS``).
    """
    images = keras.Input(shape=tuple(input_shape), name="images")
    x = _conv_bn(images, channels(64, width), 7, 2, "conv1")
    x = layers.ReLU(name="conv1_relu")(x)
    # Zero padding equals torchvision's -inf padding here: the inputs are ReLU outputs.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, 2, name="pool1")(x)
    outputs = {}
    for stage, published in enumerate(STAGE_FILTERS, start=1):
        filters = channels(published, width)
        for block in range(1, BLOCKS_PER_STAGE + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            out_name = f"stage{stage}" if block == BLOCKS_PER_STAGE else None
            x = _basic_block(
                x, filters, stride, f"stage{stage}_block{block}", out_name, zero_init_residual
            )
        outputs[f"stage{stage}"] = x
    outputs["pool"] = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(images, outputs, name=name)


def _basic_block(x, filters, stride, prefix, out_name, zero_init_residual):
    """Two 3x3 conv+BN with a ReLU between, added to the (projected) input, then ReLU."""
    y = _conv_bn(x, filters, 3, stride, f"{prefix}_conv1")
    y = layers.ReLU(name=f"{prefix}_relu1")(y)
    y = _conv_bn(y, filters, 3, 1, f"{prefix}_conv2", zero_gamma=zero_init_residual)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{prefix}_proj")
    y = layers.Add(name=f"{prefix}_add")([shortcut, y])
    return layers.ReLU(name=out_name or f"{prefix}_out")(y)


def _conv_bn(x, filters, kernel, stride, name, zero_gamma=False):
    """Bias-free conv (BN's beta is the bias) with torchvision's init, then BN (eps 1e-5,
    momentum 0.9 = torch's 0.1)."""
    padding = "same"
    if stride > 1 and kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(
            2.0, mode="fan_out", distribution="untruncated_normal"
        ),
        name=name,
    )(x)
    return layers.BatchNormalization(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=f"{name}_bn",
    )(x)
