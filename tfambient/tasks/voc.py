"""The VOC tasks: fine-tune a backbone on PASCAL VOC 2007's 20 classes, or probe it with SVMs.

The protocol of the self-supervised literature (shared spec voc07.md), every number a field
of :class:`VocConfig`:

* ``head``: the convolutional layers and their BatchNorm statistics frozen; AlexNet's fc6 and
  fc7 trained from the backbone's weights, fc8 new (ResNet-18: only the new linear layer on
  the pooled features). ``all``: every layer trained.
* sigmoid cross-entropy per class with the ignored (difficult-only) targets masked out; SGD
  with momentum, weight decay, a learning rate halved every ``halve_every`` steps, global-norm
  clipping; random crops covering 10-50 % of the image, flipped; at test time the scores of
  ``test_crops`` such crops averaged.
* ``svm``: L2-normalized frozen features of ``layer`` (central crop), one LinearSVC per class,
  its cost picked by cross-validated AP on the training split.

Fine-tuning is a :class:`VocTask` that :func:`tfambient.trainer.fit` runs under any
tf.distribute strategy: it resumes from WORKDIR/ckpt, and logs to WORKDIR/tb and
WORKDIR/metrics.jsonl. Its inputs are :mod:`tfambient.data`'s, as the pretext task's: the VOC
images decoded by a PairDecoder, parsed by train_crop, test_crops or eval_crop. The result is
WORKDIR/metrics.json (both mAPs, per-class APs, settings, the pretext run's config),
WORKDIR/ap_table.{md,csv,json} and the fine-tuned model WORKDIR/model.keras.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfambient import architectures, data, models, trainer
from tfambient.configs import VocConfig, with_defaults
from tfambient.contracts.files import atomic_path, write_json, write_text
from tfambient.contracts.workdirs import RunWorkdir, TrainWorkdir, VocWorkdir
from tfambient.voc import CLASSES
from tfambient.voc.dataset import VocSplit, read_split, read_tfds
from tfambient.voc.metrics import APResult, class_aps

logger = logging.getLogger(__name__)

SHUFFLE_BUFFER = 1024
_RESCALE_IMAGES = 64


# ---------------------------------------------------------------------------- backbones


def backbone_file(spec: str) -> Path:
    """The .keras backbone named by a tfambient-train workdir, its export dir or the file."""
    path = Path(spec)
    workdir = TrainWorkdir(path)
    for candidate in (workdir.backbone, path / workdir.backbone.name, path):
        if candidate.is_file() and candidate.suffix == ".keras":
            return candidate
    if (path / "saved_model.pb").is_file():
        raise ValueError(
            f"{path} is a SavedModel, which serves features but cannot be fine-tuned; "
            f"give the backbone.keras beside it"
        )
    raise ValueError(
        f"no backbone at {path}: give 'random', a tfambient-train workdir, its export/ "
        f"directory or a .keras file"
    )


def pretext_config(backbone: Path) -> dict | None:
    """The config.json of the run that exported ``backbone`` (WORKDIR/export/backbone.keras)."""
    workdir = TrainWorkdir.of_backbone(backbone)
    return workdir.read_config() if workdir else None


def load_backbone(config: VocConfig) -> tuple[keras.Model, dict | None]:
    """The backbone at the fine-tuning input size, and the pretext config it came from."""
    keras.utils.set_random_seed(config.seed)
    shape = (config.image_size, config.image_size, 3)
    if config.backbone == "random":
        arch = architectures.get(config.arch or "alexnet")
        return arch.build(input_shape=shape, **arch.options_from(config)), None
    path = backbone_file(config.backbone)
    backbone = models.load_backbone(path, shape)
    if config.arch and config.arch != backbone.name:
        raise ValueError(f"--arch {config.arch} but {path} holds a {backbone.name}")
    return backbone, pretext_config(path)


def freeze(backbone: keras.Model, mode: str) -> None:
    """head: only the architecture's head layers (AlexNet's fc6, fc7; none of ResNet-18's)
    train; convs and BatchNorm (which then runs in inference mode, its statistics fixed)
    are frozen. all: everything trains."""
    head_layers = architectures.get(backbone.name).head_layers
    for layer in backbone.layers:
        layer.trainable = mode == "all" or layer.name in head_layers


def rescale(backbone: keras.Model, images: tf.Tensor) -> None:
    """Krähenbühl et al.'s data-dependent rescaling (its within-layer step), for pretrained
    layers whose scales differ wildly: layer by layer, in order, each unit of every conv and
    fc layer without BatchNorm is scaled so its pre-activation on ``images`` has unit std.
    The scaling is positive, so a first-layer unit keeps its responses up to a factor; deeper
    units see rescaled inputs, so the network changes, and fine-tuning starts from layers whose
    outputs all have the same scale (and so learn at similar rates under one learning rate).
    """
    layers = [
        layer
        for layer in backbone.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense) and layer.use_bias
    ]
    for layer in layers:
        outputs = keras.Model(backbone.inputs, layer.output)(images, training=False)
        axes = tuple(range(len(outputs.shape) - 1))
        std = tf.math.reduce_std(tf.cast(outputs, tf.float32), axis=axes).numpy()
        scale = 1.0 / np.where(std > 1e-8, std, 1.0)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * scale, bias * scale])
    logger.info("rescaled %d layers on %d images", len(layers), images.shape[0])


def voc_model(backbone: keras.Model, image_size: int) -> keras.Model:
    """uint8 images -> 20 logits: standardized by the input layer, then a new fc8 on fc7
    (AlexNet) or on the pooled features (ResNet)."""
    images = keras.Input((image_size, image_size, 3), dtype="uint8", name="images")
    standardized = models.ImageInput()(images)
    features = backbone(standardized)[architectures.get(backbone.name).default_feature]
    logits = models.bits_head(features, len(CLASSES), name="fc8")
    return keras.Model(images, logits, name=f"{backbone.name}_voc")


# ---------------------------------------------------------------------------- data


def read_source(config: VocConfig, split: str) -> VocSplit:
    """A split of the VOCdevkit, or of TFDS voc/2007; its problems are logged."""
    voc = read_split(config.voc_dir, split) if config.voc_dir else read_tfds(config.tfds_dir, split)
    if voc.problems:
        reasons = Counter(problem.reason for problem in voc.problems)
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        logger.warning("%s: %d images, problems: %s", split, len(voc), summary)
    return voc


def write_problems(path: Path, splits: list[VocSplit]) -> None:
    """Every problem of the splits read, one CSV line each (image id, reason, detail)."""
    text = io.StringIO()
    rows = csv.writer(text)
    rows.writerow(["image_id", "reason", "detail"])
    rows.writerows((p.image_id, p.reason, p.detail) for split in splits for p in split.problems)
    write_text(path, text.getvalue())


def _augment(config: VocConfig) -> data.Augment:
    return data.Augment(
        image_size=config.image_size,
        area_range=(config.crop_area_min, config.crop_area_max),
        aspect_range=(3 / 4, 4 / 3),
    )


def train_dataset(
    voc: VocSplit, config: VocConfig, input_context: tf.distribute.InputContext | None = None
) -> tf.data.Dataset:
    """Endless batches of (random crop, flipped, uint8; targets int8 (20,))."""
    return data.batches(
        data.PairDecoder(voc.dataset),
        data.train_crop(_augment(config)),
        config.batch_size,
        training=True,
        seed=config.seed,
        input_context=input_context,
        deterministic=config.deterministic,
        shuffle_buffer=SHUFFLE_BUFFER,
    )


def test_dataset(voc: VocSplit, config: VocConfig, batch: int) -> tf.data.Dataset:
    """Batches of (images, test_crops, S, S, 3): the same random crops (and flips) as in
    training, seeded per image so that a test is repeatable; one crop is the central one."""
    crops = data.batches(
        data.PairDecoder(voc.dataset),
        data.test_crops(_augment(config), config.test_crops),
        batch,
        training=False,
        seed=config.seed,
    )
    return crops.map(lambda images, _: images)


# ---------------------------------------------------------------------------- fine-tuning


def masked_sigmoid_loss(targets, logits):
    """Per image: the sum over classes of sigmoid cross-entropy, ignored (0) targets out."""
    labels = tf.cast(targets > 0, tf.float32)
    known = tf.cast(targets != 0, tf.float32)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_sum(losses * known, axis=-1)


def masked_accuracy(targets, logits):
    """Per image: the fraction of its known targets whose sign the logits get right."""
    known = tf.cast(targets != 0, tf.float32)
    right = tf.cast((logits > 0) == (targets > 0), tf.float32) * known
    return tf.reduce_sum(right, axis=-1) / tf.maximum(tf.reduce_sum(known, axis=-1), 1.0)


def test_scores(model: keras.Model, voc: VocSplit, config: VocConfig) -> np.ndarray:
    """(n, 20) sigmoid scores, averaged over each image's test crops."""

    @tf.function
    def score(crops):
        shape = tf.shape(crops)
        flat = tf.reshape(crops, tf.concat([[-1], shape[2:]], axis=0))
        probabilities = tf.sigmoid(model(flat, training=False))
        return tf.reduce_mean(tf.reshape(probabilities, [shape[0], shape[1], -1]), axis=1)

    batch = max(1, 64 // config.test_crops)
    batches = test_dataset(voc, config, batch)
    total = math.ceil(len(voc) / batch)
    scores = [score(crops).numpy() for crops in tqdm(batches, total=total, desc="test crops")]
    return np.concatenate(scores) if scores else np.zeros((0, len(CLASSES)), np.float32)


class VocTask(trainer.Task):
    """A VOC model (built under ``strategy``) learning the 20 classes of a split: masked
    sigmoid cross-entropy, SGD with momentum and a halving learning rate."""

    score_name = "accuracy"

    def __init__(
        self, model: keras.Model, voc: VocSplit, config: VocConfig, strategy: tf.distribute.Strategy
    ):
        self.model, self.voc, self.config = model, voc, config
        with strategy.scope():
            self.optimizer = keras.optimizers.SGD(
                learning_rate=keras.optimizers.schedules.ExponentialDecay(
                    config.learning_rate_used, config.halve_every_used, 0.5, staircase=True
                ),
                momentum=config.momentum,
                weight_decay=config.weight_decay,
            )
            self.optimizer.build(model.trainable_variables)

    def train_inputs(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        return train_dataset(self.voc, self.config, context)

    def loss(self, targets, logits):
        return masked_sigmoid_loss(targets, logits)

    def score(self, targets, logits):
        return masked_accuracy(targets, logits)


def finetune(
    model: keras.Model,
    voc: VocSplit,
    config: VocConfig,
    strategy: tf.distribute.Strategy,
    workdir: Path,
) -> None:
    """Train ``model`` (built under ``strategy``) to ``train_steps``, resuming from and saving
    to WORKDIR/ckpt, logging to metrics.jsonl and TensorBoard."""
    plan = trainer.Plan(
        train_steps=config.train_steps,
        global_batch_size=config.batch_size,
        steps_per_loop=config.steps_per_loop,
        checkpoint_every=config.checkpoint_every,
        # One checkpoint is all a resume needs (an AlexNet's with SGD's momentum: 0.5 GB).
        keep_checkpoints=1,
        clip_norm=config.clip_norm,
        jit=config.jit,
    )
    trainer.fit(VocTask(model, voc, config, strategy), strategy, workdir, plan)


# ---------------------------------------------------------------------------- linear probe


def features(backbone: keras.Model, layer: str, voc: VocSplit, config: VocConfig) -> np.ndarray:
    """(n, d) L2-normalized features of ``layer`` on each image's central crop, flattened."""
    if layer not in backbone.output:
        raise ValueError(
            f"{backbone.name} has no layer {layer!r}; it has {', '.join(sorted(backbone.output))}"
        )

    @tf.function
    def embed(images):
        outputs = backbone(data.standardize(images), training=False)
        flat = tf.reshape(outputs[layer], [tf.shape(images)[0], -1])
        return tf.math.l2_normalize(tf.cast(flat, tf.float32), axis=-1)

    batches = data.batches(
        data.PairDecoder(voc.dataset), data.eval_crop(config.image_size), 32, training=False
    )
    total = math.ceil(len(voc) / 32)
    out = [embed(b).numpy() for b, _ in tqdm(batches, total=total, desc=f"{layer} features")]
    return np.concatenate(out)


def svm_scores(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, config: VocConfig
) -> tuple[np.ndarray, list[float | None]]:
    """Per class, a LinearSVC (squared hinge, positives weighted 2:1) on the known targets,
    its cost chosen by ``svm_folds``-fold cross-validated AP: test decision values (n, 20)
    and the costs chosen (None where a class has too few positives to cross-validate)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import LinearSVC

    scores = np.full((len(test_x), len(CLASSES)), np.nan, np.float32)
    grid = {"C": config.costs()}
    chosen: list[float | None] = []
    for c in tqdm(range(len(CLASSES)), desc="SVMs"):
        known = train_y[:, c] != 0
        x, y = train_x[known], train_y[known, c]
        positives, negatives = int((y > 0).sum()), int((y < 0).sum())
        if min(positives, negatives) < config.svm_folds:
            chosen.append(None)
            continue
        svm = LinearSVC(class_weight={1: 2, -1: 1}, loss="squared_hinge", max_iter=10_000)
        folds = StratifiedKFold(config.svm_folds, shuffle=True, random_state=config.seed)
        search = GridSearchCV(svm, grid, scoring="average_precision", cv=folds)
        search.fit(x, y)
        scores[:, c] = search.decision_function(test_x)
        chosen.append(float(search.best_params_["C"]))
    return np.nan_to_num(scores, nan=0.0), chosen


# ---------------------------------------------------------------------------- the run


def probe(
    backbone: keras.Model, train_voc: VocSplit, test_voc: VocSplit, config: VocConfig
) -> tuple[np.ndarray, dict]:
    """The svm mode: test decision values (n, 20) of SVMs on the frozen features of
    ``layer``, and what metrics.json adds about them (the layer, the costs chosen)."""
    layer = config.layer or architectures.get(backbone.name).default_feature
    x_train = features(backbone, layer, train_voc, config)
    x_test = features(backbone, layer, test_voc, config)
    scores, costs = svm_scores(x_train, train_voc.targets, x_test, config)
    return scores, {"layer": layer, "svm_costs_chosen": dict(zip(CLASSES, costs, strict=True))}


def tuned_scores(
    backbone: keras.Model,
    train_voc: VocSplit,
    test_voc: VocSplit,
    config: VocConfig,
    strategy: tf.distribute.Strategy,
    finished: bool = False,
) -> np.ndarray | None:
    """The head and all modes: fine-tune a VOC model on the backbone (saved as
    WORKDIR/model.keras), and its test scores (n, 20). The workers of a ``finished`` run only
    restore its end (together: creating variables is collective); None."""
    workdir = Path(config.workdir)
    freeze(backbone, config.mode)
    with strategy.scope():
        model = voc_model(backbone, config.image_size)
    finetune(model, train_voc, config, strategy, workdir)
    if finished:
        return None
    scores = test_scores(model, test_voc, config)
    if trainer.is_chief(strategy):
        with atomic_path(VocWorkdir(workdir).model) as tmp:
            model.save(tmp)
    return scores


def run(config: VocConfig, strategy: tf.distribute.Strategy | None = None) -> dict:
    """Fine-tune (or probe) and evaluate; write WORKDIR's results; return metrics.json.

    A run that finished with the same settings is left as it is (its metrics are returned).
    """
    layout = VocWorkdir(config.workdir)
    strategy = strategy or trainer.make_strategy(config.strategy)
    done = finished_metrics(layout, config)
    if done is not None and trainer.alone(strategy):
        return done
    with strategy.scope():  # first: a wrong --backbone fails before any data is read
        backbone, pretext = load_backbone(config)
    train_voc = read_source(config, config.train_split)
    test_voc = read_source(config, config.test_split)
    workdir = Path(config.workdir)
    chief = trainer.is_chief(strategy)
    if chief:  # the others write only their checkpoints (trainer.own_dir)
        trainer.write_config(workdir, config)
        write_problems(layout.problems, [train_voc, test_voc])
    own = RunWorkdir(trainer.own_dir(strategy, workdir))
    if config.rescale and not tf.train.latest_checkpoint(own.checkpoints):
        sample = train_dataset(train_voc, config).unbatch().batch(_RESCALE_IMAGES)
        rescale(backbone, data.standardize(next(iter(sample))[0]))
    if config.mode == "svm":
        scores, extra = probe(backbone, train_voc, test_voc, config)
    else:
        finished = done is not None
        scores, extra = tuned_scores(backbone, train_voc, test_voc, config, strategy, finished), {}
    if done is not None:  # the workers of a finished run restored its end together
        return done
    result = class_aps(scores, test_voc.targets)
    metrics = describe_result(config, backbone.name, pretext, result, len(test_voc)) | extra
    if trainer.is_chief(strategy):
        result.write(workdir)
        write_json(layout.metrics, metrics)
    return metrics


def finished_metrics(layout: VocWorkdir, config: VocConfig) -> dict | None:
    """metrics.json of a run in ``layout`` that finished with ``config``'s settings; None if
    there is none (a worker other than the chief writes no metrics)."""
    if not layout.is_finished():
        return None
    metrics = layout.read_metrics()
    recorded = with_defaults(VocConfig, metrics.get("settings"))
    return metrics if trainer.finished(recorded, config.settings()) else None


def describe_result(
    config: VocConfig, arch: str, pretext: dict | None, result: APResult, images: int
) -> dict:
    """metrics.json: what was measured, on what, and how."""
    return {
        "mode": config.mode,
        "arch": arch,
        "backbone": config.backbone,
        "pretext": pretext,
        **result.to_dict(),
        "settings": config.settings(),
        "split": config.test_split,
        "images": images,
    }
