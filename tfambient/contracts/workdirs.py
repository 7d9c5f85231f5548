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


def open_run(path: str | os.PathLike) -> TrainWorkdir | VocWorkdir:
    """The finished VOC workdir or training workdir at ``path``; WorkdirError otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise WorkdirError(f"{path}: no such directory")
    if VocWorkdir(path).is_finished():
        return VocWorkdir(path)
    if TrainWorkdir(path).config.is_file():
        return TrainWorkdir(path)
    raise WorkdirError(
        f"{path}: neither a tfambient-train workdir (config.json) "
        f"nor a tfambient-voc workdir (metrics.json)"
    )
