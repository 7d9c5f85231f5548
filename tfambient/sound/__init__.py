"""Sound descriptors: audio windows -> fixed-size vectors whose clusters become labels.

No TensorFlow here, so preparation workers stay light. Every descriptor is registered by
name with its dimension and parameters; datasets record both in their manifest so that a
cluster id can always be traced back to what was computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tfambient.sound import mfcc, texture
from tfambient.sound.audio import InvalidAudio, as_batch, mono_batch

__all__ = [
    "DESCRIPTORS",
    "Described",
    "Descriptor",
    "InvalidAudio",
    "describe",
    "describe_windows",
    "parse_names",
]


@dataclass(frozen=True)
class Descriptor:
    """A summary of a base feature; descriptors sharing a base compute it once per batch.

    `features` takes validated float64 mono windows (audio.mono_batch), which `describe`
    prepares once for all the descriptors it computes.
    """

    name: str
    dim: int
    features: Callable[[np.ndarray, int], np.ndarray]
    summarize: Callable[[np.ndarray], np.ndarray]
    params: Mapping[str, object]
    doc: str

    def __call__(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """One window, (n,) or (n, channels) -> (dim,) float32."""
        return describe(as_batch(samples), rate, [self.name])[self.name][0]


DESCRIPTORS: dict[str, Descriptor] = {
    d.name: d
    for d in (
        Descriptor(
            "texture",
            texture.TEXTURE_DIM,
            texture.texture_of_mono,
            lambda x: x,
            texture.PARAMS,
            "McDermott-Simoncelli sound-texture statistics (Owens et al.)",
        ),
        Descriptor(
            "mfcc",
            mfcc.NUM_COEFFICIENTS * mfcc.NUM_FRAMES,
            mfcc.mfcc_frames_of_mono,
            mfcc.flatten,
            mfcc.PARAMS,
            "20 MFCCs x 162 frames, flattened (2019 reproduction)",
        ),
        Descriptor(
            "mfcc_summary",
            2 * mfcc.NUM_COEFFICIENTS,
            mfcc.mfcc_frames_of_mono,
            mfcc.summarize,
            mfcc.PARAMS,
            "per-coefficient mean and std of the 20 MFCCs over time",
        ),
    )
}


def parse_names(names: str | Iterable[str]) -> list[str]:
    """'texture,mfcc' or an iterable of names -> validated, de-duplicated names in order."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    chosen = list(dict.fromkeys(n for n in names if n))
    if not chosen:
        raise ValueError(f"no descriptor named; choose from {', '.join(DESCRIPTORS)}")
    unknown = [n for n in chosen if n not in DESCRIPTORS]
    if unknown:
        raise ValueError(
            f"unknown descriptor {', '.join(unknown)}; choose from {', '.join(DESCRIPTORS)}"
        )
    return chosen


def describe(windows: np.ndarray, rate: int, names: str | Iterable[str]) -> dict[str, np.ndarray]:
    """(B, n) or (B, n, channels) windows -> {name: (B, dim) float32} for each named descriptor."""
    chosen = parse_names(names)
    samples = mono_batch(windows, rate)
    features: dict[Callable, np.ndarray] = {}
    out = {}
    for name in chosen:
        descriptor = DESCRIPTORS[name]
        if descriptor.features not in features:
            features[descriptor.features] = descriptor.features(samples, rate)
        out[name] = descriptor.summarize(features[descriptor.features])
    return out


@dataclass
class Described:
    """What describe_windows computed: one row per window, in the order given.

    ``failures`` maps the index of each window that no descriptor could be computed from to
    the reason; its rows are NaN.
    """

    values: dict[str, np.ndarray]
    failures: dict[int, str] = field(default_factory=dict)


def describe_windows(
    windows: Sequence[np.ndarray], rates: Sequence[int], names: str | Iterable[str]
) -> Described:
    """Windows of any rates and lengths, e.g. those of several clips, described together.

    Windows of the same rate and shape go through ``describe`` as one batch, so that a
    worker can pool the windows of many clips. A window that cannot be described (see
    InvalidAudio) is listed in ``failures`` and does not cost the others their rows.
    """
    if len(windows) != len(rates):
        raise ValueError(f"{len(windows)} windows but {len(rates)} rates")
    chosen = parse_names(names)
    values = {n: np.full((len(windows), DESCRIPTORS[n].dim), np.nan, np.float32) for n in chosen}
    failures: dict[int, str] = {}
    batches: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for index, (window, rate) in enumerate(zip(windows, rates, strict=True)):
        batches.setdefault((rate, np.shape(window)), []).append(index)
    for (rate, _), indices in batches.items():
        try:
            described = describe(np.stack([windows[i] for i in indices]), rate, chosen)
        except InvalidAudio:
            # One bad window refuses the batch: describe them one by one to find it.
            for i in indices:
                try:
                    _put(values, [i], describe(as_batch(windows[i]), rate, chosen))
                except InvalidAudio as error:
                    failures[i] = str(error)
            continue
        _put(values, indices, described)
    return Described(values, failures)


def _put(values: dict[str, np.ndarray], rows: list[int], described: dict[str, np.ndarray]):
    for name, vectors in described.items():
        values[name][rows] = vectors
