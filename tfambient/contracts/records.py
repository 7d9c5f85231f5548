"""A prepared record: one ``tf.train.Example`` per frame, its keys, types and meaning.

tfambient-prepare writes these keys, labelling adds the ``label/*`` fields, the input
pipeline and the report read them; all of them name a key through this module. A schema
entry (:class:`Field`) is what dataset.json's ``schema`` records for each key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

CLIP_ID = "clip/id"
CLIP_YTID = "clip/ytid"
CLIP_START = "clip/start_s"
CLIP_END = "clip/end_s"
FRAME_INDEX = "frame/index"
FRAME_TIME = "frame/time_s"
AUDIO_START = "audio/start_s"
IMAGE = "image/encoded"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
AUDIOSET_LABELS = "audioset/labels"
SOUND_PREFIX = "sound/"
LABEL_PREFIX = "label/"


@dataclass(frozen=True)
class Field:
    """A key's value type (bytes, float, int64), values per record (None: varies), meaning."""

    kind: Literal["bytes", "float", "int64"]
    length: int | None
    doc: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "length": self.length, "doc": self.doc}

    @classmethod
    def from_json(cls, entry: dict) -> Field:
        return cls(entry["kind"], entry["length"], entry["doc"])


BASE_FIELDS: dict[str, Field] = {
    CLIP_ID: Field("bytes", 1, "{YTID}_{start:.3f}"),
    CLIP_YTID: Field("bytes", 1, "YouTube id"),
    CLIP_START: Field("float", 1, "segment start in the video, from the CSV"),
    CLIP_END: Field("float", 1, "segment end in the video, from the CSV"),
    FRAME_INDEX: Field("int64", 1, "which of the clip's frames"),
    FRAME_TIME: Field("float", 1, "time of the frame, seconds from the segment start"),
    AUDIO_START: Field("float", 1, "start of its audio window, seconds from the segment start"),
    IMAGE: Field("bytes", 1, "JPEG frame, short side = prepare's --short_side"),
    IMAGE_HEIGHT: Field("int64", 1, "JPEG height"),
    IMAGE_WIDTH: Field("int64", 1, "JPEG width"),
    AUDIOSET_LABELS: Field("bytes", None, "AudioSet MIDs of the clip"),
}


def sound_key(descriptor: str) -> str:
    """``texture`` -> ``sound/texture``."""
    return f"{SOUND_PREFIX}{descriptor}"


def is_label_key(key: str) -> bool:
    return key.startswith(LABEL_PREFIX)


_LABEL_NAME = re.compile(r"(?P<descriptor>.+)_(?:k(?P<k>\d+)|bits(?P<bits>\d+))")


@dataclass(frozen=True)
class LabelName:
    """A pseudo-label field: ``<descriptor>_k<K>`` (k-means cluster id in [0, K)) or
    ``<descriptor>_bits<B>`` (B PCA sign bits); stored under ``label/<name>``."""

    descriptor: str
    kind: Literal["k", "bits"]
    size: int

    @classmethod
    def parse(cls, text: str) -> LabelName:
        """``texture_k30``, ``label/texture_k30`` or ``mfcc_bits30``; ValueError otherwise."""
        match = _LABEL_NAME.fullmatch(text.removeprefix(LABEL_PREFIX))
        if match is None:
            raise ValueError(
                f"{text!r} is not a label name (<descriptor>_k<K> or <descriptor>_bits<B>)"
            )
        kind = "k" if match["k"] else "bits"
        return cls(match["descriptor"], kind, int(match["k"] or match["bits"]))

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return _LABEL_NAME.fullmatch(text.removeprefix(LABEL_PREFIX)) is not None

    @property
    def name(self) -> str:
        return f"{self.descriptor}_{self.kind}{self.size}"

    @property
    def key(self) -> str:
        return f"{LABEL_PREFIX}{self.name}"

    @property
    def length(self) -> int:
        """Values per record: one cluster id, or one value per bit."""
        return 1 if self.kind == "k" else self.size

    def field(self) -> Field:
        """The schema entry of this label."""
        if self.kind == "k":
            doc = f"k-means cluster of {sound_key(self.descriptor)}, in [0, {self.size})"
        else:
            doc = f"PCA sign bits of {sound_key(self.descriptor)}"
        return Field("int64", self.length, doc)

    def __str__(self) -> str:
        return self.name
