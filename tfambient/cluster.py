"""Pseudo-labels from sound descriptors: the targets of Owens et al.'s frame classifier.

A video frame is labelled by the sound around it. The descriptors (502-d texture
statistics, 3240-d MFCC, 40-d MFCC summary) are turned into labels in two steps:

1. Fit on a bounded random sample of descriptors:
   :class:`Standardizer` (per-dimension mean and std; constant dimensions dropped), then
   either :class:`KMeansLabeler` (k-means centroids: one label in ``0..k-1`` per sound)
   or :class:`BinaryCoder` (Owens' second variant: the signs of the top principal
   components, ``bits`` binary labels per sound). Both save to a small ``.npz``.
2. Assign in one streaming pass over every example, a chunk of rows at a time, so that
   memory does not grow with the data set. :class:`ClusterSummary` accumulates what the
   report needs along the way (cluster sizes per split, inertia, the frames nearest each
   centroid, the commonest AudioSet tags), and :func:`plot_montage` draws one row of
   those frames per cluster, like Figure 1 of the paper.

This module knows numpy arrays, ``.npz`` and ``.png`` only; reading the descriptors from
the data set is the caller's job.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageOps
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from tfambient.configs import option
from tfambient.contracts.files import write_atomically

PathLike = str | os.PathLike[str]

# Rows standardized and compared with the centroids at a time, so that memory is bounded
# whatever the number of examples: a few float64 temporaries of 8192 x 3240 (212 MB each)
# for the largest descriptor.
CHUNK_ROWS = 8192
# A dimension whose std is at most this fraction of |mean| varies by less than about
# 8 float32 ulps (eps = 1.2e-7): its spread is the rounding of the descriptor
# computation, not signal, and standardizing it would blow that noise up to unit
# variance with the weight of a real dimension. The rule is relative, so genuinely small
# descriptors (modulation power of 1e-5) are kept; a column of zeros has std 0 <= 0.
CONSTANT_REL_STD = 1e-6
# Below float32's smallest normal number values are denormals with little precision left.
CONSTANT_ABS_STD = float(np.finfo(np.float32).tiny)
# Restarts of k-means from different k-means++ seeds; the lowest-inertia one is kept.
# The fit sample is bounded, so a few restarts cost little next to the assignment pass.
DEFAULT_N_INIT = 4
NEAREST_PER_CLUSTER = 8
TOP_TAGS = 3

_KMEANS_KIND = "tfambient.cluster.KMeansLabeler/1"
_BINARY_KIND = "tfambient.cluster.BinaryCoder/1"


def _row_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices of at most ``size`` rows covering ``range(n)``."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _as_matrix(x: Any, name: str, width: int | None = None) -> np.ndarray:
    """``x`` as an (n, d) array without copying, or a ValueError naming what is wrong."""
    array = np.asarray(x)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (examples, dims), got shape {array.shape}")
    if width is not None and array.shape[1] != width:
        raise ValueError(f"{name} has {array.shape[1]} dims, expected {width}")
    return array


def _check_finite(chunk: np.ndarray, name: str, first_row: int) -> None:
    """A NaN/Inf descriptor would silently land in some cluster; refuse it by row."""
    finite = np.isfinite(chunk).all(axis=1)
    if not finite.all():
        row = first_row + int(np.argmin(finite))
        raise ValueError(f"{name} contains NaN or Inf (first at row {row})")


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-dimension standardization; ``keep`` marks the dimensions that vary.

    ``mean`` and ``scale`` (the std) cover all input dimensions, dropped ones included, so
    a saved model documents every input dimension.
    """

    mean: np.ndarray  # (d,) float64
    scale: np.ndarray  # (d,) float64
    keep: np.ndarray  # (d,) bool

    @classmethod
    def fit(cls, sample: Any) -> Standardizer:
        """Mean and std of each dimension, accumulated in float64 a chunk at a time."""
        x = _as_matrix(sample, "sample")
        n, d = x.shape
        if n == 0 or d == 0:
            raise ValueError(f"cannot standardize an empty sample (shape {x.shape})")
        total = np.zeros(d)
        for rows in _row_chunks(n, CHUNK_ROWS):
            _check_finite(x[rows], "sample", rows.start)
            total += x[rows].sum(axis=0, dtype=np.float64)
        mean = total / n
        # Second pass over the deviations: exact where sum(x^2) - n mean^2 would cancel.
        squares = np.zeros(d)
        for rows in _row_chunks(n, CHUNK_ROWS):
            squares += np.square(x[rows] - mean).sum(axis=0)
        std = np.sqrt(squares / n)
        keep = std > np.maximum(CONSTANT_REL_STD * np.abs(mean), CONSTANT_ABS_STD)
        if not keep.any():
            raise ValueError(
                f"no dimension of the {n}-example sample varies, so there is nothing to "
                "cluster (are all the descriptors identical?)"
            )
        return cls(mean=mean, scale=std, keep=keep)

    @property
    def input_dim(self) -> int:
        return int(self.keep.size)

    @property
    def output_dim(self) -> int:
        return int(self.keep.sum())

    def transform(self, x: Any) -> np.ndarray:
        """(n, output_dim) float32 standardized descriptors; float64 arithmetic per chunk."""
        x = _as_matrix(x, "descriptors", self.input_dim)
        mean, scale = self.mean[self.keep], self.scale[self.keep]
        out = np.empty((x.shape[0], self.output_dim), dtype=np.float32)
        for rows in _row_chunks(x.shape[0], CHUNK_ROWS):
            _check_finite(x[rows], "descriptors", rows.start)
            out[rows] = (x[rows][:, self.keep] - mean) / scale
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "keep": self.keep}

    @classmethod
    def _from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Standardizer:
        return cls(
            mean=arrays["mean"].astype(np.float64),
            scale=arrays["scale"].astype(np.float64),
            keep=arrays["keep"].astype(bool),
        )


def _save_model(path: PathLike, kind: str, arrays: Mapping[str, Any]) -> None:
    write_atomically(path, lambda f: np.savez(f, kind=np.str_(kind), **arrays))


def _load_model(path: PathLike, kind: str) -> dict[str, np.ndarray]:
    """All arrays of a saved model, after checking it is the expected kind of model."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    found = str(arrays.get("kind", "no kind"))
    if found != kind:
        raise ValueError(f"{path} holds a {found!r} model, expected {kind!r}")
    return arrays


def _count_distinct_rows(x: np.ndarray) -> int:
    """Distinct rows, comparing each row's bytes (adding 0 turns -0.0 into 0.0 first)."""
    rows = np.ascontiguousarray(x + x.dtype.type(0))
    return int(np.unique(rows.view(np.dtype((np.void, rows.strides[0]))).ravel()).size)


def _has_distinct_rows(z: np.ndarray, k: int) -> bool:
    """Whether ``z`` has at least ``k`` distinct rows, without sorting a copy of a big
    sample: rows with distinct projections on one direction are distinct rows."""
    direction = np.linspace(1.0, 2.0, z.shape[1], dtype=z.dtype)
    if np.unique(z @ direction).size >= k:
        return True
    return _count_distinct_rows(z) >= k  # a small or degenerate sample: count exactly


@dataclass(frozen=True, eq=False)
class FitSample:
    """A sample standardized once for every model fitted on it (k-means for each K, and
    PCA), so that a large sample is never copied more than once."""

    standardizer: Standardizer
    z: np.ndarray  # (n, standardizer.output_dim) float32

    @classmethod
    def of(cls, sample: Any) -> FitSample:
        if isinstance(sample, FitSample):
            return sample
        standardizer = Standardizer.fit(sample)
        return cls(standardizer, standardizer.transform(sample))


def supported_k(sample: FitSample, k: int) -> int:
    """``k``, or the sample's number of distinct descriptors when that is smaller: the
    most clusters k-means can make of it."""
    if _has_distinct_rows(sample.z, k):
        return k
    return _count_distinct_rows(sample.z)


def supported_bits(sample: FitSample) -> int:
    """The most principal components (bits) the sample has: its size or its varying dims."""
    return min(sample.z.shape)


@dataclass(frozen=True, eq=False)
class KMeansLabeler:
    """k-means on standardized descriptors: a sound's label is its nearest centroid."""

    standardizer: Standardizer
    centroids: np.ndarray  # (k, standardizer.output_dim) float32, standardized space
    seed: int
    fit_size: int  # examples in the fitting sample
    inertia: float  # sklearn's sum of squared distances on the fitting sample
    n_iter: int  # Lloyd iterations of the best restart

    @classmethod
    def fit(cls, sample: Any, k: int, seed: int, n_init: int = DEFAULT_N_INIT) -> KMeansLabeler:
        """Standardize ``sample`` (unless it is a FitSample) and run sklearn's k-means
        (k-means++, ``n_init`` restarts)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        prepared = FitSample.of(sample)
        standardizer, z = prepared.standardizer, prepared.z
        if not _has_distinct_rows(z, k):
            dropped = standardizer.input_dim - standardizer.output_dim
            raise ValueError(
                f"cannot make {k} clusters: the sample of {z.shape[0]} descriptors has only "
                f"{_count_distinct_rows(z)} distinct ones (after dropping {dropped} constant "
                "dims); use a larger sample or a smaller k"
            )
        model = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(z)
        return cls(
            standardizer=standardizer,
            centroids=model.cluster_centers_.astype(np.float32),
            seed=seed,
            fit_size=z.shape[0],
            inertia=float(model.inertia_),
            n_iter=int(model.n_iter_),
        )

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def assign(self, x: Any, chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid (int64) and squared distance to it (float32) of each row.

        Distances are ||z||^2 - 2 z.c + ||c||^2 in float64, one chunk of rows against all
        centroids per matrix product; rounding can make that slightly negative, hence
        the clip at 0.
        """
        x = _as_matrix(x, "descriptors", self.standardizer.input_dim)
        centroids = self.centroids.astype(np.float64)
        centroid_sq = np.square(centroids).sum(axis=1)
        labels = np.empty(x.shape[0], dtype=np.int64)
        sq_distances = np.empty(x.shape[0], dtype=np.float32)
        for rows in _row_chunks(x.shape[0], chunk_rows):
            z = self.standardizer.transform(x[rows]).astype(np.float64)
            # ||z||^2 is the same for every centroid: add it to the winner only.
            partial = centroid_sq - 2.0 * (z @ centroids.T)
            nearest = np.argmin(partial, axis=1)
            best = partial[np.arange(nearest.size), nearest] + np.einsum("ij,ij->i", z, z)
            labels[rows] = nearest
            sq_distances[rows] = np.maximum(best, 0.0)
        return labels, sq_distances

    def save(self, path: PathLike) -> None:
        """Write an ``.npz`` (atomically) that :meth:`load` restores exactly."""
        _save_model(
            path,
            _KMEANS_KIND,
            {
                **self.standardizer._arrays(),
                "centroids": self.centroids,
                "seed": np.int64(self.seed),
                "fit_size": np.int64(self.fit_size),
                "inertia": np.float64(self.inertia),
                "n_iter": np.int64(self.n_iter),
            },
        )

    @classmethod
    def load(cls, path: PathLike) -> KMeansLabeler:
        arrays = _load_model(path, _KMEANS_KIND)
        return cls(
            standardizer=Standardizer._from_arrays(arrays),
            centroids=arrays["centroids"].astype(np.float32),
            seed=int(arrays["seed"]),
            fit_size=int(arrays["fit_size"]),
            inertia=float(arrays["inertia"]),
            n_iter=int(arrays["n_iter"]),
        )


def _orient(components: np.ndarray) -> np.ndarray:
    """Flip each component so that its largest-magnitude loading is positive.

    A principal axis has no intrinsic sign; SVD solvers (and sklearn versions) pick
    different ones, which would invert that bit of every code.
    """
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), largest])
    return components * signs[:, None]


@dataclass(frozen=True, eq=False)
class BinaryCoder:
    """Owens' binary variant: bit j of a sound is the sign of its j-th principal component."""

    standardizer: Standardizer
    components: np.ndarray  # (bits, standardizer.output_dim) float32, sign-normalized
    explained_variance_ratio: np.ndarray  # (bits,) float64
    seed: int
    fit_size: int

    @classmethod
    def fit(cls, sample: Any, bits: int, seed: int) -> BinaryCoder:
        """Standardize ``sample`` (unless it is a FitSample) and fit ``bits`` principal
        components to it."""
        prepared = FitSample.of(sample)
        standardizer, z = prepared.standardizer, prepared.z
        if not 1 <= bits <= min(z.shape):
            raise ValueError(
                f"bits must be between 1 and {min(z.shape)} (the sample has {z.shape[0]} "
                f"descriptors with {z.shape[1]} varying dims), got {bits}"
            )
        pca = PCA(n_components=bits, random_state=seed).fit(z)
        return cls(
            standardizer=standardizer,
            components=_orient(pca.components_).astype(np.float32),
            explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float64),
            seed=seed,
            fit_size=z.shape[0],
        )

    @property
    def bits(self) -> int:
        return int(self.components.shape[0])

    def encode(self, x: Any, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
        """(n, bits) uint8 codes: 1 where the projection on a component is positive.

        The standardized sample has zero mean, so PCA's centring is left out.
        """
        x = _as_matrix(x, "descriptors", self.standardizer.input_dim)
        components = self.components.astype(np.float64)
        codes = np.empty((x.shape[0], self.bits), dtype=np.uint8)
        for rows in _row_chunks(x.shape[0], chunk_rows):
            z = self.standardizer.transform(x[rows]).astype(np.float64)
            codes[rows] = z @ components.T > 0
        return codes

    def save(self, path: PathLike) -> None:
        """Write an ``.npz`` (atomically) that :meth:`load` restores exactly."""
        _save_model(
            path,
            _BINARY_KIND,
            {
                **self.standardizer._arrays(),
                "components": self.components,
                "explained_variance_ratio": self.explained_variance_ratio,
                "seed": np.int64(self.seed),
                "fit_size": np.int64(self.fit_size),
            },
        )

    @classmethod
    def load(cls, path: PathLike) -> BinaryCoder:
        arrays = _load_model(path, _BINARY_KIND)
        return cls(
            standardizer=Standardizer._from_arrays(arrays),
            components=arrays["components"].astype(np.float32),
            explained_variance_ratio=arrays["explained_variance_ratio"].astype(np.float64),
            seed=int(arrays["seed"]),
            fit_size=int(arrays["fit_size"]),
        )


class Nearest(NamedTuple):
    """A train example near its centroid; ``index`` is its position in the update stream."""

    index: int
    sq_distance: float
    thumbnail: bytes | None


class ClusterSummary:
    """Per-cluster statistics accumulated over the assignment pass, batch by batch.

    Sizes are kept per split; the nearest examples (whose frames make the montage) come
    from the train split only; tags and squared distances are counted over both splits.
    Memory is bounded by k x (``per_cluster`` thumbnails + distinct tags). Examples are
    numbered in the order they are fed to :meth:`update` (train and val together); that
    number breaks distance ties (earlier wins) and is reported with the nearest examples.
    """

    def __init__(self, k: int, per_cluster: int = NEAREST_PER_CLUSTER):
        if k < 1 or per_cluster < 0:
            raise ValueError(f"need k >= 1 and per_cluster >= 0, got k={k}, {per_cluster=}")
        self.k = k
        self.per_cluster = per_cluster
        self.train_sizes = np.zeros(k, dtype=np.int64)
        self.val_sizes = np.zeros(k, dtype=np.int64)
        self._sq_distance_sums = np.zeros(k)
        self._seen = 0
        self._tags = [Counter[str]() for _ in range(k)]
        # The current nearest train examples, sorted by (cluster, distance, index).
        self._near_cluster = np.zeros(0, dtype=np.int64)
        self._near_distance = np.zeros(0)
        self._near_index = np.zeros(0, dtype=np.int64)
        self._near_thumbnail = np.zeros(0, dtype=object)

    def update(
        self,
        labels: Any,
        sq_distances: Any,
        is_val: Any,
        thumbnails: Sequence[bytes] | None = None,
        tags: Sequence[Sequence[str]] | None = None,
    ) -> None:
        """Add one batch: labels and squared distances from :meth:`KMeansLabeler.assign`,
        whether each example is in the validation split, and optionally each example's
        JPEG thumbnail and AudioSet tag ids."""
        labels, sq_distances, is_val = self._check_batch(labels, sq_distances, is_val)
        n = labels.size
        for name, values in (("thumbnails", thumbnails), ("tags", tags)):
            if values is not None and len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries for {n} labels")

        train = ~is_val
        self.train_sizes += np.bincount(labels[train], minlength=self.k)
        self.val_sizes += np.bincount(labels[is_val], minlength=self.k)
        self._sq_distance_sums += np.bincount(labels, weights=sq_distances, minlength=self.k)
        index = self._seen + np.arange(n, dtype=np.int64)
        self._seen += n
        thumbs = np.full(n, None, dtype=object)
        if thumbnails is not None:
            thumbs[:] = list(thumbnails)
        self._keep_nearest(labels[train], sq_distances[train], index[train], thumbs[train])
        if tags is not None:
            self._count_tags(labels, tags)

    def merge(self, other: ClusterSummary) -> ClusterSummary:
        """Add what ``other`` summarised (another worker's share of the same clustering),
        as if its examples had been fed after this one's; returns self."""
        if (other.k, other.per_cluster) != (self.k, self.per_cluster):
            raise ValueError(
                f"cannot merge a summary of k={other.k}, {other.per_cluster} per cluster "
                f"into one of k={self.k}, {self.per_cluster}"
            )
        self.train_sizes += other.train_sizes
        self.val_sizes += other.val_sizes
        self._sq_distance_sums += other._sq_distance_sums
        for mine, theirs in zip(self._tags, other._tags, strict=True):
            mine.update(theirs)
        self._keep_nearest(
            other._near_cluster,
            other._near_distance,
            other._near_index + self._seen,
            other._near_thumbnail,
        )
        self._seen += other._seen
        return self

    def _check_batch(
        self, labels: Any, sq_distances: Any, is_val: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch's arrays as int64, float64 and bool, or a ValueError saying why not."""
        labels, sq_distances, is_val = (np.asarray(a) for a in (labels, sq_distances, is_val))
        if labels.ndim != 1 or sq_distances.shape != labels.shape or is_val.shape != labels.shape:
            raise ValueError(
                "labels, sq_distances and is_val must be 1-d and of one length, got shapes "
                f"{labels.shape}, {sq_distances.shape}, {is_val.shape}"
            )
        if labels.size and (labels.dtype.kind not in "iu" or is_val.dtype != bool):
            raise ValueError(
                f"labels must be integers and is_val booleans, got {labels.dtype}, {is_val.dtype}"
            )
        if labels.size and not 0 <= labels.min() <= labels.max() < self.k:
            raise ValueError(
                f"labels must lie in [0, {self.k}), got {labels.min()}..{labels.max()}"
            )
        return labels.astype(np.int64), sq_distances.astype(np.float64), is_val.astype(bool)

    def _keep_nearest(
        self, cluster: np.ndarray, distance: np.ndarray, index: np.ndarray, thumbs: np.ndarray
    ) -> None:
        """Merge a batch into the nearest lists: one sort, then rank within each cluster."""
        cluster = np.concatenate([self._near_cluster, cluster])
        distance = np.concatenate([self._near_distance, distance])
        index = np.concatenate([self._near_index, index])
        thumbs = np.concatenate([self._near_thumbnail, thumbs])
        order = np.lexsort((index, distance, cluster))
        sorted_cluster = cluster[order]
        # Rank = position minus the position where the cluster's run starts.
        rank = np.arange(order.size) - np.searchsorted(sorted_cluster, sorted_cluster)
        order = order[rank < self.per_cluster]
        self._near_cluster = cluster[order]
        self._near_distance = distance[order]
        self._near_index = index[order]
        self._near_thumbnail = thumbs[order]

    def _count_tags(self, labels: np.ndarray, tags: Sequence[Sequence[str]]) -> None:
        """Count (cluster, tag) pairs with one np.unique rather than per example."""
        lengths = np.fromiter((len(t) for t in tags), dtype=np.int64, count=len(tags))
        flat = list(chain.from_iterable(tags))
        if not flat:
            return
        names, tag_ids = np.unique(np.array(flat, dtype=str), return_inverse=True)
        pairs = np.repeat(labels, lengths) * names.size + tag_ids
        unique_pairs, counts = np.unique(pairs, return_counts=True)
        for pair, count in zip(unique_pairs.tolist(), counts.tolist(), strict=True):
            cluster, tag = divmod(pair, names.size)
            self._tags[cluster][str(names[tag])] += count

    @property
    def sizes(self) -> np.ndarray:
        """Examples per cluster, both splits."""
        return self.train_sizes + self.val_sizes

    @property
    def mean_sq_distance(self) -> float | None:
        """Mean squared distance to the assigned centroid over all examples (k-means'
        inertia per example); None before any example."""
        return float(self._sq_distance_sums.sum() / self._seen) if self._seen else None

    def clusters_by_size(self) -> list[int]:
        """Cluster ids, largest first (ties: lower id first): the montage's row order."""
        return np.argsort(-self.sizes, kind="stable").tolist()

    def nearest(self, cluster: int) -> list[Nearest]:
        """Up to ``per_cluster`` train examples of ``cluster``, nearest the centroid first."""
        run = self._near_cluster == cluster
        return [
            Nearest(int(i), float(d), t)
            for i, d, t in zip(
                self._near_index[run],
                self._near_distance[run],
                self._near_thumbnail[run],
                strict=True,
            )
        ]

    def top_tags(self, cluster: int, count: int = TOP_TAGS) -> list[tuple[str, int]]:
        """Commonest tags of a cluster, ties broken by tag id so the report is stable."""
        tallies = self._tags[cluster].items()
        return sorted(tallies, key=lambda item: (-item[1], item[0]))[:count]

    def to_json(self, names: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The summary as JSON-ready builtins. A tag's ``name`` comes from ``names``
        (tag id -> display name) when given and known, else it is the id."""
        names = names or {}
        sizes = self.sizes
        clusters = []
        for c in range(self.k):
            clusters.append(
                {
                    "cluster": c,
                    "train": int(self.train_sizes[c]),
                    "val": int(self.val_sizes[c]),
                    "total": int(sizes[c]),
                    "mean_sq_distance": (
                        float(self._sq_distance_sums[c] / sizes[c]) if sizes[c] else None
                    ),
                    "top_tags": [
                        {"id": tag, "name": names.get(tag, tag), "count": count}
                        for tag, count in self.top_tags(c)
                    ],
                    "nearest": [
                        {"index": near.index, "sq_distance": near.sq_distance}
                        for near in self.nearest(c)
                    ],
                }
            )
        return {
            "k": self.k,
            "examples": {
                "train": int(self.train_sizes.sum()),
                "val": int(self.val_sizes.sum()),
                "total": self._seen,
            },
            "mean_sq_distance": self.mean_sq_distance,
            "clusters": clusters,
        }


def _tile(jpeg: bytes, cell: tuple[int, int]) -> np.ndarray:
    """A JPEG decoded, shrunk or enlarged to fit ``cell`` (w, h) keeping its aspect ratio,
    centred on white; grey if it does not decode (a figure must not stop a dataset)."""
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            fitted = ImageOps.pad(image.convert("RGB"), cell, color=(255, 255, 255))
    except (OSError, ValueError):  # PIL's UnidentifiedImageError is an OSError
        return np.full((cell[1], cell[0], 3), 160, np.uint8)
    return np.asarray(fitted)


def plot_montage(
    rows: Sequence[tuple[str, Sequence[bytes]]],
    path: PathLike,
    title: str,
    *,
    cell: tuple[int, int] = (128, 96),
    gap: int = 4,
    dpi: int = 100,
) -> None:
    """One row of example frames per cluster with its title on the left (the paper's
    Figure 1), written atomically as a PNG.

    The thumbnails are pasted into one image drawn by a single ``imshow`` rather than
    one axes per frame, which keeps a 30 x 8 montage well under a second. Rows shorter
    than the longest are left blank on the right.
    """
    if not rows:
        raise ValueError("a montage needs at least one row")
    cols = max(1, *(len(thumbs) for _, thumbs in rows))
    width, height = cell
    pitch_x, pitch_y = width + gap, height + gap
    canvas = np.full((len(rows) * pitch_y - gap, cols * pitch_x - gap, 3), 255, dtype=np.uint8)
    for r, (_, thumbs) in enumerate(rows):
        for c, jpeg in enumerate(thumbs):
            y, x = r * pitch_y, c * pitch_x
            canvas[y : y + height, x : x + width] = _tile(jpeg, cell)

    # One figure pixel per canvas pixel; bbox_inches="tight" then grows the figure to
    # fit the row titles and the title, however long they are.
    fig = Figure(figsize=(canvas.shape[1] / dpi, canvas.shape[0] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(
        [r * pitch_y + height / 2 for r in range(len(rows))],
        [row_title for row_title, _ in rows],
        fontsize=9,
    )
    ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=12)
    write_atomically(
        path,
        lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1),
    )


# The settings a sample too small for them may lower (LabelSettings.reducible).
REDUCIBLE_SETTINGS = ("num_clusters", "num_bits")


@dataclass(frozen=True)
class LabelSettings:
    """How descriptors become label fields (the flags of prepare and cluster).

    ``reducible`` names the settings of REDUCIBLE_SETTINGS the user left at their
    defaults: where the fit sample cannot support them (a first try on a dozen clips),
    they are lowered to what it allows, with a warning. A value asked for explicitly
    that the sample cannot support is an error.
    """

    num_clusters: tuple[int, ...] = option(
        (30,),
        "K of k-means, one label field label/<descriptor>_k<K> per descriptor and K "
        "(e.g. 2,5,10,30,60 for the cluster-count sweep). Left at the default, K is lowered to "
        "the distinct descriptors of a smaller sample, with a warning; a K given that the "
        "sample cannot support is an error.",
    )
    num_bits: int = option(
        30,
        "Bits of Owens' binary codes (PCA to this many dimensions, sign of each): the field "
        "label/<descriptor>_bits<B>. 0 turns them off. Left at the default, B is lowered to "
        "what a smaller sample allows (its size or varying dims), with a warning; a B given "
        "that the sample cannot support is an error.",
        lower=0,
    )
    max_samples: int = option(
        500_000,
        "Fit the scaler, k-means and PCA on at most this many train frames, chosen by a hash "
        "of their id (memory: this many x the descriptor's size x 4 bytes); every frame is "
        "then labelled in a streaming pass.",
        lower=1,
        flag="kmeans_max_samples",
    )
    n_init: int = option(
        DEFAULT_N_INIT, "k-means restarts; the best is kept.", lower=1, flag="kmeans_n_init"
    )
    seed: int = option(0, "Random seed of k-means and PCA.")
    montage_per_cluster: int = option(
        8,
        "Frames shown per cluster in clusters/<descriptor>_k<K>.png (the frames nearest the "
        "centroid).",
        lower=1,
    )
    reducible: frozenset[str] = frozenset()

    def __post_init__(self):
        if not self.num_clusters or min(self.num_clusters) < 2:
            raise ValueError(f"--num_clusters must be integers >= 2, got {self.num_clusters}")
