"""The model zoo: backbones that map images to named features, and heads on them.

Every backbone is a functional ``keras.Model`` whose output is a dict of named features
(AlexNet: conv1..conv5, pool5, fc6, fc7; ResNet-18: stage1..stage4, pool), so that exporting
feature maps is calling the backbone, and fine-tuning is a head on one key
(:func:`pretext_model`). Loading a saved AlexNet needs this package imported (it registers
the adaptive pooling layer).
"""

from __future__ import annotations

import keras

from tfambient import architectures
from tfambient.models.alexnet import AdaptiveAveragePooling2D, alexnet
from tfambient.models.heads import bits_head, classifier_head, pretext_model
from tfambient.models.inputs import ImageInput
from tfambient.models.resnet import resnet18


def build_backbone(arch: str, **kwargs) -> keras.Model:
    """The backbone called ``arch`` (see tfambient.architectures), built with ``kwargs``."""
    return architectures.get(arch).build(**kwargs)


def load_backbone(path, input_shape=(None, None, 3)) -> keras.Model:
    """A saved backbone (.keras) rebuilt to take ``input_shape``.

    The file keeps its training crop size as its input shape; the weights do not depend on it
    (adaptive or global pooling comes before any dense layer), so the same graph with another
    input shape (the saved config, its input layer changed) takes them as they are.
    """
    saved = keras.models.load_model(path, compile=False)
    if saved.name not in architectures.ARCHITECTURES:
        known = ", ".join(architectures.ARCHITECTURES)
        raise ValueError(f"{path} holds a {saved.name!r}, not one of {known}")
    config = saved.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, *input_shape]
    backbone = keras.Model.from_config(config)
    backbone.set_weights(saved.get_weights())
    return backbone


__all__ = [
    "AdaptiveAveragePooling2D",
    "ImageInput",
    "alexnet",
    "bits_head",
    "build_backbone",
    "classifier_head",
    "load_backbone",
    "pretext_model",
    "resnet18",
]
