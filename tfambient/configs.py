"""The settings of the commands: one frozen dataclass per command (and per concern they
share: extract.ExtractSettings, cluster.LabelSettings use :func:`option` too).

Every described field is a flag of the same name (tfambient/cli/common.py:
define_dataclass_flags), and this module imports no TensorFlow, so that defining the flags,
--help and checking the values start nothing: a multi-worker strategy must be created before
TensorFlow starts its context. A command whose settings only its own module reads (describe,
export, inspect, synth) keeps its small dataclass there.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from tfambient import architectures
from tfambient.architectures import ARCHITECTURES
from tfambient.contracts.files import is_url
from tfambient.hosts import data_service_address, host_port


def option(default: Any, help: str, **limits: Any) -> Any:
    """A field with a default and the help its flag shows (and ``choices``, ``lower`` or
    ``upper`` for the flag to enforce, ``flag`` where the flag's name is not the field's,
    ``formerly`` its old name where it was renamed): the one place a setting is described."""
    return field(default=default, metadata={"help": help, **limits})


def renamed_fields(cls) -> dict[str, str]:
    """{old name: field name} of the fields of ``cls`` that were once called otherwise
    (``option(..., formerly=OLD)``): a flagfile or a recorded setting may still say OLD."""
    return {f.metadata["formerly"]: f.name for f in fields(cls) if "formerly" in f.metadata}


def with_defaults(cls, recorded: dict | None) -> dict:
    """Settings a run recorded, with the default of every field of ``cls`` added since: a
    new setting's default is what tfambient did before it, so the run used it."""
    defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    return defaults | (recorded or {})


def required(help: str, **limits: Any) -> Any:
    """A field the command cannot run without; its flag has no default."""
    return field(metadata={"help": help, **limits})


STRATEGIES = ("auto", "default", "mirrored", "multiworker")
# What the commands that measure a backbone (voc, probe, features) say of the one they load.
BACKBONE_HELP = "'random', a tfambient-train workdir, its export/ dir, or a backbone .keras file."
ARCH_HELP = "alexnet, alexnet_bn or resnet18; default: the saved backbone's (alexnet if random)."
FC_UNITS_HELP = "With --backbone=random: AlexNet's fc6 and fc7 width (match the pretext runs')."
WIDTH_HELP = "With --backbone=random: the convs' channels, times published (match the pretext's)."


def _check_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown --arch {arch}; known: {', '.join(ARCHITECTURES)}")


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run; recorded in the workdir so a rerun can resume it."""

    data_dir: str = required("A directory written by tfambient-prepare.")
    workdir: str = required(
        "Checkpoints, TensorBoard logs, metrics and the exported backbone go here."
    )
    arch: str = option("alexnet", "Backbone: alexnet, alexnet_bn or resnet18.")
    feature: str = option(
        "", "Backbone output the head reads; default fc7 (AlexNet) or pool (ResNet-18)."
    )
    label: str = option(
        "texture_k30",
        "Target field: texture_k30, mfcc_k30, texture_bits30, ... (see dataset.json).",
    )
    image_size: int = option(224, "Side of the square crops fed to the network.")
    batch_size: int = option(128, "Global batch size, over all replicas.")
    train_steps: int = option(10_000, "Optimizer steps in the whole run.")
    steps_per_loop: int = option(50, "Steps run inside one compiled loop between logs.")
    learning_rate: float = option(1e-3, "Peak learning rate of the one-cycle schedule.")
    warmup_fraction: float = option(
        0.05, "Fraction of the steps spent warming up from peak/25 to the peak."
    )
    anneal: str = option("cos", "Shape of the fall from the peak to peak/1e4: cos or linear.")
    weight_decay: float = option(0.05, "AdamW's decoupled weight decay.")
    clip_norm: float = option(1.0, "Clip gradients to this global norm; 0: no clipping.")
    label_smoothing: float = option(0.0, "Label smoothing of the cross-entropy.")
    dropout: float = option(0.5, "AlexNet's dropout rate before fc6 and fc7.")
    fc_units: int = option(
        4096, "AlexNet's fc6 and fc7 width (4096 as published; smaller for quick trials)."
    )
    width: float = option(
        1.0, "Every conv's channels, times the published count (1; 0.25 for the quickest trials)."
    )
    color_jitter: float = option(
        0.0, "Strength of the colour jitter augmentation in [0, 1]; 0: off."
    )
    mixed_precision: str = option(
        "", "'' (float32), mixed_bfloat16, or mixed_float16 (with loss scaling)."
    )
    jit: bool = option(False, "Compile each training step with XLA.")
    strategy: str = option(
        "auto", "auto, default (one device), mirrored (local GPUs) or multiworker (TF_CONFIG)."
    )
    eval_every: int = option(1000, "Evaluate on the validation split every this many steps.")
    checkpoint_every: int = option(1000, "Save a checkpoint every this many steps.")
    keep_checkpoints: int = option(3, "Checkpoints kept (besides the best by validation loss).")
    seed: int = option(0, "Random seed of initialisation, shuffling and augmentation.")
    deterministic: bool = option(
        True,
        "Read, parse and batch in a fixed order (tf.data's deterministic interleave, map and "
        "batch), so that a run, and a run resumed after a kill, gives the same figures; "
        "--nodeterministic takes whatever input is ready first.",
    )
    skip_corrupt: bool = option(
        False, "Skip and count corrupt records instead of stopping at the first."
    )
    data_service: str = option(
        "",
        "grpc://HOST:PORT of a tfambient-data-service dispatcher whose workers make the "
        "training input (unseeded); '': this host makes it.",
    )

    def __post_init__(self):
        if self.anneal not in ("cos", "linear"):
            raise ValueError(f"--anneal must be cos or linear, got {self.anneal}")
        if self.mixed_precision not in ("", "mixed_bfloat16", "mixed_float16"):
            raise ValueError(
                f"--mixed_precision must be mixed_bfloat16 or mixed_float16, "
                f"got {self.mixed_precision}"
            )
        for name in ("steps_per_loop", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        _check_arch(self.arch)
        _check_strategy(self.strategy)
        architectures.check_width(self.width)
        if self.data_service:
            data_service_address(self.data_service)


MODES = ("head", "all", "svm")
# The spec's defaults that differ between the modes: (learning rate, halving period).
PROTOCOL = {"head": (0.003, 5_000), "all": (0.001, 10_000)}


@dataclass(frozen=True)
class VocConfig:
    """Everything that decides a transfer run; recorded in WORKDIR/config.json."""

    workdir: str = required(
        "Results, checkpoints, TensorBoard logs and the fine-tuned model go here."
    )
    voc_dir: str = option(
        "", "VOCdevkit/ (or VOCdevkit/VOC2007/): JPEGImages, Annotations, ImageSets/Main."
    )
    tfds_dir: str = option(
        "", "Read TFDS voc/2007 from this data dir instead (needs tensorflow-datasets)."
    )
    backbone: str = option("random", BACKBONE_HELP)
    arch: str = option("", ARCH_HELP)
    fc_units: int = option(4096, FC_UNITS_HELP)
    width: float = option(1.0, WIDTH_HELP)
    mode: str = option(
        "head",
        "head (fc6-fc8 on frozen convs), all (every layer) or svm (linear probe of --layer).",
    )
    train_split: str = option("trainval", "Split trained on: train, val, trainval or test.")
    test_split: str = option("test", "Split evaluated on.")
    image_size: int = option(224, "Side of the square crops fed to the network.")
    batch_size: int = option(16, "Global batch size, over all replicas.")
    train_steps: int = option(80_000, "SGD steps of fine-tuning (the literature uses 80k-150k).")
    learning_rate: float = option(
        0.0, "Initial learning rate; 0: the protocol's (head 0.003, all 0.001)."
    )
    halve_every: int = option(
        0, "Halve the learning rate every this many steps; 0: head 5000, all 10000."
    )
    momentum: float = option(0.9, "SGD momentum.")
    weight_decay: float = option(1e-6, "SGD weight decay.")
    clip_norm: float = option(10.0, "Clip gradients to this global norm; 0: no clipping.")
    crop_area_min: float = option(0.1, "Smallest training crop, as a fraction of the image area.")
    crop_area_max: float = option(0.5, "Largest training crop, as a fraction of the image area.")
    test_crops: int = option(10, "Random crops averaged per test image; 1: the central crop alone.")
    rescale: bool = option(
        False, "Krähenbühl et al.'s data-dependent rescaling of the layers before training."
    )
    layer: str = option(
        "", "svm: the backbone feature probed; default fc7 (AlexNet) or pool (ResNet-18)."
    )
    svm_costs: str = option(
        "0.01,0.1,1,10,100",
        "svm: comma-separated costs C, one chosen per class by cross-validated AP.",
    )
    svm_folds: int = option(3, "svm: cross-validation folds for the choice of C.")
    strategy: str = option(
        "auto", "auto, default (one device), mirrored (local GPUs) or multiworker (TF_CONFIG)."
    )
    steps_per_loop: int = option(100, "Steps run inside one compiled loop between logs.")
    checkpoint_every: int = option(1000, "Save a checkpoint every this many steps.")
    jit: bool = option(False, "Compile each training step with XLA.")
    seed: int = option(0, "Random seed of initialisation, crops and cross-validation folds.")
    deterministic: bool = option(
        True,
        "Read, crop and batch the training images in a fixed order (tf.data's deterministic "
        "map and batch), so that a run, and a run resumed after a kill, gives the same "
        "figures; --nodeterministic takes whatever input is ready first.",
    )

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if bool(self.voc_dir) == bool(self.tfds_dir):
            raise ValueError("give exactly one of --voc_dir and --tfds_dir")
        if self.arch:
            _check_arch(self.arch)
        _check_strategy(self.strategy)
        architectures.check_width(self.width)
        if not 0 < self.crop_area_min <= self.crop_area_max <= 1:
            raise ValueError("need 0 < --crop_area_min <= --crop_area_max <= 1")
        for name in ("batch_size", "train_steps", "steps_per_loop", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        if self.test_crops < 1 or self.svm_folds < 2:
            raise ValueError("--test_crops must be >= 1 and --svm_folds >= 2")
        self.costs()  # parse now, so a typo fails before any work

    @property
    def learning_rate_used(self) -> float:
        return self.learning_rate or PROTOCOL[self.mode][0]

    @property
    def halve_every_used(self) -> int:
        return self.halve_every or PROTOCOL[self.mode][1]

    def settings(self) -> dict:
        """The fields, with the mode's protocol values in place of 0 ("the default")."""
        fields = asdict(self)
        if self.mode in PROTOCOL:
            fields |= {"learning_rate": self.learning_rate_used}
            fields |= {"halve_every": self.halve_every_used}
        return fields

    def costs(self) -> list[float]:
        try:
            costs = [float(c) for c in self.svm_costs.split(",")]
        except ValueError:
            raise ValueError(f"--svm_costs must be numbers, got {self.svm_costs!r}") from None
        if not costs or min(costs) <= 0:
            raise ValueError(f"--svm_costs must be positive, got {self.svm_costs!r}")
        return costs


@dataclass(frozen=True)
class PrepareConfig:
    """tfambient-prepare's inputs, outputs and work; what is taken from each clip is
    extract.ExtractSettings and how sounds become labels cluster.LabelSettings."""

    audioset: tuple[str, ...] | None = option(
        None, "AudioSet segment CSVs (comma-separated), in the official layout or a re-saved one."
    )
    media_dir: str | None = option(None, "Directory searched recursively for the clips.")
    output_dir: str | None = option(None, "Where the shards, dataset.json and clusters/ go.")
    ontology: str | None = option(
        None,
        "class_labels_indices.csv, for display names in reports. Default: the file of that name "
        "beside the first CSV, if there is one, else AudioSet's class list shipped with tfambient.",
    )
    num_workers: int = option(
        -1,
        "Worker processes; -1: one per CPU core; 0: no subprocesses. With --engine=beam and "
        "the DirectRunner: its worker processes, unless --beam_pipeline_options names them.",
        lower=-1,
    )
    clips_per_part: int = option(
        256,
        "Clips committed together; a kill loses at most the clips in flight, and a part is "
        "committed at least once a minute.",
        lower=1,
    )
    num_shards: int = option(
        0,
        "Train shards; 0: about 128 MiB each, at least 8. Validation gets "
        "ceil(num_shards * val_fraction), at least 1.",
        lower=0,
    )
    val_fraction: float = option(
        0.05,
        "Fraction of clips held out for validation, chosen by a hash of the "
        "clip id (all frames of a clip go the same way).",
        lower=0.0,
        upper=0.5,
    )
    task_index: int = option(0, "This machine's part of the CSV, in [0, num_tasks).")
    num_tasks: int = option(1, "Machines sharing the CSV; each writes its own parts.", lower=1)
    merge: bool = option(
        False,
        "Only cluster and shard what every task has extracted (the final step of a "
        "multi-machine run); needs just --output_dir.",
    )
    max_clips: int = option(
        0, "Use only the first N segments of the CSV (a quick trial); 0: all.", lower=0
    )
    retry_failed: bool = option(
        False,
        "Try again the clips earlier runs could not use (decode errors, crashes, failed "
        "downloads); by default a rerun skips them.",
    )
    download: bool = option(False, "Fetch missing clips with yt-dlp into --media_dir first.")
    url_template: str = option(
        "https://www.youtube.com/watch?v={ytid}",
        "Where --download fetches a clip from; {ytid}, {start} and {end} are filled in.",
    )
    download_mode: str = option(
        "sections",
        "What --download fetches of each video: 'sections' only the CSV's [start, end], cut by "
        "ffmpeg; 'whole' the whole video, from which the segment is then read.",
        choices=("sections", "whole"),
    )
    ffmpeg: str | None = option(
        None,
        "The ffmpeg --download uses (a path, or a command on PATH); by default the one the "
        "imageio-ffmpeg wheel ships, never whichever ffmpeg the PATH happens to hold.",
    )
    download_workers: int = option(4, "Concurrent downloads.", lower=1)
    download_retries: int = option(3, "Attempts per clip.", lower=1)
    progress: bool = option(True, "Show progress bars.")


@dataclass(frozen=True)
class ClusterConfig:
    """tfambient-cluster's inputs; how sounds become labels is cluster.LabelSettings."""

    data_dir: str = required("A directory written by tfambient-prepare.")
    descriptors: tuple[str, ...] | None = option(
        None, "Descriptors to cluster. Default: every one the dataset stores."
    )
    ontology: str | None = option(
        None,
        "class_labels_indices.csv, for AudioSet class names in the montages. Default: "
        "AudioSet's class list shipped with tfambient.",
    )
    progress: bool = option(True, "Show progress bars.")


def _numbers(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--{flag} must be comma-separated numbers, got {text!r}") from None
    if not values or min(values) < 0:
        raise ValueError(f"--{flag} must be numbers >= 0, got {text!r}")
    return values


def _check_positive(config: object, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) < 1:
            raise ValueError(f"--{name} must be >= 1")


@dataclass(frozen=True)
class ProbeConfig:
    """Everything that decides a probe; recorded in WORKDIR/config.json."""

    workdir: str = required("Cached features, classifier checkpoints and the results go here.")
    train_dir: str = required(
        "Training images: a folder of class subfolders, or a CSV of path,label."
    )
    val_dir: str = required(
        "Validation images, the same way; classes the training images lack are skipped."
    )
    backbone: str = option("random", BACKBONE_HELP)
    arch: str = option("", ARCH_HELP)
    fc_units: int = option(4096, FC_UNITS_HELP)
    width: float = option(1.0, WIDTH_HELP)
    layers: str = option(
        "",
        "Comma-separated layers to probe; default: conv1-conv5, fc6, fc7 (ResNet-18: "
        "stage1-stage4, pool).",
    )
    image_size: int = option(224, "Side of the central crop fed to the backbone.")
    train_per_class: int = option(
        0, "Use at most this many training images per class (seeded); 0: all."
    )
    batch_size: int = option(256, "Global batch size of the classifier's SGD, over all replicas.")
    epochs: int = option(30, "Passes of the classifier over the training features.")
    learning_rates: str = option(
        "0.001,0.01,0.1", "Comma-separated learning rates tried (each a cosine decay to 0)."
    )
    weight_decays: str = option(
        "1e-5,1e-4,1e-3", "Comma-separated L2 weight decays tried, each with every learning rate."
    )
    momentum: float = option(0.9, "SGD momentum.")
    holdout_fraction: float = option(
        0.1, "Part of each class's training images held out to choose the setting."
    )
    feature_batch_size: int = option(64, "Images per batch when computing features.")
    shard_size: int = option(
        2048, "Images per cached feature shard (a resumed run redoes at most one)."
    )
    strategy: str = option(
        "auto",
        "auto, default (one device), mirrored (local GPUs) or multiworker (TF_CONFIG; the "
        "workers share WORKDIR).",
    )
    steps_per_loop: int = option(100, "Classifier steps run inside one compiled loop between logs.")
    checkpoint_every: int = option(1000, "Save a classifier checkpoint every this many steps.")
    seed: int = option(0, "Random seed: held-out part, shuffling, subsampling, a random backbone.")

    def __post_init__(self):
        if not (self.train_dir and self.val_dir):
            raise ValueError("give --train_dir and --val_dir")
        if self.arch:
            _check_arch(self.arch)
        _check_strategy(self.strategy)
        architectures.check_width(self.width)
        _check_positive(
            self,
            ("image_size", "batch_size", "epochs", "feature_batch_size", "shard_size"),
        )
        _check_positive(self, ("steps_per_loop", "checkpoint_every"))
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError("--holdout_fraction must be in [0, 1)")
        if len(self.grid()) > 1 and self.holdout_fraction == 0:
            raise ValueError("choosing among several settings needs --holdout_fraction > 0")

    def grid(self) -> list[tuple[float, float]]:
        """Every (learning rate, weight decay) pair tried, in order."""
        rates = _numbers(self.learning_rates, "learning_rates")
        if min(rates) <= 0:
            raise ValueError(f"--learning_rates must be positive, got {self.learning_rates!r}")
        return list(itertools.product(rates, _numbers(self.weight_decays, "weight_decays")))

    def layer_names(self, arch: str) -> list[str]:
        """The layers asked for, or the architecture's probe layers."""
        if self.layers:
            return [name.strip() for name in self.layers.split(",") if name.strip()]
        return list(architectures.get(arch).probe_grids)


POOLING = ("none", "probe")


@dataclass(frozen=True)
class FeaturesConfig:
    """What tfambient-features computes, on what, and where it writes it."""

    images: str = required(
        "A folder of images (searched recursively) or a CSV whose first column is a path."
    )
    output: str = required("Where the .npy shards, index.csv, features.json and problems.csv go.")
    backbone: str = required(BACKBONE_HELP)
    arch: str = option("", ARCH_HELP)
    fc_units: int = option(4096, FC_UNITS_HELP)
    width: float = option(1.0, WIDTH_HELP)
    layer: str = option("", "Comma-separated layers; default: fc7 (AlexNet) or pool (ResNet-18).")
    image_size: int = option(224, "Side of the central crop fed to the backbone.")
    pool: str = option(
        "none",
        "none: each layer as the backbone gives it, flattened; probe: conv maps average-pooled "
        "to about 9,000 numbers as tfambient-probe does.",
    )
    batch_size: int = option(64, "Images per batch.")
    shard_size: int = option(2048, "Images per .npy shard.")
    strategy: str = option(
        "auto",
        "auto, default (one device), mirrored (local GPUs) or multiworker (TF_CONFIG: the "
        "workers share the shards of one OUTPUT).",
    )
    seed: int = option(0, "Random seed of a random backbone.")

    def __post_init__(self):
        if not self.backbone:
            raise ValueError("--backbone is required ('random' for a random initialisation)")
        if self.arch:
            _check_arch(self.arch)
        _check_strategy(self.strategy)
        architectures.check_width(self.width)
        if self.pool not in POOLING:
            raise ValueError(f"--pool must be none or probe, got {self.pool!r}")
        _check_positive(self, ("image_size", "batch_size", "shard_size"))


_UNIT_SPEC = re.compile(r"(?P<layer>\w+):(?P<units>\d+(?:,\d+)*)")


def parse_units(spec: str) -> tuple[str, tuple[int, ...]]:
    """ "conv5:3,17" -> ("conv5", (3, 17)); ValueError naming the expected form otherwise."""
    match = _UNIT_SPEC.fullmatch(spec.replace(" ", ""))
    if match is None:
        raise ValueError(f"--maximize {spec!r}: expected LAYER:UNIT[,UNIT...], e.g. conv5:3,17")
    return match["layer"], tuple(int(u) for u in match["units"].split(","))


@dataclass(frozen=True)
class ReportConfig:
    """The knobs of tfambient-report (the runs are its arguments)."""

    output: str = option("report", "Directory for index.html, report.md and figures/.")
    data_dir: str | None = option(
        None, "Prepared data directory; default: the one each run's config.json names."
    )
    units: int = option(6, "Most selective units shown per layer.", lower=1)
    top_k: int = option(8, "Top-activating frames shown per unit.", lower=1)
    max_images: int = option(
        2000, "Frames (val first, then train) run through each backbone.", lower=1
    )
    maximize: tuple[str, ...] = option(
        (),
        "Units to maximize, LAYER:UNIT[,UNIT...] (e.g. conv5:3,17); repeat for more layers. "
        "Default: the three most selective units of each studied layer.",
        multi=True,
    )
    maximize_steps: int = option(100, "Gradient-ascent steps of activation maximization.", lower=1)
    maximize_size: int = 128  # largest side of a maximized image (at most the run's crops)

    def __post_init__(self):
        self.units_to_maximize()  # a typo fails before any work

    def units_to_maximize(self) -> list[tuple[str, tuple[int, ...]]]:
        """--maximize parsed; [] = the most selective units."""
        return [parse_units(spec) for spec in self.maximize]


ROLES = ("dispatcher", "worker")


@dataclass(frozen=True)
class DataServiceConfig:
    """What one tfambient-data-service process serves (tfambient.data_service)."""

    role: str = required("What this process runs: the dispatcher or a worker.", choices=ROLES)
    port: int = option(
        0, "Port to listen on; 0: any free port (the one chosen is printed).", lower=0, upper=65535
    )
    dispatcher_address: str = option(
        "", "worker: the dispatcher's HOST:PORT (required for a worker)."
    )
    worker_address: str = option(
        "",
        "worker: the HOST:PORT trainers reach this worker at ('%port%' stands for --port); "
        "default: this host's name and port.",
    )

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"--role is required: {' or '.join(ROLES)}")
        if self.role == "dispatcher":
            if self.dispatcher_address or self.worker_address:
                raise ValueError("--dispatcher_address and --worker_address are for --role=worker")
            return
        if not self.dispatcher_address:
            raise ValueError("--dispatcher_address=HOST:PORT is required for a worker")
        self.dispatcher()
        if self.worker_address:
            host_port(self.worker_address.replace("%port%", "0"), "--worker_address")

    def dispatcher(self) -> tuple[str, int]:
        """(host, port) of --dispatcher_address."""
        return host_port(self.dispatcher_address, "--dispatcher_address")


ENGINES = ("local", "beam")


@dataclass(frozen=True)
class EngineConfig:
    """Which engine does the work of tfambient-prepare and tfambient-cluster."""

    engine: str = option(
        "local",
        "'local': worker processes on this machine (resumable, kill -9 safe). 'beam': Apache "
        "Beam pipelines on the runner --beam_pipeline_options names (needs "
        "pip install 'tfambient[beam]'); the CSV, media and output may then be on any "
        "filesystem Beam reads (gs://, s3://, hdfs://). Both give the same records, labels "
        "and failures.",
        choices=ENGINES,
    )
    beam_pipeline_options: str = option(
        "",
        "Apache Beam options, comma-separated key=value, e.g. runner=DirectRunner,"
        "direct_num_workers=2,direct_running_mode=multi_processing, or runner=DataflowRunner,"
        "project=P,region=R,temp_location=gs://B/tmp,setup_file=./setup.py. With no runner "
        "named: Beam's Python DirectRunner in worker processes (one per core, or "
        "--num_workers), never the Prism runner it would download. beam_plugins=MODULE "
        "imports a module that registers a FileSystem, on this machine and the workers.",
    )

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.beam_pipeline_options and self.engine != "beam":
            raise ValueError("--beam_pipeline_options needs --engine=beam")

    def check_reaches(self, paths: Iterable[str | None]) -> None:
        """Only Beam's FileSystems read a path on another filesystem (``scheme://...``)."""
        url = next(filter(is_url, paths), None)
        if url and self.engine != "beam":
            raise ValueError(f"{url}: a filesystem other than this machine's needs --engine=beam")
