"""What the units of a trained backbone respond to: top-activating frames and activation
maximization (the paper's Figure 2 and its feature visualizations).

Top images follow Zhou et al. (*Object detectors emerge in deep scene CNNs*): every frame of a
prepared directory (up to a bound) goes through the backbone in batches; a convolutional unit's
response to a frame is its maximum over space, a fully connected unit's its value. The units
shown are the most selective (highest max/mean response) of those that fire on at least as
many frames as are shown, and each of their top frames is
shaded outside the region where the unit's map exceeds half its peak, as in Network
Dissection. Activation maximization is gradient ascent on the input pixels with jitter, a
little L2 decay and an occasional blur, the regularisers that keep the picture from turning
into high-frequency noise (Yosinski et al., *Understanding Neural Networks Through Deep
Visualization*).

Arrays are numpy; TensorFlow runs the backbone. Nothing here draws: report.py does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfambient import data
from tfambient.contracts.manifest import Manifest
from tfambient.models.alexnet import MIN_SIZE

BATCH_SIZE = 64
MASK_THRESHOLD = 0.5  # of the unit's peak on that frame (Network Dissection uses a quantile)
SHADE = 0.25  # brightness left outside the unit's region


@dataclass(frozen=True)
class Maximize:
    """Settings of activation maximization."""

    steps: int = 100
    size: int = 128
    step_size: float = 0.05  # in standardized pixel units, per step, of the normalized gradient
    jitter: int = 4  # pixels of random translation each step
    l2: float = 1e-3  # fraction of the image decayed towards grey each step
    blur_every: int = 4  # steps between Gaussian blurs
    blur_sigma: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"maximization needs at least one step, got {self.steps}")
        if self.size < MIN_SIZE:
            raise ValueError(f"maximization images need at least {MIN_SIZE} px, not {self.size}")


@dataclass
class LayerUnits:
    """The chosen units of one layer and their top frames, most selective unit first."""

    layer: str
    units: np.ndarray  # (U,) unit indices
    selectivity: np.ndarray  # (U,) max / mean response over the frames seen
    responses: np.ndarray  # (U, k) the top frames' responses, descending
    images: np.ndarray  # (U, k, S, S, 3) uint8, shaded outside the unit's region (conv)
    frames_seen: int


def unit_responses(features: np.ndarray) -> np.ndarray:
    """(N, H, W, C) feature maps -> (N, C) maxima over space; (N, C) vectors unchanged."""
    features = np.asarray(features)
    return features.max(axis=(1, 2)) if features.ndim == 4 else features


def selectivity(responses: np.ndarray) -> np.ndarray:
    """Max over mean response of each unit (N, U) -> (U,); 0 for units that never fire."""
    peak, mean = responses.max(axis=0), responses.mean(axis=0)
    return np.divide(peak, mean, out=np.zeros_like(peak, dtype=np.float64), where=mean > 0)


def selective_units(responses: np.ndarray, count: int, min_active: int) -> np.ndarray:
    """The `count` most selective units among those that fire on at least `min_active` frames,
    most selective first; if too few qualify, the most often firing of the rest follow.

    A nearly dead unit that fires on one frame has the highest max/mean of all, and would
    fill a row of top frames with black ones; requiring as many firing frames as are shown
    keeps the figure about units that respond to something. Ties: lower index first.
    """
    active = np.minimum((responses > 0).sum(axis=0), min_active)
    return np.lexsort((-selectivity(responses), -active))[:count]


def top_k_rows(responses: np.ndarray, k: int) -> np.ndarray:
    """(N, U) responses -> (U, min(k, N)) row indices of each unit's highest, descending."""
    k = min(k, responses.shape[0])
    part = np.argpartition(-responses, k - 1, axis=0)[:k]  # the top k, unordered
    order = np.argsort(-np.take_along_axis(responses, part, axis=0), axis=0, kind="stable")
    return np.take_along_axis(part, order, axis=0).T


def frame_batches(
    data_dir: str | Path, label: str, image_size: int, max_images: int
) -> tf.data.Dataset:
    """Up to max_images frames, val first (held out from training), then train: centre crops
    standardized as in training, in batches, in the same order on every pass."""
    spec = data.label_spec(data_dir, label)
    augment = data.Augment(image_size=image_size)
    splits = []
    for split in ("val", "train"):
        try:
            dataset = data.pretext_dataset(
                data_dir, split, spec, BATCH_SIZE, training=False, augment=augment
            )
        except ValueError:  # no such split
            continue
        splits.append(dataset.unbatch().map(lambda image, _: data.standardize(image)))
    if not splits:
        raise ValueError(f"{data_dir}: no train or val frames")
    frames = splits[0]
    for more in splits[1:]:
        frames = frames.concatenate(more)
    return frames.take(max_images).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)


def frame_count(data_dir: str | Path, max_images: int) -> int:
    """How many frames frame_batches yields (dataset.json counts the records of each shard)."""
    return min(Manifest.read(data_dir).records(), max_images)


def _feature_fn(backbone: keras.Model, layers: Sequence[str]):
    @tf.function
    def features(images):
        outputs = backbone(images, training=False)
        return [outputs[name] for name in layers]

    return features


def _responses(features, batches: tf.data.Dataset, total: int) -> list[np.ndarray]:
    """Every frame's response of every unit of each layer: one (N, C) array per layer."""
    parts: list[list[np.ndarray]] = []
    with tqdm(total=total, unit="image", desc="unit responses") as bar:
        for images in batches:
            outputs = features(images)
            parts = parts or [[] for _ in outputs]
            for part, output in zip(parts, outputs, strict=True):
                part.append(unit_responses(output.numpy()))
            bar.update(int(images.shape[0]))
    return [np.concatenate(part) for part in parts]


def _gather_frames(batches: tf.data.Dataset, rows: np.ndarray) -> np.ndarray:
    """The standardized frames at the given positions of the stream, in the order asked."""
    wanted = np.unique(rows)
    kept, start = [], 0
    for images in batches:
        end = start + int(images.shape[0])
        inside = wanted[(wanted >= start) & (wanted < end)]
        kept.append(tf.gather(images, inside - start).numpy())
        start = end
    frames = np.concatenate(kept)
    return frames[np.searchsorted(wanted, rows)]


def _shaded(images: np.ndarray, maps: np.ndarray, units: np.ndarray) -> np.ndarray:
    """uint8 frames (n, S, S, 3) dimmed where each unit's own map (n, h, w, C) is below
    MASK_THRESHOLD of its peak on that frame (everywhere if it is silent), the map resized
    to the frame."""
    unit_maps = np.take_along_axis(maps, units[:, None, None, None], axis=3)
    resized = tf.image.resize(unit_maps, images.shape[1:3], method="bilinear").numpy()
    peak = resized.max(axis=(1, 2, 3), keepdims=True)
    inside = (resized >= MASK_THRESHOLD * peak) & (peak > 0)  # a silent unit: all dimmed
    return (images * np.where(inside, 1.0, SHADE)).astype(np.uint8)


def _display(frames: np.ndarray) -> np.ndarray:
    return data.image_grid(tf.constant(frames), len(frames)).numpy()


def top_images(
    backbone: keras.Model,
    batches: tf.data.Dataset,
    total: int,
    layers: Sequence[str],
    units: int,
    k: int,
) -> list[LayerUnits]:
    """For each layer, its `units` most selective units and their k top frames.

    One pass computes every unit's response to every frame; a second pass over the same
    (deterministic) stream fetches the winning frames, so memory holds responses, not images.
    """
    features = _feature_fn(backbone, layers)
    responses = _responses(features, batches, total)
    if not responses:
        raise ValueError("no frames to look at")
    chosen = [selective_units(r, units, k) for r in responses]
    tops = [top_k_rows(r[:, c], k) for r, c in zip(responses, chosen, strict=True)]
    frames = _gather_frames(batches, np.concatenate([t.ravel() for t in tops]))
    maps = features(tf.constant(frames))
    studies, start = [], 0
    for layer, r, c, top, layer_maps in zip(layers, responses, chosen, tops, maps, strict=True):
        rows = slice(start, start + top.size)
        start += top.size
        images = _display(frames[rows])
        if layer_maps.shape.rank == 4:
            images = _shaded(images, layer_maps.numpy()[rows], np.repeat(c, top.shape[1]))
        studies.append(
            LayerUnits(
                layer=layer,
                units=c,
                selectivity=selectivity(r)[c],
                responses=np.take_along_axis(r[:, c], top.T, axis=0).T,
                images=images.reshape(*top.shape, *images.shape[1:]),
                frames_seen=len(r),
            )
        )
    return studies


def _objective(outputs: dict, targets: Sequence[tuple[str, int]]) -> tf.Tensor:
    """(T,) each image's target unit: a conv unit at the centre of its map (one receptive
    field, as Yosinski et al. do: the mean over the map climbs far more slowly, since no
    single picture fills the map with one pattern), a vector unit's value."""
    values = []
    for row, (layer, unit) in enumerate(targets):
        feature = outputs[layer][row]
        if feature.shape.rank == 3:
            feature = feature[tf.shape(feature)[0] // 2, tf.shape(feature)[1] // 2]
        values.append(feature[unit])
    return tf.stack(values)


def _blur_kernel(sigma: float) -> tf.Tensor:
    x = np.arange(-2, 3, dtype=np.float32)
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return tf.constant(np.outer(g, g)[:, :, None, None] * np.ones((1, 1, 3, 1), np.float32))


def before_relu(backbone: keras.Model) -> keras.Model:
    """The backbone with each named feature taken before its final ReLU, where it has one.

    Maximization climbs this: a unit silent on the starting image has no gradient after
    its ReLU, but it does before it.
    """
    producers = {id(layer.output): layer for layer in backbone.layers}
    outputs = {}
    for name, tensor in backbone.output.items():
        layer = producers[id(tensor)]
        outputs[name] = layer.input if isinstance(layer, keras.layers.ReLU) else tensor
    return keras.Model(backbone.inputs, outputs, name=f"{backbone.name}_before_relu")


def unit_activations(
    model: keras.Model, images: np.ndarray, targets: Sequence[tuple[str, int]]
) -> np.ndarray:
    """Each standardized image's response of its target unit (the maximization objective)."""
    return _objective(model(tf.constant(images), training=False), targets).numpy()


def check_targets(backbone: keras.Model, targets: Iterable[tuple[str, int]]) -> None:
    """ValueError naming the layer or unit that the backbone does not have."""
    shapes = {name: tensor.shape[-1] for name, tensor in backbone.output.items()}
    for layer, unit in targets:
        if layer not in shapes:
            raise ValueError(f"no layer {layer!r}; the backbone has {', '.join(shapes)}")
        if not 0 <= unit < shapes[layer]:
            raise ValueError(f"{layer} has units 0..{shapes[layer] - 1}, not {unit}")


def maximize(
    backbone: keras.Model, targets: Sequence[tuple[str, int]], settings: Maximize = Maximize()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient ascent on one image per (layer, unit) target, all in one batch.

    Returns the images as uint8 (T, S, S, 3), and each target's activation before its ReLU
    (see before_relu) on the starting image (faint noise around the mean colour) and on the
    result. Each step shifts the image by a random jitter, follows the gradient normalized
    per image (so every target moves at the same pace), decays it towards the mean colour,
    blurs it now and then, and keeps it a valid picture.
    """
    check_targets(backbone, targets)
    model = before_relu(backbone)
    rng = tf.random.Generator.from_seed(settings.seed)
    shape = (len(targets), settings.size, settings.size, 3)
    low = data.standardize(tf.zeros(3))
    high = data.standardize(tf.fill([3], 255.0))
    image = tf.Variable(rng.normal(shape, stddev=0.1))
    kernel = _blur_kernel(settings.blur_sigma)

    @tf.function
    def step(number):
        shift = rng.uniform([2], -settings.jitter, settings.jitter + 1, dtype=tf.int32)
        with tf.GradientTape() as tape:
            moved = tf.roll(image, shift, axis=[1, 2])
            objective = tf.reduce_sum(_objective(model(moved, training=False), targets))
        grad = tape.gradient(objective, image)
        scale = tf.reduce_mean(tf.abs(grad), axis=[1, 2, 3], keepdims=True) + 1e-8
        updated = (image + settings.step_size * grad / scale) * (1.0 - settings.l2)
        if number % settings.blur_every == settings.blur_every - 1:
            updated = tf.nn.depthwise_conv2d(updated, kernel, [1, 1, 1, 1], "SAME")
        image.assign(tf.clip_by_value(updated, low, high))

    start = unit_activations(model, image.numpy(), targets)
    for number in tqdm(range(settings.steps), unit="step", desc="activation maximization"):
        step(tf.constant(number))
    final = image.numpy()
    return _display(final), start, unit_activations(model, final, targets)


def default_targets(studies: Sequence[LayerUnits], per_layer: int = 3) -> list[tuple[str, int]]:
    """The most selective units of each studied layer, for maximization by default."""
    return [(s.layer, int(u)) for s in studies for u in s.units[:per_layer]]
