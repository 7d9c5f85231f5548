"""Where each file of a prepared data directory and of a run's workdir lives.

Commands create these layouts and other commands (the report, export, VOC transfer, a
rerun) read them back, so the names are spelled once, here, with readers for the files the
readers need. ARCHITECTURE.md draws the same trees.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tfambient.contracts import files
from tfambient.contracts.manifest import Manifest
from tfambient.contracts.records import LabelName


class WorkdirError(ValueError):
    """A directory that is not the kind of workdir asked for, or holds damaged files."""


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WorkdirError(f"{path}: unreadable JSON ({error})") from None


def read_jsonl(path: Path) -> list[dict]:
    """One record per line; none when the file does not exist yet."""
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise WorkdirError(f"{path}: unreadable JSON line ({error})") from None


@dataclass(frozen=True)
class DataDir:
    """A tfambient-prepare output directory (see docs/prepare.md)."""

    root: Path
    SHARDS_DIR = "shards"
    # Shards a labelling run writes before they replace shards/; a rerun removes a killed one's.
    STAGED_SHARDS_PREFIX = f"{SHARDS_DIR}.staged-"

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def manifest(self) -> Path:
        return Manifest.path(self.root)

    @property
    def failures(self) -> Path:
        """failures.csv: every clip not used, and why."""
        return self.root / "failures.csv"

    @property
    def rejected_rows(self) -> Path:
        """rejected_rows.csv: every CSV row skipped and label dropped, with the line as read."""
        return self.root / "rejected_rows.csv"

    @property
    def dropped_frames(self) -> Path:
        """dropped_frames.csv: every frame left out of a used clip, and why."""
        return self.root / "dropped_frames.csv"

    @property
    def shards(self) -> Path:
        """The labelled shards; dataset.json lists them as ``shards/<name>``."""
        return self.root / self.SHARDS_DIR

    def staged_shards(self, run: str) -> Path:
        """Where the labelling run ``run`` writes its shards before swapping them in."""
        return self.root / f"{self.STAGED_SHARDS_PREFIX}{run}"

    @property
    def clusters(self) -> Path:
        """Fitted labelers (npz), montages (png) and clusters.json."""
        return self.root / "clusters"

    @property
    def clusters_report(self) -> Path:
        return self.clusters / "clusters.json"

    def cluster_model(self, label: LabelName) -> Path:
        return self.clusters / f"{label.name}.npz"

    def cluster_montage(self, label: LabelName) -> Path:
        return self.clusters / f"{label.name}.png"

    @property
    def parts(self) -> Path:
        """Extraction's committed parts, one folder per task."""
        return self.root / "parts"

    @property
    def extraction_settings(self) -> Path:
        return self.parts / "settings.json"

    @property
    def tasks(self) -> Path:
        """Each task's report, merged into dataset.json."""
        return self.root / "tasks"

    def relative(self, path: Path) -> str:
        """``path`` as dataset.json and clusters.json record it: relative to the root."""
        return path.relative_to(self.root).as_posix()

    def montages(self) -> list[tuple[LabelName, Path]]:
        """The k-means montages clusters.json lists, smallest K first per descriptor."""
        if not self.clusters_report.is_file():
            return []
        fields = read_json(self.clusters_report).get("fields", {})
        found = [
            (LabelName.parse(key), self.root / entry["montage"])
            for key, entry in fields.items()
            if entry.get("montage")
        ]
        return sorted(found, key=lambda item: (item[0].descriptor, item[0].size))


@dataclass(frozen=True)
class RunWorkdir:
    """What every run that trains writes: its settings, checkpoints and logs."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        """config.json: every setting of the run."""
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "ckpt"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def metrics_log(self) -> Path:
        """metrics.jsonl: one line per log or evaluation."""
        return self.root / "metrics.jsonl"

    def read_config(self) -> dict:
        return read_json(self.config)

    def read_metrics_log(self) -> list[dict]:
        return read_jsonl(self.metrics_log)

    def write_config(self, config: dict) -> None:
        files.write_json(self.config, config)


class TrainWorkdir(RunWorkdir):
    """A tfambient-train workdir (see docs/train.md)."""

    @property
    def flags(self) -> Path:
        return self.root / "flags.txt"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def saved_model(self) -> Path:
        """The backbone as a SavedModel: images -> named features."""
        return self.export / "backbone"

    @property
    def backbone(self) -> Path:
        """The backbone as a .keras file, to fine-tune or rebuild at another size."""
        return self.export / "backbone.keras"

    def read_result(self) -> dict:
        return read_json(self.result)

    @classmethod
    def of_backbone(cls, backbone: Path) -> TrainWorkdir | None:
        """The workdir that exported ``backbone`` (WORKDIR/export/backbone.keras), if any."""
        workdir = cls(backbone.parent.parent)
        return workdir if workdir.backbone == backbone and workdir.config.is_file() else None


class VocWorkdir(RunWorkdir):
    """A tfambient-voc workdir (see docs/voc.md)."""

    AP_TABLE_STEM = "ap_table"

    @property
    def metrics(self) -> Path:
        """metrics.json: both mAPs, per-class APs, settings, the pretext run's config."""
        return self.root / "metrics.json"

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def problems(self) -> Path:
        """problems.csv: VOC images skipped or corrected, and why."""
        return self.root / "problems.csv"

    def read_metrics(self) -> dict:
        return read_json(self.metrics)

    def is_finished(self) -> bool:
        return self.metrics.is_file()


@dataclass(frozen=True)
class FeatureDir:
    """Features of a list of images (see docs/probe.md): tfambient-features' output, and each
    split's cache in a probe workdir. Each layer's rows are its shards concatenated in order;
    index.csv says which image each row is."""

    root: Path
    INDEX_COLUMNS = ("path", "row")

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def index(self) -> Path:
        """index.csv: path,row (and label, for labelled images) of every image written."""
        return self.root / "index.csv"

    @property
    def description(self) -> Path:
        """features.json: the settings, and each layer's dimensions and shards."""
        return self.root / "features.json"

    @property
    def problems(self) -> Path:
        """problems.csv: every image skipped, and why."""
        return self.root / "problems.csv"

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    def part(self, shard: int, shards: int) -> Path:
        """A shard's images (written, skipped): its listing, committed after its arrays."""
        return self.parts / f"part-{shard:05d}-of-{shards:05d}.json"

    def shard(self, layer: str, shard: int, shards: int) -> Path:
        """The float16 (rows, dimensions) array of ``layer`` for one shard of the images."""
        return self.root / f"{layer}-{shard:05d}-of-{shards:05d}.npy"

    def layers_written(self, shards: int) -> list[str]:
        """The layers whose every shard is written."""
        suffix = f"-{0:05d}-of-{shards:05d}.npy"
        names = sorted(path.name[: -len(suffix)] for path in self.root.glob(f"*{suffix}"))
        return [
            name
            for name in names
            if all(self.shard(name, k, shards).is_file() for k in range(shards))
        ]

    def read_description(self) -> dict:
        return read_json(self.description)


class ProbeWorkdir(RunWorkdir):
    """A tfambient-probe workdir (see docs/probe.md); each layer's classifiers are trained in
    a run of its own, layers/<layer>/."""

    SPLITS = ("train", "val")

    @property
    def results(self) -> Path:
        """probe.json: each layer's accuracies and chosen settings, the classes, the counts."""
        return self.root / "probe.json"

    @property
    def table_csv(self) -> Path:
        return self.root / "accuracy.csv"

    @property
    def table_markdown(self) -> Path:
        return self.root / "accuracy.md"

    @property
    def per_class(self) -> Path:
        """per_class.csv: layer, class, val images, accuracy."""
        return self.root / "per_class.csv"

    @property
    def problems(self) -> Path:
        """problems.csv: every image skipped and every empty class, and why."""
        return self.root / "problems.csv"

    def features(self, split: str) -> FeatureDir:
        return FeatureDir(self.root / "features" / split)

    @property
    def layers(self) -> Path:
        """One folder per probed layer: its classifier runs and its result."""
        return self.root / "layers"

    def layer(self, layer: str) -> Path:
        return self.layers / layer

    def classifier_run(self, layer: str) -> RunWorkdir:
        """Where the trainer trains ``layer``'s classifiers (ckpt/, tb/, metrics.jsonl)."""
        return RunWorkdir(self.layer(layer))

    def layer_result(self, layer: str) -> Path:
        """result.json: the layer's accuracies, written when its classifier is done."""
        return self.layer(layer) / "result.json"

    def read_results(self) -> dict:
        return read_json(self.results)

    def is_finished(self) -> bool:
        return self.results.is_file()

    def is_started(self) -> bool:
        return self.features("train").root.is_dir()


def open_run(path: str | os.PathLike) -> TrainWorkdir | VocWorkdir | ProbeWorkdir:
    """The finished VOC or probe workdir, or training workdir, at ``path``; WorkdirError
    otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise WorkdirError(f"{path}: no such directory")
    if VocWorkdir(path).is_finished():
        return VocWorkdir(path)
    if ProbeWorkdir(path).is_finished():
        return ProbeWorkdir(path)
    if ProbeWorkdir(path).is_started():
        raise WorkdirError(f"{path}: an unfinished tfambient-probe workdir (rerun the probe)")
    if TrainWorkdir(path).config.is_file():
        return TrainWorkdir(path)
    raise WorkdirError(
        f"{path}: neither a tfambient-train workdir (config.json), a tfambient-voc workdir "
        f"(metrics.json) nor a finished tfambient-probe workdir (probe.json)"
    )
