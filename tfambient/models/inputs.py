"""The models' input layer: uint8 crops, as the input pipeline ships them, to the float input
every backbone takes (RGB standardized by ImageNet's mean and std), colour-jittered in training.

Why here and not in the input pipeline: a crop is decoded and resized on the host, but
standardizing and jittering it are per-pixel float passes, memory-bound on the CPU (they cost
the pipeline a third of its throughput, and jitter half of the rest); inside the compiled step
they are a few fused elementwise passes on the accelerator, and the host ships a quarter of
the bytes. The backbone's own contract (float images standardized by
:func:`tfambient.data.standardize`, what ``tfambient-export`` serves) does not change: this
layer sits in front of it, in the pretext and VOC models.

Colour jitter (SimCLR's, scaled by a strength s in [0, 1]) is the sequence of tf.image's
adjust_brightness (delta ±0.8s), adjust_contrast and adjust_saturation (factor
×[1 - 0.8s, 1 + 0.8s]) and adjust_hue (±0.2s of a turn), then a clip to [0, 1], on every
image with factors of its own: :func:`color_jitter` computes the same in batches
(saturation and hue in closed form, as tf.image's kernels do, out-of-range values included).
The factors are drawn on the device, stateless, from (seed, how many training calls the layer
has made, the image's position in the global batch): two runs with a seed jitter alike, a
resumed run goes on with the draws it would have made (the count is a variable of the model,
so it is checkpointed), and replicas of one host jitter the images of a global batch as a
single device would. (An XLA-compiled step, --jit, draws from another stream of the same
distribution: XLA's stateless generator is not TensorFlow kernels'.)
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfambient import data

JITTER_FACTORS = 4  # brightness delta, contrast, saturation, hue delta


def jitter_ranges(strength: float) -> tuple[tf.Tensor, tf.Tensor]:
    """(low, high) of the four factors at ``strength``, each shaped (4,)."""
    change = 0.8 * strength
    low = tf.constant([-change, 1 - change, 1 - change, -0.2 * strength])
    high = tf.constant([change, 1 + change, 1 + change, 0.2 * strength])
    return low, high


def jitter_factors(count: int | tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """(count, 4) factors, each uniform in its range: one row per image."""
    low, high = jitter_ranges(strength)
    uniform = tf.random.stateless_uniform([count, JITTER_FACTORS], seed)
    return low + (high - low) * uniform


def color_jitter(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Images (b, h, w, 3) of RGB in [0, 1], each changed by its row of ``factors`` (b, 4):
    brightness, contrast, saturation, hue, then clipped to [0, 1]."""
    brightness, contrast, saturation, hue = (
        factors[:, i, None, None, None] for i in range(JITTER_FACTORS)
    )
    images = images + brightness
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    images = (images - mean) * contrast + mean
    images = _scale_saturation(images, saturation)
    images = _rotate_hue(images, hue)
    return tf.clip_by_value(images, 0.0, 1.0)


def _scale_saturation(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """tf.image.adjust_saturation per image: HSV's S times ``factor``, clipped to [0, 1].

    With H and V fixed every channel is V - S·V·k (k a function of H alone), so scaling S
    by r = min(factor, 1/S) moves each channel to V - (V - c)·r. Where V <= 0, S is 0 and
    the pixel becomes (V, V, V), as in the kernel.
    """
    value = tf.reduce_max(images, axis=-1, keepdims=True)
    spread = value - tf.reduce_min(images, axis=-1, keepdims=True)
    # spread is 0 where every channel is V: the ratio does not matter there.
    ratio = tf.minimum(factor, value / tf.maximum(spread, 1e-12))
    ratio = tf.where(value > 0, ratio, 0.0)
    return value - (value - images) * ratio


def _rotate_hue(images: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
    """tf.image.adjust_hue per image: the hue (in sixths of a turn, [0, 6)) turned by
    ``delta`` turns, the channels' max and min kept, as the kernel does for any values.
    Selects and clips rather than modulo: XLA fuses them into one cheap pass."""
    red, green, blue = tf.unstack(images, axis=-1)
    high = tf.maximum(red, tf.maximum(green, blue))
    spread = high - tf.minimum(red, tf.minimum(green, blue))
    inverse = 1.0 / tf.maximum(spread, 1e-12)
    red_high, green_high = red >= high, green >= high
    difference = tf.where(red_high, green - blue, tf.where(green_high, blue - red, red - green))
    sector = tf.where(red_high, 0.0, tf.where(green_high, 2.0, 4.0))
    hue = difference * inverse + sector + 6.0 * delta[..., 0]  # in [-4, 8] for |delta| <= 0.5
    hue = tf.where(hue < 0, hue + 6.0, tf.where(hue >= 6, hue - 6.0, hue))
    low = high - spread
    shares = (  # each channel's share of the spread above the min, at this hue
        tf.abs(hue - 3.0) - 1.0,
        2.0 - tf.abs(hue - 2.0),
        2.0 - tf.abs(hue - 4.0),
    )
    return tf.stack([low + spread * tf.clip_by_value(x, 0.0, 1.0) for x in shares], axis=-1)


@keras.saving.register_keras_serializable(package="tfambient")
class ImageInput(keras.layers.Layer):
    """uint8 RGB (b, S, S, 3) -> float32 standardized; in training, colour-jittered first
    (``color_jitter``: the strength, 0 off) with factors drawn from ``seed`` (module
    docstring). Computes in float32 whatever the mixed-precision policy."""

    def __init__(self, color_jitter: float = 0.0, seed: int = 0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not 0 <= color_jitter <= 1:
            raise ValueError(f"color_jitter must be in [0, 1], not {color_jitter}")
        self.color_jitter, self.seed = float(color_jitter), int(seed)
        self.draws = None

    def build(self, input_shape) -> None:
        if self.color_jitter:
            # Every replica counts the same calls; the first replica's count is kept.
            self.draws = self.add_weight(
                shape=(),
                dtype="int64",
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                name="jitter_draws",
            )

    def call(self, images, training=None):
        images = tf.cast(images, tf.float32)
        if training and self.color_jitter:
            images = color_jitter(images / 255.0, self._factors(tf.shape(images)[0])) * 255.0
        return data.standardize(images)

    def preview(self, images: tf.Tensor) -> tf.Tensor:
        """What training feeds the backbone, for a look (TensorBoard): standardized images,
        jittered with factors of their own (the training draws are left alone)."""
        images = tf.cast(images, tf.float32)
        if self.color_jitter:
            seed = tf.constant([self.seed, -1], tf.int64)
            factors = jitter_factors(tf.shape(images)[0], self.color_jitter, seed)
            images = color_jitter(images / 255.0, factors) * 255.0
        return data.standardize(images)

    def _factors(self, batch: tf.Tensor) -> tf.Tensor:
        """This replica's rows of the global batch's factors for this call."""
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context else 1
        replica = context.replica_id_in_sync_group if context else 0
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.draws.value, tf.int64)])
        factors = jitter_factors(batch * replicas, self.color_jitter, seed)
        self.draws.assign_add(1)
        return factors[batch * replica : batch * (replica + 1)]

    def get_config(self) -> dict:
        return super().get_config() | {"color_jitter": self.color_jitter, "seed": self.seed}
