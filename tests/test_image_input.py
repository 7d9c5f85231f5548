"""uint8 crops to the step, standardized and colour-jittered in it (tfambient.models.inputs):
the same augmentation as when the parsers did it all in float32 on the host.

The oracles are the host path as it was: the crop resized in float32 and flipped, then
tf.image's per-image colour ops with factors drawn by tf.image's stateless_random_* ops.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from records import HEIGHT, WIDTH
from tiny import IMAGE_SIZE, train_config

from tfambient import data, models, trainer
from tfambient.models import inputs
from tfambient.tasks import pretext

SIZE = 48
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def jpeg() -> tf.Tensor:
    """A noisy picture, so that any change of crop, flip or rounding shows."""
    rng = np.random.default_rng(0)
    smooth = tf.image.resize(rng.uniform(0, 255, (1, 8, 10, 3)), [HEIGHT, WIDTH])[0].numpy()
    noisy = np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
    return tf.io.encode_jpeg(noisy, quality=90)


def float_train_image(encoded: tf.Tensor, seed: tf.Tensor, augment: data.Augment) -> tf.Tensor:
    """The host's training crop as it was: resized in float32, flipped, not rounded."""
    crop_seed, flip_seed = data.crop_and_flip_seeds(seed)
    image = data.random_crop(encoded, crop_seed, augment)
    image = tf.image.resize(image, [augment.image_size, augment.image_size])
    return tf.image.stateless_random_flip_left_right(image, flip_seed)


def float_jitter(image: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """The host's colour jitter as it was, on RGB in [0, 1], drawn from the record's seed."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    change = 0.8 * strength
    image = tf.image.stateless_random_brightness(image, change, seeds[0])
    image = tf.image.stateless_random_contrast(image, 1 - change, 1 + change, seeds[1])
    image = tf.image.stateless_random_saturation(image, 1 - change, 1 + change, seeds[2])
    image = tf.image.stateless_random_hue(image, 0.2 * strength, seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def seeds(n: int) -> tf.Tensor:
    return tf.random.experimental.stateless_split(tf.constant([3, 4], tf.int64), n)


# The crops


def test_training_crops_are_the_float_crops_rounded_to_uint8(jpeg) -> None:
    augment = data.Augment(image_size=SIZE)
    for seed in seeds(32):
        crop = data.train_image(jpeg, seed, augment)
        assert crop.dtype == tf.uint8 and crop.shape == (SIZE, SIZE, 3)
        exact = float_train_image(jpeg, seed, augment).numpy()
        np.testing.assert_array_equal(crop.numpy(), np.round(exact))


def test_evaluation_and_test_crops_are_uint8_of_the_same_crops(jpeg) -> None:
    augment = data.Augment(image_size=SIZE)
    central = data.eval_crop(SIZE)(jpeg, seeds(1)[0])
    assert central.dtype == tf.uint8 and central.shape == (SIZE, SIZE, 3)
    side = int(data.CENTRE_CROP * HEIGHT)
    top, left = (HEIGHT - side) // 2, (WIDTH - side) // 2
    window = tf.io.decode_jpeg(jpeg, channels=3)[top : top + side, left : left + side]
    exact = tf.image.resize(window, [SIZE, SIZE]).numpy()
    np.testing.assert_array_equal(central.numpy(), np.round(exact))
    seed = seeds(1)[0]
    crops = data.test_crops(augment, 3)(jpeg, seed)
    assert crops.dtype == tf.uint8 and crops.shape == (3, SIZE, SIZE, 3)
    for crop, crop_seed in zip(crops, tf.random.experimental.stateless_split(seed, 3), strict=True):
        np.testing.assert_array_equal(crop, np.round(float_train_image(jpeg, crop_seed, augment)))


# The input layer


def test_the_layer_standardizes_as_the_host_did() -> None:
    images = np.random.default_rng(1).integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    for strength in (0.0, 1.0):  # outside training, no jitter whatever the strength
        layer = models.ImageInput(strength, seed=1)
        for training in (False, None):
            out = layer(images, training=training)
            assert out.dtype == tf.float32
            np.testing.assert_allclose(out, data.standardize(images), rtol=1e-6, atol=1e-6)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert models.ImageInput(1.0)(images, training=True).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_an_impossible_strength_is_refused(strength: float) -> None:
    with pytest.raises(ValueError, match=r"color_jitter must be in \[0, 1\]"):
        models.ImageInput(strength)


def test_batched_jitter_is_tf_images_per_image_jitter() -> None:
    """Brightness, contrast, saturation, hue and clip of tf.image, each image its factors,
    the extremes too (where values leave [0, 1] between the steps; hue turns of ±0.5, the
    most tf.image allows)."""
    images = np.random.default_rng(2).uniform(0, 1, (16, 9, 11, 3)).astype(np.float32)
    images[3] = images[3, :1, :1]  # one colour everywhere: every pixel is the mean
    factors = inputs.jitter_factors(16, 1.0, tf.constant([5, 6], tf.int64)).numpy()
    factors[0], factors[1] = [0.8, 1.8, 1.8, 0.5], [-0.8, 0.2, 0.2, -0.5]
    batched = inputs.color_jitter(tf.constant(images), tf.constant(factors)).numpy()
    for image, row, got in zip(images, factors, batched, strict=True):
        brightness, contrast, saturation, hue = row
        expected = tf.image.adjust_brightness(image, brightness)
        expected = tf.image.adjust_contrast(expected, contrast)
        expected = tf.image.adjust_saturation(expected, saturation)
        expected = tf.image.adjust_hue(expected, hue)
        np.testing.assert_allclose(got, tf.clip_by_value(expected, 0, 1), atol=1e-5)


def test_jitter_factors_are_uniform_in_tf_images_ranges() -> None:
    strength = 0.5
    factors = inputs.jitter_factors(40_000, strength, tf.constant([7, 8], tf.int64)).numpy()
    low, high = (np.array(x) for x in inputs.jitter_ranges(strength))
    np.testing.assert_allclose(low, [-0.4, 0.6, 0.6, -0.1], rtol=1e-6)
    np.testing.assert_allclose(high, [0.4, 1.4, 1.4, 0.1], rtol=1e-6)
    assert np.all(factors >= low) and np.all(factors <= high)
    np.testing.assert_allclose(factors.mean(axis=0), (low + high) / 2, atol=0.01)
    np.testing.assert_allclose(factors.std(axis=0), (high - low) / np.sqrt(12), rtol=0.02)
    assert np.abs(np.corrcoef(factors.T) - np.eye(4)).max() < 0.03  # drawn independently


def test_jittered_images_have_the_host_jitters_statistics(jpeg) -> None:
    """Many jitters of one crop: the layer's and the host's (per record) give the same mean
    and spread of each channel's mean and of each image's contrast."""
    n = 1600
    crop = data.train_image(jpeg, seeds(1)[0], data.Augment(image_size=SIZE))
    host = tf.stack([float_jitter(tf.cast(crop, tf.float32) / 255, 1.0, s) for s in seeds(n)])
    layer = models.ImageInput(1.0, seed=9)
    device = tf.concat([layer(tf.stack([crop] * 200), training=True) for _ in range(n // 200)], 0)
    device = device * data.IMAGENET_STD + data.IMAGENET_MEAN  # back to [0, 1]

    def per_image(images) -> np.ndarray:
        """(n, 6): each channel's mean and standard deviation over the image."""
        images = np.asarray(images)
        return np.concatenate([images.mean(axis=(1, 2)), images.std(axis=(1, 2))], axis=1)

    ours, theirs = per_image(device), per_image(host)
    # Means within 4 standard errors of their difference; spreads within 10 %.
    error = 4 * np.sqrt((ours.var(axis=0) + theirs.var(axis=0)) / n)
    assert np.all(np.abs(ours.mean(axis=0) - theirs.mean(axis=0)) < error)
    np.testing.assert_allclose(ours.std(axis=0), theirs.std(axis=0), rtol=0.1)
    plain = np.asarray(data.standardize(crop))
    assert np.abs(np.asarray(layer(crop[None], training=True))[0] - plain).mean() > 0.1
    low = (0 - np.array(data.IMAGENET_MEAN)) / data.IMAGENET_STD
    high = (1 - np.array(data.IMAGENET_MEAN)) / data.IMAGENET_STD
    standardized = np.asarray((device - data.IMAGENET_MEAN) / data.IMAGENET_STD)
    assert np.all(standardized >= low - 1e-4) and np.all(standardized <= high + 1e-4)


def test_each_training_call_draws_anew_and_a_seed_repeats_the_draws() -> None:
    images = np.full((6, 4, 4, 3), 128, np.uint8)
    images[..., 0] = 200

    def three_calls(seed: int) -> list[np.ndarray]:
        layer = models.ImageInput(1.0, seed=seed)
        return [layer(images, training=True).numpy() for _ in range(3)]

    first, again, other = three_calls(1), three_calls(1), three_calls(2)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])
    assert not np.allclose(first[0][0], first[0][1])  # each image its own factors
    assert not np.allclose(first[0], other[0])


def test_replicas_jitter_a_global_batch_as_one_device_does() -> None:
    """In a fresh process (logical devices): MirroredStrategy over two CPUs, each replica half
    of the global batch, gives the one-device outputs, call after call."""
    result = subprocess.run(
        [sys.executable, str(HERE / "jitter_replicas.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "replicas match one device"


# The models


def test_the_pretext_model_takes_uint8_and_the_exported_backbone_floats(tmp_path, data_dir):
    config = train_config(data_dir, tmp_path / "run", color_jitter=1.0, jit=True, train_steps=4)
    strategy = tf.distribute.get_strategy()
    task = pretext.PretextTask(config, strategy)
    assert task.model.inputs[0].dtype == "uint8"
    assert task.backbone.inputs[0].dtype == "float32"  # the export contract: standardized
    loop = trainer.Loop.of(task, strategy, pretext.plan(config))
    iterator = iter(strategy.distribute_datasets_from_function(task.train_inputs))
    figures = loop.run_steps(iterator, 2)
    assert np.isfinite(figures["loss"])
    assert int(task.image_input.draws.numpy()) == 2  # one draw per step, through XLA
    images, _ = next(iter(task.validation_inputs()))
    logits = task.model(images, training=False)
    features = task.backbone(data.standardize(images), training=False)[config.feature or "fc7"]
    head = task.model.get_layer("classifier")
    np.testing.assert_allclose(head(features), logits, rtol=1e-4, atol=1e-5)


def test_a_saved_voc_model_loads_with_its_input_layer(tmp_path) -> None:
    from tfambient.tasks import voc

    size = IMAGE_SIZE
    backbone = models.build_backbone("alexnet", input_shape=(size, size, 3), fc_units=8)
    model = voc.voc_model(backbone, size)
    images = np.random.default_rng(3).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(loaded(images), model(images), rtol=1e-5, atol=1e-6)
