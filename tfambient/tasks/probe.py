"""The linear probe: how well each frozen layer of a backbone tells labelled images apart.

The protocol of the self-supervised literature (Zhang et al.'s split-brain and colorization
papers, Owens et al.'s Places results; docs/probe.md), every number a field of
:class:`ProbeConfig`:

* features: each image's central crop (87.5 % of the short side, resized to ``image_size``)
  goes through the frozen backbone once; each probed layer is flattened, a conv map first
  average-pooled to a grid so that it gives about 9,000 numbers (the architecture registry's
  ``probe_grids``: AlexNet conv1 12x12x64 = 9216 ... conv5 6x6x256 = 9216; fc6, fc7 as they
  are). They are cached as float16 shards (:mod:`tfambient.features`), so another classifier
  setting, or a rerun, recomputes nothing.
* classifier: a linear softmax layer on the features standardized with the training rows'
  mean and variance, trained from zero by SGD with momentum, a cosine-decayed learning rate
  and L2 weight decay on its weights, for ``epochs`` passes over the training rows.
* the learning rate and the weight decay: every pair of ``learning_rates`` x
  ``weight_decays`` is trained on train less a held-out part (``holdout_fraction`` of each
  class, seeded); the classifier of the pair of best held-out top-1, trained on all of train,
  is evaluated once on val: top-1, top-5 and per-class accuracy.

Every pair is two heads of one model trained in one run (:class:`Heads`, :class:`ProbeTask`),
one learning from train less the held-out rows, one from all of train: head k's loss is
scaled by its learning rate, which under SGD (with momentum) is the same as its own learning
rate, so one pass over the data trains them all. The classifiers are tasks of
:func:`tfambient.trainer.fit`, under any tf.distribute strategy, resumable
(WORKDIR/layers/<layer>/); their inputs are :mod:`tfambient.data`'s (the cached rows through
``data.batches``). Results: WORKDIR/probe.json, accuracy.{md,csv}, per_class.csv and
problems.csv (images skipped, empty classes).
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfambient import architectures, data, features, images, trainer
from tfambient.configs import FeaturesConfig, ProbeConfig
from tfambient.contracts.files import write_csv, write_json, write_text
from tfambient.contracts.workdirs import FeatureDir, ProbeWorkdir, RunWorkdir, read_json
from tfambient.tasks.voc import load_backbone

logger = logging.getLogger(__name__)

TOP_K = 5
# Changing one of these retrains the classifiers; the cached features stay.
CLASSIFIER_FIELDS = (
    "batch_size",
    "epochs",
    "learning_rates",
    "weight_decays",
    "momentum",
    "holdout_fraction",
    "seed",
)
_MOMENTS_BATCH = 1024


# ---------------------------------------------------------------------------- features


def backbone_settings(config: ProbeConfig | FeaturesConfig, backbone: keras.Model) -> dict:
    """What decides the features besides the images: the backbone's architecture and weights
    (their SHA-256: a retrained backbone is noticed, the same one exported again is not), the
    input size, the shard size."""
    weights = hashlib.sha256()
    for array in backbone.get_weights():
        weights.update(np.ascontiguousarray(array).tobytes())
    return {
        "arch": backbone.name,
        "weights_sha256": weights.hexdigest(),
        "image_size": config.image_size,
        "shard_size": config.shard_size,
    }


def worker_of(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(this worker's index, the number of workers) of a multi-worker strategy; (0, 1)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_id is None:
        return 0, 1
    workers = len(resolver.cluster_spec().as_dict().get("worker", []))
    return int(resolver.task_id), max(workers, 1)


def wait_for_workers(strategy: tf.distribute.Strategy) -> None:
    """Return when every worker has got here (an all-reduce): each worker's feature shards
    are written before any worker reads them."""
    if worker_of(strategy)[1] > 1:
        ones = strategy.run(lambda: tf.ones([]))
        strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None).numpy()


# ---------------------------------------------------------------------------- classifiers


def holdout_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Which rows are held out: ``fraction`` of each class's rows (rounded up, and never
    all of a class), drawn with ``seed``."""
    held = np.zeros(len(labels), bool)
    rng = np.random.default_rng([seed, 1])
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(math.ceil(fraction * len(members)), len(members) - 1)
        held[rng.permutation(members)[:count]] = True
    return held


def linear_classifier(
    dims: int, classes: int, heads: int, mean: np.ndarray, variance: np.ndarray
) -> keras.Model:
    """features -> (batch, heads, classes) logits: standardized, then ``heads`` linear
    softmax classifiers side by side, every weight starting at zero."""
    inputs = keras.Input((dims,), name="features")
    x = keras.layers.Normalization(mean=mean, variance=variance, name="standardize")(inputs)
    x = keras.layers.Dense(heads * classes, kernel_initializer="zeros", name="linear")(x)
    logits = keras.layers.Reshape((heads, classes), name="heads")(x)
    return keras.Model(inputs, logits, name="linear_probe")


def moments(decoder: data.ArrayDecoder) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance of each feature over the decoder's rows (one streaming pass)."""
    rows = data.batches(decoder, data.feature_rows(), _MOMENTS_BATCH, training=False)
    normalization = keras.layers.Normalization()
    normalization.adapt(rows.map(lambda x, _: x))
    return np.asarray(normalization.mean)[0], np.asarray(normalization.variance)[0]


@dataclass(frozen=True)
class Heads:
    """The classifiers trained side by side on one layer: a head per (learning rate, weight
    decay) of the grid learning from train less the held-out rows (to choose the setting),
    unless there is nothing to choose, then a head per pair learning from all of train (of
    which the chosen one is scored on val). The choosing heads' losses are averaged over
    whole batches, held-out rows counting 0, so they learn at about (1 - holdout_fraction)
    of their rates: all alike, which keeps the choice fair."""

    grid: tuple[tuple[float, float], ...]
    choosing: bool

    @property
    def count(self) -> int:
        return len(self.grid) * (2 if self.choosing else 1)

    @property
    def final(self) -> int:
        """The first head that learns from all of train."""
        return self.count - len(self.grid)

    def rates(self) -> np.ndarray:
        return np.array([rate for rate, _ in self.grid] * (self.count // len(self.grid)))

    def decays(self) -> np.ndarray:
        return np.array([decay for _, decay in self.grid] * (self.count // len(self.grid)))

    def taught(self, held: tf.Tensor) -> tf.Tensor:
        """(batch, heads): 1 where a row teaches a head; held-out rows teach no choosing head."""
        rows = tf.shape(held)[0]
        final = tf.ones([rows, len(self.grid)])
        if not self.choosing:
            return final
        kept = tf.repeat(1.0 - tf.cast(held[:, None], tf.float32), len(self.grid), axis=1)
        return tf.concat([kept, final], axis=1)


class ProbeTask(trainer.Task):
    """Linear classifiers of one layer's cached features (:class:`Heads`): head k's
    cross-entropy (on the rows that teach it) plus wd_k / 2 times its squared weights, scaled
    by lr_k, under one SGD with momentum whose own rate is a cosine decay from 1. Targets
    are (class, held out) pairs."""

    score_name = "top1"

    def __init__(
        self,
        decoder: data.ArrayDecoder,
        classes: int,
        heads: Heads,
        config: ProbeConfig,
        strategy: tf.distribute.Strategy,
        steps: int,
    ):
        self.decoder, self.config, self.heads, self.classes = decoder, config, heads, classes
        self.rates = tf.constant(heads.rates(), tf.float32)
        self.decays = tf.constant(heads.decays(), tf.float32)
        mean, variance = moments(decoder)
        with strategy.scope():
            self.model = linear_classifier(
                decoder.shards[0].dims, classes, heads.count, mean, variance
            )
            self.optimizer = keras.optimizers.SGD(
                learning_rate=keras.optimizers.schedules.CosineDecay(1.0, steps),
                momentum=config.momentum,
            )
            self.optimizer.build(self.model.trainable_variables)

    def train_inputs(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        return data.batches(
            self.decoder,
            data.feature_rows(),
            self.config.batch_size,
            training=True,
            seed=self.config.seed,
            input_context=context,
        )

    def loss(self, targets, logits):
        """Per example: each head's cross-entropy (where the row teaches it) plus its weight
        penalty, scaled by its learning rate, summed over the heads."""
        labels = tf.repeat(targets[:, :1], self.heads.count, axis=1)
        entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        kernel = tf.reshape(
            self.model.get_layer("linear").kernel, [-1, self.heads.count, self.classes]
        )
        penalty = 0.5 * self.decays * tf.reduce_sum(tf.square(kernel), axis=[0, 2])
        taught = self.heads.taught(targets[:, 1])
        return tf.reduce_sum(self.rates * (taught * entropy + penalty), axis=1)

    def score(self, targets, logits):
        """Top-1 accuracy of the heads that learn from all of train, averaged over them."""
        guesses = tf.argmax(logits[:, self.heads.final :], axis=-1, output_type=tf.int32)
        return tf.reduce_mean(tf.cast(tf.equal(guesses, targets[:, :1]), tf.float32), axis=1)


def train_classifiers(
    train: features.Features,
    layer: str,
    held: np.ndarray,
    heads: Heads,
    classes: int,
    config: ProbeConfig,
    strategy: tf.distribute.Strategy,
    run: RunWorkdir,
) -> keras.Model:
    """The heads trained on ``layer``'s training rows (``held`` marks the held-out ones),
    resuming in ``run``."""
    steps = max(1, math.ceil(config.epochs * len(held) / config.batch_size))
    targets = np.stack([train.labels, held], axis=1).astype(np.int32)
    decoder = data.ArrayDecoder(tuple(train.shards[layer]), targets, np.ones(len(held), bool))
    task = ProbeTask(decoder, classes, heads, config, strategy, steps)
    plan = trainer.Plan(
        train_steps=steps,
        global_batch_size=config.batch_size,
        steps_per_loop=min(config.steps_per_loop, steps),
        checkpoint_every=config.checkpoint_every,
    )
    run.root.mkdir(parents=True, exist_ok=True)
    trainer.fit(task, strategy, run.root, plan)
    return task.model


def top_predictions(
    model: keras.Model, decoder: data.ArrayDecoder, batch_size: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The labels of the decoder's rows, and each head's k best classes for each row:
    (rows,) and (rows, heads, k)."""
    rows = data.batches(decoder, data.feature_rows(), batch_size, training=False)

    @tf.function(reduce_retracing=True)
    def best(x):
        return tf.math.top_k(model(x, training=False), k).indices

    labels, top = [], []
    for x, y in rows:
        top.append(best(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(labels), np.concatenate(top)


def accuracies(labels: np.ndarray, top: np.ndarray, classes: list[str]) -> dict:
    """top-1, top-k, each class's top-1 (None without images) and their mean, from one
    head's k best classes (rows, k)."""
    right = top[:, 0] == labels
    per_class = {
        name: float(right[labels == c].mean()) if (labels == c).any() else None
        for c, name in enumerate(classes)
    }
    scored = [value for value in per_class.values() if value is not None]
    return {
        "top1": float(right.mean()),
        f"top{top.shape[1]}": float((top == labels[:, None]).any(axis=1).mean()),
        "mean_per_class": float(np.mean(scored)),
        "per_class": per_class,
        "images_per_class": {name: int((labels == c).sum()) for c, name in enumerate(classes)},
    }


def choose(
    model: keras.Model,
    heldout: data.ArrayDecoder,
    heads: Heads,
    batch_size: int,
) -> tuple[int, list[dict]]:
    """The grid index of the choosing head of best top-1 on the held-out rows (ties: the
    first), and every setting's held-out top-1."""
    if not heads.choosing:
        return 0, []
    labels, top = top_predictions(model, heldout, batch_size, 1)
    scores = (top[:, : len(heads.grid), 0] == labels[:, None]).mean(axis=0)
    table = [
        {"learning_rate": rate, "weight_decay": decay, "heldout_top1": float(score)}
        for (rate, decay), score in zip(heads.grid, scores, strict=True)
    ]
    return int(np.argmax(scores)), table


def probe_layer(
    layer: str,
    train: features.Features,
    val: features.Features,
    classes: list[str],
    config: ProbeConfig,
    strategy: tf.distribute.Strategy,
    workdir: ProbeWorkdir,
) -> dict:
    """One layer's result (read back if done before): every setting trained, the one of best
    held-out top-1 chosen, and its classifier trained on all of train scored on val."""
    done = workdir.layer_result(layer)
    if done.is_file():
        return read_json(done)
    grid = tuple(config.grid())
    heads = Heads(grid, choosing=len(grid) > 1)
    held = holdout_mask(train.labels, config.holdout_fraction if heads.choosing else 0, config.seed)
    run = workdir.classifier_run(layer)
    model = train_classifiers(train, layer, held, heads, len(classes), config, strategy, run)
    best, table = choose(model, train.decoder(layer, held), heads, config.batch_size)
    k = min(TOP_K, len(classes))
    labels, top = top_predictions(model, val.decoder(layer), config.batch_size, k)
    rate, decay = grid[best]
    result = {
        "layer": layer,
        "dims": train.dims(layer),
        "learning_rate": rate,
        "weight_decay": decay,
        "heldout_images": int(held.sum()),
        "selection": table,
        **accuracies(labels, top[:, heads.final + best], classes),
    }
    if trainer.is_chief(strategy):
        write_json(done, result)
    return result


# ---------------------------------------------------------------------------- the run


def forget_other_classifiers(workdir: ProbeWorkdir, config: ProbeConfig) -> None:
    """Classifiers trained with other classifier settings are removed (the cached features
    stay), so that a rerun with, say, other learning rates trains afresh."""
    if not workdir.config.is_file():
        return
    earlier = workdir.read_config()
    changed = [
        f"{name} {earlier.get(name)!r} (now {getattr(config, name)!r})"
        for name in CLASSIFIER_FIELDS
        if earlier.get(name) != getattr(config, name)
    ]
    if changed and workdir.layers.is_dir():
        logger.warning("retraining the classifiers on the cached features: %s", "; ".join(changed))
        shutil.rmtree(workdir.layers)


def read_lists(config: ProbeConfig) -> dict[str, images.ImageList]:
    """The training and validation images (the former subsampled as asked), by split."""
    train = images.read_labelled(config.train_dir)
    train = train.subsample(config.train_per_class, config.seed)
    if len(train.classes) < 2:
        raise ValueError(f"{config.train_dir}: images of at least two classes are needed")
    held = holdout_mask(np.asarray(train.labels), config.holdout_fraction, config.seed)
    if len(config.grid()) > 1 and not held.any():
        raise ValueError(
            f"{config.train_dir}: no class has two images to hold one out and choose among "
            f"the settings; give one --learning_rates and one --weight_decays"
        )
    val = images.read_labelled(config.val_dir, train.classes)
    if not len(val):
        raise ValueError(f"{config.val_dir}: no images of the training classes")
    return dict(zip(ProbeWorkdir.SPLITS, (train, val), strict=True))


def feature_settings(config: ProbeConfig, backbone: keras.Model) -> dict[str, dict]:
    """By split, what decides its cached features: the backbone, the input, the images."""
    settings = backbone_settings(config, backbone)
    by_split = {}
    for split in ProbeWorkdir.SPLITS:
        source = {"images": str(Path(getattr(config, f"{split}_dir")).resolve())}
        if split == "train" and config.train_per_class:
            source |= {"train_per_class": config.train_per_class, "seed": config.seed}
        by_split[split] = settings | source
    return by_split


def run(config: ProbeConfig, strategy: tf.distribute.Strategy | None = None) -> dict:
    """Probe every layer; write WORKDIR's results; return probe.json."""
    strategy = strategy or trainer.make_strategy(config.strategy)
    backbone, pretext = load_backbone(config)  # first: a wrong --backbone fails at once
    layers = config.layer_names(backbone.name)
    features.check_layers(backbone, layers)
    lists = read_lists(config)
    workdir = ProbeWorkdir(config.workdir)
    for split, settings in feature_settings(config, backbone).items():
        features.begin(workdir.features(split), settings)  # refuses another backbone's cache
    for split, listed in lists.items():
        if listed.problems:
            logger.warning("%s: %d files or classes skipped", split, len(listed.problems))
    chief = trainer.is_chief(strategy)
    if chief:
        forget_other_classifiers(workdir, config)
    trainer.write_config(workdir.root, config)
    worker, workers = worker_of(strategy)
    extraction = features.Extraction(
        config.image_size, config.feature_batch_size, config.shard_size, worker, workers
    )
    grids = dict(architectures.get(backbone.name).probe_grids)
    for split, listed in lists.items():
        out = workdir.features(split)
        features.extract(backbone, listed, layers, out, extraction, grids, f"{split} features")
    wait_for_workers(strategy)
    cached = {
        split: features.gather(listed, layers, workdir.features(split), extraction)
        for split, listed in lists.items()
    }
    describe = {"backbone": config.backbone, "arch": backbone.name, "pretext": pretext}
    if chief:
        for split, listed in lists.items():
            features.finish(cached[split], listed, workdir.features(split), describe)
        write_problems(workdir, lists, cached)
    classes = list(lists["train"].classes)
    results = [
        probe_layer(layer, cached["train"], cached["val"], classes, config, strategy, workdir)
        for layer in tqdm(layers, desc="classifiers", unit="layer")
    ]
    summary = describe | {
        "classes": classes,
        "chance_top1": 1 / len(classes),
        "images": {split: len(found.paths) for split, found in cached.items()},
        "skipped": {
            split: len(lists[split].problems) + len(found.skipped)
            for split, found in cached.items()
        },
        "layers": {result["layer"]: result for result in results},
        "settings": asdict(config),
    }
    if chief:
        write_results(workdir, summary)
    return summary


def write_problems(
    workdir: ProbeWorkdir, lists: dict[str, images.ImageList], cached: dict[str, features.Features]
) -> None:
    """problems.csv: split, path, reason, detail of every file, row and class skipped."""
    rows = [
        {"split": split} | vars(problem)
        for split, listed in lists.items()
        for problem in [*listed.problems, *cached[split].skipped]
    ]
    write_csv(workdir.problems, ("split", *features.PROBLEM_COLUMNS), rows)


def accuracy_rows(summary: dict) -> list[dict]:
    """One row per layer: its dimensions, top-1, top-5, mean per-class accuracy (%), and
    the setting chosen."""
    rows = []
    for layer, result in summary["layers"].items():
        top_k = next(key for key in result if key.startswith("top") and key != "top1")
        rows.append(
            {
                "layer": layer,
                "dims": result["dims"],
                "top1": round(100 * result["top1"], 2),
                top_k: round(100 * result[top_k], 2),
                "mean_per_class": round(100 * result["mean_per_class"], 2),
                "learning_rate": result["learning_rate"],
                "weight_decay": result["weight_decay"],
            }
        )
    return rows


def accuracy_markdown(summary: dict) -> str:
    """The per-layer table, as tfambient-probe prints it."""
    rows = accuracy_rows(summary)
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    images = summary["images"]
    chance = 100 * summary["chance_top1"]
    return (
        f"Linear probe of {summary['backbone']} ({summary['arch']}): {len(summary['classes'])} "
        f"classes, {images['train']} train and {images['val']} val images; accuracy on val "
        f"(%), chance {chance:.1f}\n\n" + "\n".join(lines) + "\n"
    )


def write_results(workdir: ProbeWorkdir, summary: dict) -> None:
    """probe.json, accuracy.{csv,md} and per_class.csv."""
    rows = accuracy_rows(summary)
    write_csv(workdir.table_csv, list(rows[0]), rows)
    write_text(workdir.table_markdown, accuracy_markdown(summary))
    write_csv(
        workdir.per_class,
        ("layer", "class", "images", "accuracy"),
        (
            {
                "layer": layer,
                "class": name,
                "images": result["images_per_class"][name],
                "accuracy": "" if accuracy is None else round(100 * accuracy, 2),
            }
            for layer, result in summary["layers"].items()
            for name, accuracy in result["per_class"].items()
        ),
    )
    write_json(workdir.results, summary)


# ---------------------------------------------------------------------------- feature export


def export_features(config: FeaturesConfig, strategy: tf.distribute.Strategy | None = None) -> dict:
    """tfambient-features: the features of any images as .npy shards with index.csv;
    returns features.json. Several workers share the shards of one OUTPUT, as the probe's."""
    strategy = strategy or trainer.make_strategy(config.strategy)
    backbone, pretext = load_backbone(config)
    arch = architectures.get(backbone.name)
    layers = [n.strip() for n in config.layer.split(",") if n.strip()] or [arch.default_feature]
    features.check_layers(backbone, layers)
    listed = images.read_unlabelled(config.images)
    if not len(listed):
        raise ValueError(f"{config.images}: no images found")
    out = FeatureDir(config.output)
    grids = dict(arch.probe_grids) if config.pool == "probe" else None
    settings = backbone_settings(config, backbone) | {
        "images": str(Path(config.images).resolve()),
        "pool": config.pool,
    }
    extraction = features.Extraction(
        config.image_size, config.batch_size, config.shard_size, *worker_of(strategy)
    )
    features.begin(out, settings)
    features.extract(backbone, listed, layers, out, extraction, grids)
    wait_for_workers(strategy)
    found = features.gather(listed, layers, out, extraction)
    describe = {"backbone": config.backbone, "arch": backbone.name, "pretext": pretext}
    if trainer.is_chief(strategy):
        features.finish(found, listed, out, describe)
    wait_for_workers(strategy)  # features.json written
    return out.read_description()
