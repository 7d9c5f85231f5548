"""Features of any images, computed once and kept: tfambient-features' output, the probe's cache.

:func:`feature_model` turns a backbone into images -> {layer: (batch, dims)}: each layer
flattened, conv maps first average-pooled to a grid when the probe asks (Zhang et al.'s
protocol: torchvision's adaptive average pooling to at most g x g cells, so that a map of C
channels gives about C * g * g = 9,000 numbers; see tfambient.architectures).

:func:`extract` writes them into a :class:`~tfambient.contracts.workdirs.FeatureDir`: the
images, in list order, are cut into shards of ``shard_size``; each shard is read once through
the input path (:mod:`tfambient.data`: the file's bytes, the central crop of any format) and
gives one float16 ``<layer>-KKKKK-of-NNNNN.npy`` per layer, then its listing
``parts/part-KKKKK-of-NNNNN.json`` (the images written, those skipped and why). Every file is
written atomically, so a killed run resumes at the first shard not done, and a layer asked for
later is computed without recomputing the others. An image that does not decode costs only
itself: the pipeline drops it, and reading it alone gives the reason. :func:`finish` then
writes index.csv (path, row), problems.csv and features.json.

Several workers (MultiWorkerMirroredStrategy) share the shards (worker i takes every shard
k with k % workers == i) on a filesystem they all see; each computes on its own first device.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfambient import data
from tfambient.contracts.files import atomic_path, write_csv, write_json
from tfambient.contracts.workdirs import FeatureDir, read_json
from tfambient.images import ImageList, Problem
from tfambient.models import AdaptiveAveragePooling2D

logger = logging.getLogger(__name__)

DTYPE = np.float16
PROBLEM_COLUMNS = ("path", "reason", "detail")
# TensorFlow's wrapping of an op's error: "{{function_node ...}} ... [Op:DecodeImage] name:"
_OP_NOISE = re.compile(r"\{\{[^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$", re.DOTALL)


def check_layers(backbone: keras.Model, layers: Sequence[str]) -> None:
    """ValueError naming the backbone's features when one of ``layers`` is not among them."""
    unknown = [layer for layer in layers if layer not in backbone.output]
    if unknown:
        raise ValueError(
            f"{backbone.name} has no layer {unknown[0]!r}; it has "
            f"{', '.join(sorted(backbone.output))}"
        )
    if not layers:
        raise ValueError("no layer asked for")


def pooled_grid(shape: Sequence[int | None], grid: int) -> tuple[int, int] | None:
    """The cells a (batch, h, w, c) map is pooled to: at most grid x grid (a smaller map is
    kept as it is); None for a vector or no pooling (grid 0)."""
    if not grid or len(shape) != 4:
        return None
    if shape[1] is None or shape[2] is None:
        raise ValueError("pooling to a grid needs a backbone built at a fixed image size")
    return min(grid, shape[1]), min(grid, shape[2])


def feature_model(
    backbone: keras.Model, layers: Sequence[str], grids: Mapping[str, int] | None = None
) -> keras.Model:
    """images -> {layer: (batch, dims)}: ``layers`` of the backbone flattened, each map
    average-pooled first to ``grids[layer]`` cells a side (absent or 0: as it is)."""
    check_layers(backbone, layers)
    outputs = {}
    for layer in layers:
        x = backbone.output[layer]
        cells = pooled_grid(x.shape, (grids or {}).get(layer, 0))
        if cells is not None and cells != tuple(x.shape[1:3]):
            x = AdaptiveAveragePooling2D(cells, name=f"{layer}_pool")(x)
        outputs[layer] = keras.layers.Flatten(name=f"{layer}_flat")(x)
    return keras.Model(backbone.inputs, outputs, name=f"{backbone.name}_features")


@dataclass(frozen=True)
class Extraction:
    """How features are computed: the input size, the batch, the images per shard, and
    which worker of how many this is."""

    image_size: int
    batch_size: int = 64
    shard_size: int = 2048
    worker: int = 0
    workers: int = 1

    def shards(self, images: int) -> int:
        return max(1, math.ceil(images / self.shard_size))

    def rows(self, shard: int, images: int) -> range:
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, images))

    def mine(self, shards: int) -> list[int]:
        return [k for k in range(shards) if k % self.workers == self.worker]


def _batches(paths: Sequence[str], settings: Extraction) -> tf.data.Dataset:
    """(central crops, index in ``paths``) of the images that decode, in order."""
    return data.batches(
        data.PairDecoder(data.image_files(paths, np.arange(len(paths), dtype=np.int64))),
        data.any_eval_crop(settings.image_size),
        settings.batch_size,
        training=False,
        skip_errors=True,
    )


def why_unreadable(path: str, image_size: int) -> str:
    """What TensorFlow says when it reads and crops the image at ``path`` alone."""
    try:
        data.any_eval_image(tf.io.read_file(path), image_size)
    except (tf.errors.OpError, ValueError) as error:
        message = _OP_NOISE.sub("", getattr(error, "message", str(error))).strip()
        return message.splitlines()[0] if message else type(error).__name__
    return "dropped by the input pipeline, but it decodes alone"


def compute(
    model: keras.Model, paths: Sequence[str], settings: Extraction, bar: tqdm | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each layer's float16 features of the images that decode, and their indices in
    ``paths``."""
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in model.output}
    kept = []
    for images, index in _batches(paths, settings):
        for name, values in model.predict_on_batch(images).items():
            outputs[name].append(to_half(values, name))
        kept.append(index.numpy())
        if bar is not None:
            bar.update(len(kept[-1]))
    features = {
        name: np.concatenate(parts) if parts else np.zeros((0, _dims(model, name)), DTYPE)
        for name, parts in outputs.items()
    }
    return features, np.concatenate(kept) if kept else np.zeros(0, np.int64)


def to_half(values: np.ndarray, layer: str) -> np.ndarray:
    """float16 values; any beyond its range (65504) are clipped to it, with a warning,
    rather than stored as infinities that would make the probe's loss NaN."""
    limit = np.finfo(DTYPE).max
    beyond = np.abs(values) > limit
    if beyond.any():
        logger.warning("%s: %d values beyond float16's range, clipped", layer, beyond.sum())
        values = np.clip(values, -limit, limit)
    return values.astype(DTYPE)


def _dims(model: keras.Model, name: str) -> int:
    return int(np.prod(model.output[name].shape[1:]))


def _write_array(path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _read_part(out: FeatureDir, shard: int, shards: int) -> dict | None:
    path = out.part(shard, shards)
    return read_json(path) if path.is_file() else None


def extract_shard(
    model: keras.Model,
    images: ImageList,
    shard: int,
    out: FeatureDir,
    settings: Extraction,
    bar: tqdm | None = None,
) -> None:
    """Compute and write one shard's features of the layers not written yet, then its
    listing (the images written, those skipped and why)."""
    shards = settings.shards(len(images))
    rows = settings.rows(shard, len(images))
    paths = [images.paths[i] for i in rows]
    features, kept = compute(model, paths, settings, bar)
    if bar is not None:
        bar.update(len(paths) - len(kept))  # the images that did not decode
    listing = {
        "rows": [rows.start + int(i) for i in kept],
        "skipped": [
            vars(Problem(paths[i], "unreadable", why_unreadable(paths[i], settings.image_size)))
            for i in sorted(set(range(len(paths))) - set(kept.tolist()))
        ],
    }
    earlier = _read_part(out, shard, shards)
    if earlier is not None and earlier["rows"] != listing["rows"]:
        raise ValueError(
            f"{out.part(shard, shards)}: other images decode now than when it was written "
            f"(have the images changed?); use a new output directory"
        )
    for name, values in features.items():
        _write_array(out.shard(name, shard, shards), values)
    if earlier is None:
        write_json(out.part(shard, shards), listing)


def _done(out: FeatureDir, layers: Sequence[str], shard: int, shards: int) -> bool:
    return out.part(shard, shards).is_file() and all(
        out.shard(layer, shard, shards).is_file() for layer in layers
    )


def extract(
    backbone: keras.Model,
    images: ImageList,
    layers: Sequence[str],
    out: FeatureDir,
    settings: Extraction,
    grids: Mapping[str, int] | None = None,
    desc: str = "features",
) -> None:
    """Write this worker's shards of ``layers``' features of ``images`` into ``out``,
    computing only the layers a shard lacks (a rerun computes nothing already written)."""
    shards = settings.shards(len(images))
    todo = [k for k in settings.mine(shards) if not _done(out, layers, k, shards)]
    if not todo:
        logger.info("%s: every shard of %s is written already", out.root, ", ".join(layers))
        return
    out.parts.mkdir(parents=True, exist_ok=True)
    total = sum(len(settings.rows(k, len(images))) for k in todo)
    models: dict[tuple[str, ...], keras.Model] = {}
    with tqdm(total=total, desc=desc, unit="image") as bar:
        for shard in todo:
            missing = tuple(
                layer for layer in layers if not out.shard(layer, shard, shards).is_file()
            ) or tuple(layers)
            if missing not in models:
                models[missing] = feature_model(backbone, missing, grids)
            extract_shard(models[missing], images, shard, out, settings, bar)


@dataclass(frozen=True)
class Features:
    """What a finished FeatureDir holds: the images written (in row order), their labels,
    and each layer's shards."""

    paths: list[str]
    labels: np.ndarray
    skipped: list[Problem]
    shards: dict[str, list[data.ArrayShard]]

    def decoder(self, layer: str, keep: np.ndarray | None = None) -> data.ArrayDecoder:
        """The rows of ``layer`` (those ``keep`` says), labelled, for data.batches."""
        keep = np.ones(len(self.paths), bool) if keep is None else keep
        return data.ArrayDecoder(tuple(self.shards[layer]), self.labels, keep)

    def dims(self, layer: str) -> int:
        return self.shards[layer][0].dims

    def read(self, layer: str) -> np.ndarray:
        """Every row of ``layer``, in memory (float16)."""
        return np.concatenate([np.load(shard.path) for shard in self.shards[layer]])


def begin(out: FeatureDir, settings: Mapping[str, object]) -> None:
    """Record in features.json the settings the features are computed with; refuse to add
    to features computed with other ones."""
    settings = json.loads(json.dumps(settings))  # as features.json holds them
    if out.description.is_file():
        earlier = out.read_description().get("settings", {})
        changed = [
            f"{key} {earlier.get(key)!r} (now {value!r})"
            for key, value in settings.items()
            if earlier.get(key) != value
        ]
        if changed:
            raise ValueError(
                f"{out.root} holds features computed with other settings: "
                f"{', '.join(changed)}; use another directory"
            )
        return
    out.root.mkdir(parents=True, exist_ok=True)
    write_json(out.description, {"settings": settings, "layers": {}})


def gather(
    images: ImageList, layers: Sequence[str], out: FeatureDir, settings: Extraction
) -> Features:
    """The written shards of ``layers`` (and of any other layer written before) and their
    images, from the shards' listings."""
    shards = settings.shards(len(images))
    layers = [*layers, *(name for name in out.layers_written(shards) if name not in layers)]
    parts = [_read_part(out, k, shards) for k in range(shards)]
    missing = [k for k, part in enumerate(parts) if part is None]
    if missing:
        raise ValueError(f"{out.root}: shard {missing[0]} of {shards} is not written")
    rows = [row for part in parts for row in part["rows"]]
    return Features(
        paths=[images.paths[row] for row in rows],
        labels=np.asarray([images.labels[row] for row in rows], np.int32),
        skipped=[Problem(**problem) for part in parts for problem in part["skipped"]],
        shards={
            layer: [data.ArrayShard.of(out.shard(layer, k, shards)) for k in range(shards)]
            for layer in layers
        },
    )


def finish(
    features: Features, images: ImageList, out: FeatureDir, describe: Mapping[str, object]
) -> None:
    """index.csv (path, row; label too when the images are labelled), problems.csv (the
    list's problems and the images that did not decode) and features.json (the settings,
    ``describe``, and each layer's dimensions and shards). The chief alone writes them."""
    labelled = bool(images.classes)
    columns = ("path", "label", "row") if labelled else FeatureDir.INDEX_COLUMNS
    write_csv(
        out.index,
        columns,
        (
            {"path": path, "row": row} | ({"label": images.classes[label]} if labelled else {})
            for row, (path, label) in enumerate(zip(features.paths, features.labels, strict=True))
        ),
    )
    problems = [*images.problems, *features.skipped]
    write_csv(out.problems, PROBLEM_COLUMNS, (vars(problem) for problem in problems))
    layers = {
        layer: {
            "dims": shards[0].dims,
            "dtype": np.dtype(DTYPE).name,
            "shards": [{"file": Path(shard.path).name, "rows": shard.rows} for shard in shards],
        }
        for layer, shards in features.shards.items()
    }
    description = {
        "settings": out.read_description()["settings"],
        **describe,
        "images": len(features.paths),
        "skipped": len(problems),
        "layers": layers,
    }
    write_json(out.description, description)
