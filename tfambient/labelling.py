"""Records with sound descriptors -> final shards with cluster labels, in two passes.

1. Fit: read the descriptors of a bounded sample of train frames (chosen by a hash of the
   frame's id, so the sample does not depend on the order workers finished in) and fit,
   per descriptor, a scaler with k-means for each K and Owens' PCA sign bits (cluster.py).
   A K or a number of bits left at its default that the sample cannot support is lowered
   to what it allows, with a warning, and recorded in clusters.json.
2. Label: stream every record, add its label fields, and route it to its split and shard
   by a hash of its clip id (all frames of a clip land in the same split). Memory stays
   bounded however large the dataset is.

tfambient-prepare runs this over the extracted parts; tfambient-cluster over the shards
themselves, to re-cluster without touching media: images and descriptors are copied byte
for byte, only ``label/*`` fields change. The new shards are written beside the old ones
and swapped in by renaming the directory, so a kill leaves either the old or the new set.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from tfambient import cluster, sound
from tfambient.cluster import LabelSettings
from tfambient.contracts import records as keys
from tfambient.contracts.files import write_json
from tfambient.contracts.records import LabelName
from tfambient.contracts.workdirs import DataDir
from tfrecords_tools import example as tfexample
from tfrecords_tools import writer

logger = logging.getLogger(__name__)

TARGET_SHARD_BYTES = 128 * 2**20
MIN_TRAIN_SHARDS = 8
MAX_AUTO_SHARDS = 512  # each shard holds an open file while written; ulimit -n is often 1024


@dataclass(frozen=True)
class Splits:
    """Which split and shard a clip's frames go to: a stable hash of the clip id."""

    val_fraction: float
    num_train_shards: int
    num_val_shards: int

    @classmethod
    def sized(cls, val_fraction: float, num_shards: int, total_bytes: int) -> Splits:
        """``num_shards`` train shards, or (0) enough for ~128 MiB each, within [8, 512]."""
        auto = math.ceil(total_bytes / TARGET_SHARD_BYTES)
        train = num_shards or min(MAX_AUTO_SHARDS, max(MIN_TRAIN_SHARDS, auto))
        val = max(1, math.ceil(train * val_fraction)) if val_fraction > 0 else 0
        return cls(val_fraction, train, val)

    def is_val(self, clip_id: str | bytes) -> bool:
        return writer.unit_hash(clip_id, "split") < self.val_fraction

    def are_val(self, clip_ids: Sequence[str | bytes]) -> np.ndarray:
        return writer.unit_hashes(clip_ids, "split") < self.val_fraction

    def shards_of(self, clip_ids: Sequence[str | bytes], is_val: np.ndarray) -> np.ndarray:
        """The shard of each clip within its split."""
        train = writer.shard_indices(clip_ids, self.num_train_shards, "shard")
        if not self.num_val_shards:
            return train
        return np.where(is_val, writer.shard_indices(clip_ids, self.num_val_shards, "shard"), train)

    def shard_names(self) -> list[tuple[str, str]]:
        """(split, file name) of every shard, train first: the order dataset.json lists."""
        sizes = (("train", self.num_train_shards), ("val", self.num_val_shards))
        return [(split, writer.shard_name(split, i, n)) for split, n in sizes for i in range(n)]

    def shard_name(self, is_val: bool, shard: int) -> str:
        if is_val:
            return writer.shard_name("val", shard, self.num_val_shards)
        return writer.shard_name("train", shard, self.num_train_shards)


@dataclass
class Labelers:
    """The fitted models, by label field."""

    kmeans: dict[str, cluster.KMeansLabeler]
    bits: dict[str, cluster.BinaryCoder]
    descriptor_of: dict[str, str]
    reduced: list[dict]  # defaults the sample could not support: see _supported


def _spec(descriptors: Sequence[str], dims: Mapping[str, int], for_summaries: bool = False):
    """What a pass parses: ids and descriptors, and for the cluster summaries the frame and
    its AudioSet classes."""
    import tensorflow as tf  # only for tf.data reading: labelling workers need none

    spec = {
        keys.CLIP_ID: tf.io.FixedLenFeature([], tf.string),
        keys.FRAME_INDEX: tf.io.FixedLenFeature([], tf.int64),
    }
    for name in descriptors:
        spec[keys.sound_key(name)] = tf.io.FixedLenFeature([dims[name]], tf.float32)
    if for_summaries:
        spec[keys.IMAGE] = tf.io.FixedLenFeature([], tf.string)
        spec[keys.AUDIOSET_LABELS] = tf.io.VarLenFeature(tf.string)
    return spec


def frame_keys(batch: Mapping[str, np.ndarray]) -> list[bytes]:
    return [
        c + b"#%d" % i for c, i in zip(batch[keys.CLIP_ID], batch[keys.FRAME_INDEX], strict=True)
    ]


def descriptor_dims(descriptors: Sequence[str]) -> dict[str, int]:
    return {name: sound.DESCRIPTORS[name].dim for name in descriptors}


def sample_threshold(max_samples: int, num_train: int) -> float:
    """Frames whose fit hash lies below this are sampled: a little over ``max_samples``
    of the ``num_train`` train frames, trimmed to the smallest hashes afterwards."""
    return min(1.0, 1.05 * max_samples / max(num_train, 1))


def sampled(batch: Mapping[str, np.ndarray], splits: Splits, keep: float):
    """(which frames of the batch the fit sample takes, their fit hashes)."""
    h = writer.unit_hashes(frame_keys(batch), "fit")
    return ~splits.are_val(batch[keys.CLIP_ID]) & (h < keep), h


def fit_sample(
    sources: Sequence[Path],
    descriptors: Sequence[str],
    dims: Mapping[str, int],
    splits: Splits,
    num_train: int,
    max_samples: int,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Descriptors of at most ``max_samples`` train frames: those with the smallest hash.

    ``sources`` may hold just the frames :func:`sampled` takes (what the Beam engine
    gathers): the sample is the same."""
    from tfrecords_tools import reader

    keep = sample_threshold(max_samples, num_train)
    hashes, rows = [], {name: [] for name in descriptors}
    bar = tqdm(total=num_train, unit="frame", desc="sampling", disable=not progress)
    with bar:
        for batch in reader.parse_batches(sources, _spec(descriptors, dims)):
            chosen, h = sampled(batch, splits, keep)
            train = ~splits.are_val(batch[keys.CLIP_ID])
            hashes.append(h[chosen])
            for name in descriptors:
                rows[name].append(batch[keys.sound_key(name)][chosen])
            bar.update(int(train.sum()))
    order = np.argsort(np.concatenate(hashes), kind="stable")[:max_samples]
    return {name: np.concatenate(rows.pop(name))[order] for name in descriptors}


class SampleTooSmall(ValueError):
    """A K or a number of bits asked for explicitly that the fit sample cannot support."""


def fit_labelers(sample: dict[str, np.ndarray], settings: LabelSettings) -> Labelers:
    """Every model, one descriptor at a time; ``sample`` is emptied as it goes (memory)."""
    labelers = Labelers({}, {}, {}, [])
    for name in list(sample):
        vectors = cluster.FitSample.of(sample.pop(name))
        size, dims = vectors.z.shape
        for asked in settings.num_clusters:
            allowed = cluster.supported_k(vectors, asked)
            why = f"the sample has {allowed} distinct {name} descriptors"
            k = _supported(labelers, settings, "num_clusters", asked, allowed, name, why)
            field = LabelName(name, "k", k).key
            labelers.kmeans[field] = cluster.KMeansLabeler.fit(
                vectors, k, seed=settings.seed, n_init=settings.n_init
            )
            labelers.descriptor_of[field] = name
        if settings.num_bits:
            allowed = cluster.supported_bits(vectors)
            why = f"the sample has {size} {name} descriptors with {dims} varying dims"
            bits = _supported(labelers, settings, "num_bits", settings.num_bits, allowed, name, why)
            field = LabelName(name, "bits", bits).key
            labelers.bits[field] = cluster.BinaryCoder.fit(vectors, bits, seed=settings.seed)
            labelers.descriptor_of[field] = name
    return labelers


def _supported(
    labelers: Labelers,
    settings: LabelSettings,
    flag: str,
    asked: int,
    allowed: int,
    descriptor: str,
    why: str,
) -> int:
    """``asked`` when the sample supports it. Otherwise, for a flag left at its default
    (``settings.reducible``), what the sample allows (a sample that varies at all has two
    distinct descriptors and one component), logged and noted in ``labelers.reduced``;
    for a value asked for, SampleTooSmall."""
    if asked <= allowed:
        return asked
    if flag not in settings.reducible:
        raise SampleTooSmall(f"--{flag}={asked} cannot be fitted: {why}, so at most {allowed}")
    labelers.reduced.append(
        {
            "flag": f"--{flag}",
            "descriptor": descriptor,
            "default": asked,
            "used": allowed,
            "why": why,
        }
    )
    logger.warning(
        "--%s left at its default %d: %s; using %d for %s (give --%s to choose)",
        flag,
        asked,
        why,
        allowed,
        descriptor,
        flag,
    )
    return allowed


@dataclass
class LabelledShards:
    """What the labelling pass wrote: shard list, frames per split, per-clustering summaries."""

    shards: list[dict]
    frames: dict[str, int]
    summaries: dict[str, cluster.ClusterSummary]


def label_records(
    sources: Sequence[Path],
    out_dir: Path,
    labelers: Labelers,
    splits: Splits,
    dims: Mapping[str, int],
    settings: LabelSettings,
    total: int,
    progress: bool,
) -> LabelledShards:
    """Copy every record into its shard in ``out_dir`` with its new label fields."""
    from tfrecords_tools import reader

    summaries = new_summaries(labelers, settings)
    spec = _spec(sorted(set(labelers.descriptor_of.values())), dims, for_summaries=True)
    train = writer.ShardedRecordWriter(out_dir, "train", splits.num_train_shards)
    val = (
        writer.ShardedRecordWriter(out_dir, "val", splits.num_val_shards)
        if splits.num_val_shards
        else None
    )
    bar = tqdm(total=total, unit="frame", desc="labelling", disable=not progress)
    with bar, train, val or contextlib.nullcontext():
        for batch in reader.parse_batches(sources, spec, with_raw=True):
            labelled = label_batch(batch, labelers, splits)
            update_summaries(summaries, labelled.summary_input(batch))
            for i, record in enumerate(labelled.records):
                (val if labelled.is_val[i] else train).write(labelled.shards[i], record)
            bar.update(len(labelled.records))
    counts = dict(zip(train.paths, train.counts, strict=True))
    counts |= dict(zip(val.paths, val.counts, strict=True)) if val else {}
    shards, frames = shard_list(splits, {path.name: n for path, n in counts.items()})
    return LabelledShards(shards, frames, summaries)


def new_summaries(labelers: Labelers, settings: LabelSettings) -> dict[str, cluster.ClusterSummary]:
    """An empty summary per k-means field, to accumulate the montages' frames in."""
    return {
        field: cluster.ClusterSummary(labeler.k, per_cluster=settings.montage_per_cluster)
        for field, labeler in labelers.kmeans.items()
    }


def shard_list(splits: Splits, counts: Mapping[str, int]) -> tuple[list[dict], dict[str, int]]:
    """dataset.json's shard list (every shard, empty ones too) and frames per split, from
    the records written to each shard file name."""
    shards = [
        {"path": f"{DataDir.SHARDS_DIR}/{name}", "split": split, "records": counts.get(name, 0)}
        for split, name in splits.shard_names()
    ]
    splits_written = ["train"] + (["val"] if splits.num_val_shards else [])
    frames = {
        split: sum(s["records"] for s in shards if s["split"] == split) for split in splits_written
    }
    return shards, frames


@dataclass
class LabelledBatch:
    """A batch's records with their label fields, where each goes, and what the cluster
    summaries need of it."""

    records: list[bytes]
    is_val: np.ndarray
    shards: np.ndarray  # within its split
    assigned: dict[str, tuple[np.ndarray, np.ndarray]]  # k-means field: labels, sq distances

    def summary_input(self, batch: Mapping[str, np.ndarray]) -> SummaryInput:
        return SummaryInput(
            self.assigned, self.is_val, batch[keys.IMAGE], batch[keys.AUDIOSET_LABELS]
        )


class SummaryInput(NamedTuple):
    """What one batch adds to the cluster summaries (see update_summaries)."""

    assigned: dict[str, tuple[np.ndarray, np.ndarray]]
    is_val: np.ndarray
    images: np.ndarray
    tags: np.ndarray


def label_batch(
    batch: Mapping[str, np.ndarray], labelers: Labelers, splits: Splits
) -> LabelledBatch:
    """Every label field of a parsed batch, written into its raw records, and the split
    and shard of each record (a hash of its clip id)."""
    is_val = splits.are_val(batch[keys.CLIP_ID])
    fields, assigned = {}, {}
    for field, labeler in labelers.kmeans.items():
        assigned[field] = labeler.assign(batch[keys.sound_key(labelers.descriptor_of[field])])
        fields[field] = assigned[field][0]
    for field, coder in labelers.bits.items():
        fields[field] = coder.encode(batch[keys.sound_key(labelers.descriptor_of[field])])
    records = [
        tfexample.with_features(
            raw, {f: values[i] for f, values in fields.items()}, (keys.LABEL_PREFIX,)
        )
        for i, raw in enumerate(batch[tfexample.RAW_KEY])
    ]
    return LabelledBatch(records, is_val, splits.shards_of(batch[keys.CLIP_ID], is_val), assigned)


def update_summaries(
    summaries: Mapping[str, cluster.ClusterSummary], batch: SummaryInput
) -> Mapping[str, cluster.ClusterSummary]:
    """Add a labelled batch to the summaries of its k-means fields."""
    for field, (labels, distances) in batch.assigned.items():
        summaries[field].update(labels, distances, batch.is_val, batch.images, batch.tags)
    return summaries


def parse_records(
    records: Sequence[bytes], descriptors: Sequence[str], dims: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """A batch of serialized records as label_records' reader gives it (ids, frame,
    descriptors, image, AudioSet classes, raw records), parsed without TensorFlow."""
    parsed = [tfexample.to_dict(record) for record in records]
    batch = {
        keys.CLIP_ID: _column([p[keys.CLIP_ID][0] for p in parsed]),
        keys.FRAME_INDEX: np.array([p[keys.FRAME_INDEX][0] for p in parsed], dtype=np.int64),
        keys.IMAGE: _column([p[keys.IMAGE][0] for p in parsed]),
        keys.AUDIOSET_LABELS: _column([_column(p.get(keys.AUDIOSET_LABELS, [])) for p in parsed]),
        tfexample.RAW_KEY: _column(list(records)),
    }
    for name in descriptors:
        key = keys.sound_key(name)
        batch[key] = np.stack([p[key] for p in parsed]).reshape(len(parsed), dims[name])
    return batch


def _column(values: Sequence) -> np.ndarray:
    """An object array of ``values``, as tf.data hands out bytes and ragged rows."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def swap_in(data_dir: Path, staged: Path) -> None:
    """Replace ``data_dir/shards`` by ``staged`` with two renames; `recover` mends a kill
    between them."""
    current, old = _current_and_old(data_dir)
    if current.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(current, old)
    os.replace(staged, current)
    shutil.rmtree(old, ignore_errors=True)


def recover(data_dir: Path) -> None:
    """Undo what a killed run left: a half-done swap, staged shards never swapped in."""
    current, old = _current_and_old(data_dir)
    if old.exists() and not current.exists():
        os.replace(old, current)
    for staged in data_dir.glob(f"{DataDir.STAGED_SHARDS_PREFIX}*"):
        shutil.rmtree(staged)


def _current_and_old(data_dir: Path) -> tuple[Path, Path]:
    current = DataDir(data_dir).shards
    return current, current.with_name(f"{current.name}.old")


def settings_json(settings: LabelSettings) -> dict:
    out = asdict(settings)
    out["num_clusters"] = list(settings.num_clusters)
    out["reducible"] = sorted(settings.reducible)
    return out


def write_clusters(
    data_dir: Path,
    labelers: Labelers,
    summaries: Mapping[str, cluster.ClusterSummary],
    names: Mapping[str, str],
    settings: LabelSettings,
) -> dict:
    """Save every model (npz) and montage (png); return what clusters.json says of them."""
    layout = DataDir(data_dir)
    out_dir = layout.clusters
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob("*.npz"), *out_dir.glob("*.png")]:
        stale.unlink()  # models of label fields that no longer exist would mislead
    entries = {}
    for field, labeler in labelers.kmeans.items():
        label = LabelName.parse(field)
        labeler.save(layout.cluster_model(label))
        summary = summaries[field]
        entries[field] = {
            "descriptor": labelers.descriptor_of[field],
            "k": labeler.k,
            "model": layout.relative(layout.cluster_model(label)),
            "montage": layout.relative(layout.cluster_montage(label)),
            "fit": {
                "samples": labeler.fit_size,
                "inertia": labeler.inertia,
                "iterations": labeler.n_iter,
                "seed": labeler.seed,
            },
            **summary.to_json(names),
        }
        cluster.plot_montage(
            montage_rows(summary, names),
            layout.cluster_montage(label),
            f"{labelers.descriptor_of[field]}, k={labeler.k}: frames nearest each centroid",
        )
    for field, coder in labelers.bits.items():
        label = LabelName.parse(field)
        coder.save(layout.cluster_model(label))
        entries[field] = {
            "descriptor": labelers.descriptor_of[field],
            "bits": coder.bits,
            "model": layout.relative(layout.cluster_model(label)),
            "explained_variance_ratio": coder.explained_variance_ratio.round(5).tolist(),
            "fit": {"samples": coder.fit_size, "seed": coder.seed},
        }
    report = {
        "settings": settings_json(settings),
        "reduced_defaults": labelers.reduced,
        "fields": entries,
    }
    write_json(layout.clusters_report, report)
    return report


def montage_rows(
    summary: cluster.ClusterSummary, names: Mapping[str, str]
) -> list[tuple[str, list[bytes]]]:
    """Clusters largest first, each titled with its size and most common AudioSet classes."""
    rows = []
    for c in summary.clusters_by_size():
        tags = ", ".join(names.get(tag, tag) for tag, _ in summary.top_tags(c, 2))
        title = f"#{c}  n={summary.sizes[c]}" + (f"\n{tags}" if tags else "")
        rows.append((title, [n.thumbnail for n in summary.nearest(c)]))
    return rows


def relabel(
    sources: Sequence[Path],
    data_dir: Path,
    descriptors: Sequence[str],
    settings: LabelSettings,
    splits: Splits,
    *,
    num_train: int,
    total: int,
    names: Mapping[str, str],
    progress: bool,
) -> dict:
    """Fit on a sample of ``sources``, write labelled shards into ``data_dir/shards``.

    Returns the manifest's view: shard list, frames per split, label fields, clusters.
    """
    recover(data_dir)
    dims = descriptor_dims(descriptors)
    labelers = fit(sources, descriptors, settings, splits, num_train, progress)
    staged = DataDir(data_dir).staged_shards(str(os.getpid()))
    labelled = label_records(sources, staged, labelers, splits, dims, settings, total, progress)
    swap_in(data_dir, staged)
    return labelled_view(data_dir, labelers, labelled, names, settings)


def fit(
    sources: Sequence[Path],
    descriptors: Sequence[str],
    settings: LabelSettings,
    splits: Splits,
    num_train: int,
    progress: bool,
) -> Labelers:
    """Every labeler, fitted on the hashed sample of the train frames in ``sources``."""
    dims = descriptor_dims(descriptors)
    sample = fit_sample(
        sources, descriptors, dims, splits, num_train, settings.max_samples, progress
    )
    return fit_labelers(sample, settings)


def labelled_view(
    data_dir: Path,
    labelers: Labelers,
    labelled: LabelledShards,
    names: Mapping[str, str],
    settings: LabelSettings,
) -> dict:
    """Write the models and montages; what dataset.json records of the labelling."""
    clusters = write_clusters(data_dir, labelers, labelled.summaries, names, settings)
    return {
        "shards": labelled.shards,
        "frames": labelled.frames,
        "label_fields": label_schema(labelers),
        "clusters": clusters,
    }


def label_schema(labelers: Labelers) -> dict[str, dict]:
    fields = [*labelers.kmeans, *labelers.bits]
    return {field: LabelName.parse(field).field().to_json() for field in fields}
