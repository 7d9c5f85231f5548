"""Heads (one feature -> logits) and the model that puts one on a backbone.

A backbone maps images to a dict of named features; a head reads one of them. The logits
layer computes in float32 whatever the global mixed-precision policy, so softmax and sigmoid
losses are computed in float32. :func:`pretext_model` nests the backbone as a single layer,
the backbone object itself: it keeps training inside the pretext model, and can then be
saved alone (``backbone.save("x.keras")``) and put under a new head with no retraining.
"""

from __future__ import annotations

import keras
from keras import layers


def classifier_head(features, num_classes: int, name: str = "classifier"):
    """Logits over ``num_classes`` exclusive classes (softmax), e.g. the sound clusters."""
    return _logits(features, num_classes, name)


def bits_head(features, num_bits: int, name: str = "bits"):
    """One logit per binary target (sigmoid): Owens' PCA sign bits, or multi-label classes."""
    return _logits(features, num_bits, name)


def _logits(features, units: int, name: str):
    """Dense in float32 with small initial weights, so the first losses are near chance.

    A feature map (pool5, a stage) is global-average pooled first, so a head fits any size.
    """
    if len(features.shape) == 4:
        features = layers.GlobalAveragePooling2D(name=f"{name}_pool")(features)
    elif len(features.shape) != 2:
        raise ValueError(f"a head takes (batch, d) or (batch, h, w, c), got {features.shape}")
    return layers.Dense(
        units,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        dtype="float32",
        name=name,
    )(features)


def pretext_model(
    backbone: keras.Model,
    feature: str,
    *,
    num_classes: int | None = None,
    num_bits: int | None = None,
    image_input: keras.layers.Layer | None = None,
    name: str | None = None,
) -> keras.Model:
    """images -> float32 logits of a classifier (``num_classes``) or bits (``num_bits``) head
    on the backbone's ``feature`` ("fc7", "pool5", "pool", ...).

    The backbone is the model's layer ``backbone.name`` and shares its weights with every
    other model built on it. With ``image_input`` (a :class:`tfambient.models.ImageInput`) the
    model takes uint8 images and standardizes them itself; without, the backbone's input.
    """
    if (num_classes is None) == (num_bits is None):
        raise ValueError("give exactly one of num_classes and num_bits")
    known = backbone.output
    if feature not in known:
        raise ValueError(f"{backbone.name} has no feature {feature!r}; it has {sorted(known)}")
    images = keras.Input(
        shape=backbone.inputs[0].shape[1:],
        dtype=None if image_input is None else "uint8",
        name="images",
    )
    features = backbone(images if image_input is None else image_input(images))[feature]
    if num_classes is not None:
        logits = classifier_head(features, num_classes)
    else:
        logits = bits_head(features, num_bits)
    return keras.Model(images, logits, name=name or f"{backbone.name}_{feature}_head")
