"""A person-sized summary of a directory of TFRecord shards, checked against its manifest.

The summary says how many records each split holds (a split is the shard name before
-NNNNN-of-NNNNN), what the first example's features are, and what a few examples look
like with long values shortened. It also lists every problem found: shards that do not
read to their end and, when a dataset.json lists the shards, every disagreement with it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfrecords_tools.example import feature_kinds, to_dict
from tfrecords_tools.reader import CorruptShard, list_shards, read_records, verify_shards

MANIFEST = "dataset.json"
MANIFEST_SECTIONS = ("counts", "schema")
SHORT_BYTES = 32
SHOWN_VALUES = 5
JPEG_MAGIC = b"\xff\xd8\xff"

_SHARD_SUFFIX = re.compile(r"-\d+-of-\d+$")


class ManifestError(ValueError):
    """dataset.json exists but is not the JSON object this module expects."""


@dataclass(frozen=True)
class ShardCount:
    path: Path
    records: int | None  # None: unreadable, or not verified and not in dataset.json


@dataclass
class Report:
    directory: Path
    verified: bool  # counts come from reading every shard, not from dataset.json
    shards: list[ShardCount]
    manifest: dict[str, Any] | None
    schema: dict[str, tuple[str, int]]
    examples: list[dict[str, str]]
    problems: list[CorruptShard] = field(default_factory=list)

    def splits(self) -> dict[str, list[ShardCount]]:
        """Shards grouped by split, in shard order."""
        groups: dict[str, list[ShardCount]] = {}
        for shard in self.shards:
            groups.setdefault(split_name(shard.path), []).append(shard)
        return groups


def split_name(path: str | os.PathLike[str]) -> str:
    """The split a shard belongs to: train for train-00003-of-00064.tfrecord, else the stem."""
    return _SHARD_SUFFIX.sub("", Path(path).stem)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """dataset.json in `directory` as a dict, or None if there is none."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{path}: cannot be read as JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: expected a JSON object, found {type(manifest).__name__}")
    return manifest


def listed_counts(directory: Path, manifest: dict[str, Any] | None) -> dict[Path, int] | None:
    """dataset.json's "shards" list as {resolved path: records}; None if it has no list."""
    if manifest is None or "shards" not in manifest:
        return None
    entries = manifest["shards"]
    valid = isinstance(entries, list) and all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("records"), int)
        for e in entries
    )
    if not valid:
        raise ManifestError(
            f'{directory / MANIFEST}: "shards" must be a list of '
            '{"path": relative path, "records": count}'
        )
    return {(directory / e["path"]).resolve(): e["records"] for e in entries}


def manifest_disagreements(
    shards: Sequence[ShardCount], listed: dict[Path, int]
) -> list[CorruptShard]:
    """Shards whose count differs from dataset.json's, missing from it, or missing on disk."""
    problems = []
    on_disk = {shard.path.resolve(): shard for shard in shards}
    for resolved, shard in on_disk.items():
        if resolved not in listed:
            problems.append(CorruptShard(shard.path, f"not listed in {MANIFEST}"))
        elif shard.records is not None and shard.records != listed[resolved]:
            detail = f"{MANIFEST} says {listed[resolved]} records, the file holds {shard.records}"
            problems.append(CorruptShard(shard.path, detail))
    problems += [
        CorruptShard(path, f"listed in {MANIFEST} but missing")
        for path in listed
        if path not in on_disk
    ]
    return problems


def _shown_values(values: Sequence[Any], render: Callable[[Any], str], noun: str) -> str:
    if len(values) == 1:
        return render(values[0])
    head = ", ".join(render(v) for v in values[:SHOWN_VALUES])
    more = ", ..." if len(values) > SHOWN_VALUES else ""
    return f"[{head}{more}] ({len(values)} {noun})"


def render_bytes(value: bytes) -> str:
    """Short values as a bytes literal; JPEG as its size; other long values as a length."""
    if value.startswith(JPEG_MAGIC):
        try:
            height, width, _ = tf.io.extract_jpeg_shape(value).numpy()
        except tf.errors.InvalidArgumentError:
            return f"<invalid JPEG, {len(value)} bytes>"
        return f"<JPEG {width}x{height}, {len(value)} bytes>"
    if len(value) > SHORT_BYTES:
        return f"<{len(value)} bytes>"
    return repr(value)


def render_value(values: list[bytes] | np.ndarray) -> str:
    """One feature's values, with at most SHOWN_VALUES shown and long bytes shortened."""
    if isinstance(values, list):
        return _shown_values(values, render_bytes, "values")
    if values.dtype == np.float32:
        return _shown_values(values, lambda v: f"{v:.4g}", "floats")
    return _shown_values(values, str, "ints")


def render_example(serialized: bytes) -> dict[str, str]:
    """Every feature of one record, rendered by render_value."""
    return {key: render_value(values) for key, values in to_dict(serialized).items()}


def _first_records(shards: Sequence[Path], count: int, problems: list[CorruptShard]) -> list[bytes]:
    """Up to `count` records from the start; a bad shard met on the way joins `problems`.

    One batch of exactly `count` records, so nothing past them is read (or found bad).
    """
    try:
        return next(read_records(shards, batch_size=count), np.array([])).tolist()
    except CorruptShard as error:
        problems.append(error)
        return []


def summarize(
    directory: str | os.PathLike[str],
    examples: int = 1,
    verify: bool = True,
    progress: bool = False,
) -> Report:
    """Counts, schema, `examples` decoded examples and problems of a shard directory.

    `directory` holds the shards, or a shards/ subdirectory and dataset.json. With
    verify, every shard is read to its end; without, counts come from dataset.json.
    """
    directory = Path(directory)
    shards = list_shards(directory)
    manifest = read_manifest(directory)
    listed = listed_counts(directory, manifest)
    problems: list[CorruptShard] = []
    if verify:
        counts, problems = verify_shards(shards, progress=progress)
    else:
        known = listed or {}
        counts = {path: known[path.resolve()] for path in shards if path.resolve() in known}
    unreadable = {problem.path for problem in problems}
    readable = [path for path in shards if path not in unreadable]
    shard_counts = [ShardCount(path, counts.get(path)) for path in shards]
    if listed is not None:
        problems += manifest_disagreements(shard_counts, listed)
    records = _first_records(readable, max(examples, 1), problems)
    return Report(
        directory=directory,
        verified=verify,
        shards=shard_counts,
        manifest=manifest,
        schema=feature_kinds(records[0]) if records else {},
        examples=[render_example(record) for record in records[:examples]],
        problems=problems,
    )


def _indented(text: str, prefix: str = "  ") -> list[str]:
    return [prefix + line for line in text.splitlines()]


def _split_line(name: str, shards: list[ShardCount], width: int) -> str:
    known = [shard.records for shard in shards if shard.records is not None]
    line = f"  {name:<{width}}  {sum(known):>10}  in {len(shards)} shard(s)"
    if known:
        line += f", {min(known)} to {max(known)} per shard"
    unknown = len(shards) - len(known)
    if unknown:
        line += f", {unknown} not counted"
    return line


def _table(rows: dict[str, str]) -> list[str]:
    width = max(map(len, rows), default=0)
    return [f"  {key:<{width}}  {value}" for key, value in rows.items()]


def format_report(report: Report) -> str:
    """The report as text for a terminal."""
    source = "every shard read to its end" if report.verified else f"counts from {MANIFEST}"
    lines = [f"{report.directory}: {len(report.shards)} shard(s), {source}"]
    for section in MANIFEST_SECTIONS:
        if report.manifest and section in report.manifest:
            lines.append(f"{MANIFEST} {section}:")
            lines += _indented(json.dumps(report.manifest[section], indent=2))
    splits = report.splits()
    width = max(map(len, [*splits, "total"]))
    lines.append("records per split:")
    lines += [_split_line(name, shards, width) for name, shards in splits.items()]
    lines.append(_split_line("total", report.shards, width))
    if not report.schema:
        lines.append("no readable records")
    else:
        lines.append("schema of the first example (key, kind, length):")
        kinds = {key: f"{kind:<5}  {length}" for key, (kind, length) in report.schema.items()}
        lines += _table(kinds)
    for number, example in enumerate(report.examples, start=1):
        lines.append(f"example {number}:")
        lines += _table(example)
    return "\n".join(lines)
