"""Average precision for PASCAL VOC 2007 classification, both ways the literature reports it.

* :func:`voc07_ap`, the devkit's VOCevalcls 11-point interpolated AP (what Owens et al. and
  the VOC07 leaderboards report), reproduced bit for bit:

  - images with target 0 (only difficult objects) are ignored; the rest are ranked by score,
    descending. Tied scores keep their original (index) order, because the devkit ranks with
    MATLAB's ``sort(-out)``, which is stable. Ties therefore matter: a positive listed before a
    tied negative counts as found first.
  - the thresholds are MATLAB's ``0:0.1:1`` exactly. MATLAB builds a colon range from both ends
    (``0 + k*0.1`` for the first half, ``1 - k*0.1`` for the second), so its fourth threshold is
    ``3*0.1 = 0.30000000000000004``, not 0.3: a point at recall exactly 0.3 (e.g. 3 of 10
    positives) does not count for that threshold, in the devkit and here. The other ten equal
    the decimals 0, 0.1, ..., 1.

* :func:`sklearn_ap`, the area under the PR curve as ``sklearn.metrics.average_precision_score``
  computes it on the non-ignored images (what the fine-tuning code of Krähenbühl et al. and
  DeepCluster report). It treats a run of tied scores as one threshold.

A class without positives (after dropping the ignored images) has no AP: both return NaN (the
devkit would say 0, scikit-learn would warn and say 0), and a mAP is the mean over the classes
whose AP is finite, with the others named in :attr:`APResult.missing`.

numpy and scikit-learn only: no TensorFlow, so reports and tests stay light.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from tfambient.contracts.files import write_text
from tfambient.voc import CLASSES

# Column headers of the paper tables (Owens et al., Table 2), in CLASSES order.
SHORT_NAMES = (
    "aero",
    "bike",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "table",
    "dog",
    "horse",
    "mbike",
    "person",
    "plant",
    "sheep",
    "sofa",
    "train",
    "tv",
)

_TARGET_VALUES = (-1, 0, 1)
_MISSING = "–"  # how a NaN AP is shown in markdown tables


def _devkit_thresholds() -> np.ndarray:
    """MATLAB's ``0:0.1:1`` bit for bit: the first half counted up from 0, the rest down from 1."""
    k = np.arange(11)
    return np.where(k <= 5, k * 0.1, 1.0 - (10 - k) * 0.1)


DEVKIT_THRESHOLDS = _devkit_thresholds()


def _validated(scores: Any, targets: Any, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 scores and int8 targets, or a ValueError that says what is wrong with them."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ in shape")
    if scores.ndim != ndim:
        raise ValueError(f"expected {ndim}-d scores and targets, got shape {scores.shape}")
    finite = np.isfinite(scores)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"scores contain NaN or Inf (first at index {where})")
    known = np.isin(targets, _TARGET_VALUES)
    if not known.all():
        found = np.unique(targets[~known])[:5].tolist()
        raise ValueError(f"targets must be 1 (present), 0 (ignore) or -1 (absent); found {found}")
    return scores, targets.astype(np.int8)


def _ranked_positives(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Whether each non-ignored image is a positive, best score first (ties: index order)."""
    kept = targets != 0
    order = np.argsort(-scores[kept], kind="stable")
    return targets[kept][order] > 0


def voc07_ap(scores: Any, targets: Any) -> float:
    """The devkit's 11-point AP of one class; NaN when it has no positives (see module doc)."""
    scores, targets = _validated(scores, targets, ndim=1)
    positives = _ranked_positives(scores, targets)
    num_positives = int(positives.sum())
    if num_positives == 0:
        return math.nan
    tp = np.cumsum(positives)
    fp = np.cumsum(~positives)
    recall = tp / num_positives
    precision = tp / (tp + fp)
    # best_from[i] = max(precision[i:]); the points with recall >= t are a suffix, as recall
    # never decreases, and the sentinel 0 stands for an empty one.
    best_from = np.append(np.maximum.accumulate(precision[::-1])[::-1], 0.0)
    first = np.searchsorted(recall, DEVKIT_THRESHOLDS, side="left")
    return float(best_from[first].mean())


def sklearn_ap(scores: Any, targets: Any) -> float:
    """scikit-learn's AP of one class on the non-ignored images; NaN when it has no positives."""
    scores, targets = _validated(scores, targets, ndim=1)
    kept = targets != 0
    positives = targets[kept] > 0
    if not positives.any():
        return math.nan
    return float(average_precision_score(positives, scores[kept]))


def _mean_of_finite(aps: np.ndarray) -> float:
    """mAP over the classes that have an AP; NaN when none has."""
    finite = aps[np.isfinite(aps)]
    return float(finite.mean()) if finite.size else math.nan


def _percent(ap: float, missing: str) -> str:
    """An AP as a table cell: percent with one decimal, `missing` for NaN."""
    return missing if math.isnan(ap) else f"{100 * ap:.1f}"


def _json_number(value: float) -> float | None:
    """NaN has no JSON spelling: it becomes null."""
    return None if math.isnan(value) else float(value)


def _from_json_number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in lines)


@dataclass(frozen=True, eq=False)
class APResult:
    """Per-class AP by both definitions (CLASSES order), their mAPs, the classes left out.

    The arrays are read-only copies, so a result cannot change after it is made.
    """

    voc07: np.ndarray
    sklearn: np.ndarray
    map_voc07: float
    map_sklearn: float
    missing: tuple[str, ...]

    def __post_init__(self) -> None:
        for field in ("voc07", "sklearn"):
            values = np.array(getattr(self, field), dtype=np.float64)
            if values.shape != (len(CLASSES),):
                raise ValueError(f"{field} must hold {len(CLASSES)} APs, got {values.shape}")
            values.flags.writeable = False
            object.__setattr__(self, field, values)
        object.__setattr__(self, "map_voc07", float(self.map_voc07))
        object.__setattr__(self, "map_sklearn", float(self.map_sklearn))
        object.__setattr__(self, "missing", tuple(self.missing))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        return {
            "map_voc07": _json_number(self.map_voc07),
            "map_sklearn": _json_number(self.map_sklearn),
            "per_class": {
                name: {"voc07": _json_number(voc07), "sklearn": _json_number(sk)}
                for name, voc07, sk in zip(CLASSES, self.voc07, self.sklearn, strict=True)
            },
            "missing": list(self.missing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> APResult:
        """The inverse of :meth:`to_dict` (e.g. of a saved ``ap_table.json``)."""
        per_class = data["per_class"]
        if set(per_class) != set(CLASSES):
            raise ValueError(f"per_class must name the {len(CLASSES)} VOC classes exactly")
        return cls(
            voc07=[_from_json_number(per_class[name]["voc07"]) for name in CLASSES],
            sklearn=[_from_json_number(per_class[name]["sklearn"]) for name in CLASSES],
            map_voc07=_from_json_number(data["map_voc07"]),
            map_sklearn=_from_json_number(data["map_sklearn"]),
            missing=tuple(data["missing"]),
        )

    def _rows(self, name: str, missing: str) -> list[list[str]]:
        """One row per AP definition: label, 20 per-class cells, mAP."""
        definitions = [
            (f"{name}, VOC07 11-point", self.voc07, self.map_voc07),
            (f"{name}, sklearn AP", self.sklearn, self.map_sklearn),
        ]
        return [
            [label, *(_percent(ap, missing) for ap in aps), _percent(mean, missing)]
            for label, aps, mean in definitions
        ]

    def markdown(self, name: str = "ours") -> str:
        """The paper's Table 2 layout: AP in %, one row per definition, '–' where undefined."""
        return _markdown_table(["", *SHORT_NAMES, "mAP"], self._rows(name, _MISSING))

    def csv_text(self, name: str = "ours") -> str:
        """The markdown table as CSV; an undefined AP is an empty cell, so columns stay numeric."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["method", *SHORT_NAMES, "mAP"])
        writer.writerows(self._rows(name, ""))
        return out.getvalue()

    def write(
        self, directory: str | os.PathLike[str], stem: str = "ap_table", name: str = "ours"
    ) -> dict[str, Path]:
        """Write <stem>.md, .csv and .json into `directory`, each atomically; returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        texts = {
            "md": self.markdown(name),
            "csv": self.csv_text(name),
            "json": json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n",
        }
        paths = {}
        for suffix, text in texts.items():
            paths[suffix] = directory / f"{stem}.{suffix}"
            write_text(paths[suffix], text)
        return paths


def class_aps(scores: Any, targets: Any) -> APResult:
    """AP of every class by both definitions from (n, 20) scores and targets in {1, 0, -1}."""
    scores, targets = _validated(scores, targets, ndim=2)
    if scores.shape[1] != len(CLASSES):
        raise ValueError(f"expected {len(CLASSES)} class columns, got {scores.shape[1]}")
    columns = range(len(CLASSES))
    voc07 = np.array([voc07_ap(scores[:, c], targets[:, c]) for c in columns])
    sklearn = np.array([sklearn_ap(scores[:, c], targets[:, c]) for c in columns])
    has_positives = (targets > 0).any(axis=0)
    return APResult(
        voc07=voc07,
        sklearn=sklearn,
        map_voc07=_mean_of_finite(voc07),
        map_sklearn=_mean_of_finite(sklearn),
        missing=tuple(name for name, ok in zip(CLASSES, has_positives, strict=True) if not ok),
    )


@dataclass(frozen=True)
class PublishedRow:
    """A published AlexNet VOC07 test mAP, in percent as printed in the paper."""

    method: str
    head_pct: float  # fc6-fc8 trained, convolutional layers frozen
    all_pct: float  # every layer trained
    note: str = ""


PUBLISHED = (
    PublishedRow("ImageNet labels", 78.9, 79.9),
    PublishedRow("random init", 29.0, 33.2, "all: 53.3 with Gaussian init, longer"),
    PublishedRow("Owens et al., sound texture", 52.3, 61.3),
    PublishedRow("2019 reproduction, sound texture", 52.8, 55.1),
)

_PUBLISHED_MODES = ("head", "all")


def published_markdown(ours: Mapping[str, float] | None = None, name: str = "ours") -> str:
    """The published rows, and optionally ours: mAP as a fraction by mode, e.g. {"head": 0.41}."""
    header = ["AlexNet, VOC07 test mAP (%)", "head (fc6-8)", "all", "note"]
    rows = [[row.method, f"{row.head_pct:g}", f"{row.all_pct:g}", row.note] for row in PUBLISHED]
    if ours is not None:
        unknown = sorted(set(ours) - set(_PUBLISHED_MODES))
        if unknown:
            raise ValueError(f"published rows have modes {_PUBLISHED_MODES}, not {unknown}")
        cells = [_percent(float(ours.get(mode, math.nan)), _MISSING) for mode in _PUBLISHED_MODES]
        rows.append([name, *cells, ""])
    return _markdown_table(header, rows)
