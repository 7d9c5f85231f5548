"""dataset.json: what a prepared data directory holds, read, checked and written here only.

tfambient-prepare (and tfambient-cluster) write it last, after every shard is in place, so
its presence says the directory is finished; ``stale`` marks one a killed relabelling left
behind. Readers (the input pipeline, the report, tfrecords-inspect) ask this class for the
shards of a split, the record schema and the label fields rather than opening the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tfambient.contracts import files
from tfambient.contracts.records import Field, LabelName, is_label_key

DATASET_FILE = "dataset.json"
SPLITS = ("train", "val")
_REQUIRED = ("schema", "shards")


class ManifestError(ValueError):
    """dataset.json is missing, unreadable, or does not describe what was asked for."""


@dataclass(frozen=True)
class Shard:
    path: str  # relative to the data directory
    split: str
    records: int


class Manifest:
    """A data directory's dataset.json: the shards, the schema of their records, counts,
    clusters and the inputs labelling was run with (the other keys, as written)."""

    def __init__(self, data: dict):
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise ManifestError(f"{DATASET_FILE} lacks {', '.join(missing)}")
        self.data = data

    @staticmethod
    def path(data_dir: str | os.PathLike) -> Path:
        return Path(data_dir) / DATASET_FILE

    @classmethod
    def exists(cls, data_dir: str | os.PathLike) -> bool:
        return cls.path(data_dir).is_file()

    @classmethod
    def read(cls, data_dir: str | os.PathLike) -> Manifest:
        """The manifest of ``data_dir``; a clear error if there is none or it is damaged."""
        path = cls.path(data_dir)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ManifestError(f"{path} not found: run tfambient-prepare first") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ManifestError(f"{path} cannot be read: {error}") from None
        try:
            return cls(data)
        except ManifestError as error:
            raise ManifestError(f"{path}: {error}") from None

    @classmethod
    def read_if_exists(cls, data_dir: str | os.PathLike) -> Manifest | None:
        return cls.read(data_dir) if cls.exists(data_dir) else None

    @classmethod
    def for_records(
        cls, schema: dict[str, Field], shards: Iterable[Shard], **more: object
    ) -> Manifest:
        """The smallest manifest a reader accepts: shards and their schema (for data made
        by other tools, benchmarks and tests)."""
        return cls(
            {
                "schema": {key: field.to_json() for key, field in schema.items()},
                "shards": [vars(shard) for shard in shards],
                "counts": {},
                "clusters": {},
                **more,
            }
        )

    def write(self, data_dir: str | os.PathLike) -> None:
        files.write_json(self.path(data_dir), self.data)

    # ------------------------------------------------------------------ what it says

    @property
    def schema(self) -> dict[str, Field]:
        return {key: Field.from_json(entry) for key, entry in self.data["schema"].items()}

    @property
    def stale(self) -> bool:
        return bool(self.data.get("stale"))

    def shards(self, split: str | None = None) -> list[Shard]:
        """Every shard, or the split's, in the order written."""
        return [
            Shard(s["path"], s["split"], int(s["records"]))
            for s in self.data["shards"]
            if split is None or s["split"] == split
        ]

    def records(self, splits: Iterable[str] = SPLITS) -> int:
        """Records in the shards of ``splits``."""
        wanted = set(splits)
        return sum(shard.records for shard in self.shards() if shard.split in wanted)

    def labels(self) -> list[LabelName]:
        """The label fields of the records, as names."""
        return [
            LabelName.parse(key)
            for key in self.data["schema"]
            if is_label_key(key) and LabelName.is_valid(key)
        ]

    def label(self, text: str) -> LabelName:
        """The label called ``text`` (``texture_k30`` or ``label/texture_k30``), checked
        against the schema; the error lists the labels there are."""
        available = ", ".join(sorted(label.name for label in self.labels())) or "none"
        try:
            label = LabelName.parse(text)
        except ValueError:
            label = None
        if label is None or label.key not in self.data["schema"]:
            raise ManifestError(f"no label {text!r} in {DATASET_FILE}; available: {available}")
        field = self.schema[label.key]
        if field.kind != "int64" or field.length != label.length:
            raise ManifestError(
                f"{label.key}: the schema says {field.kind} x {field.length}, "
                f"but a {label.kind} label needs int64 x {label.length}"
            )
        return label

    def base_schema(self) -> dict[str, dict]:
        """The schema's entries other than labels, as written."""
        return {k: v for k, v in self.data["schema"].items() if not is_label_key(k)}
