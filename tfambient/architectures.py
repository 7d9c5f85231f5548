"""One entry per backbone architecture: all that the rest of tfambient knows of it.

Training, VOC transfer, the report and the configs ask this registry, never the name: a new
backbone is one entry here and its builder in tfambient/models/. The registry is plain data
(builders by import path), so configs and flag definitions read it without TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROBE_DIMS = 9000  # a probed conv map is pooled to about this many numbers


def check_width(width: float) -> None:
    """A backbone can be any positive fraction (or multiple) of its published width."""
    if not width > 0:
        raise ValueError(f"--width must be above 0, got {width}")


def channels(published: int, width: float) -> int:
    """A conv's channels in a backbone ``width`` times as wide as published (at least 1)."""
    check_width(width)
    return max(1, round(published * width))


@dataclass(frozen=True)
class Architecture:
    """A backbone: how to build it, and what each stage needs to know of it."""

    name: str
    builder: str  # "module:function" returning a functional keras.Model of named features
    default_feature: str  # the feature a pretext or VOC head reads
    report_layers: tuple[str, str]  # Figure 2: the last conv map and the last vector
    head_layers: tuple[str, ...]  # backbone layers that head-mode fine-tuning trains
    options: tuple[str, ...] = ("width",)  # config fields the builder takes (dropout, ...)
    fixed: Mapping[str, Any] = field(default_factory=dict)  # builder arguments of this entry
    # The linear probe's layers, in order, and the grid each is average-pooled to: a conv map
    # of C channels to g x g cells, g chosen so that C * g * g is about PROBE_DIMS (Zhang et
    # al.'s protocol) at width 1; 0 for a vector, taken as it is.
    probe_grids: Mapping[str, int] = field(default_factory=dict)

    def build(self, **kwargs: Any):
        """The backbone, built with this entry's fixed arguments and ``kwargs``."""
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)(**{**self.fixed, **kwargs})

    def options_from(self, config: object) -> dict[str, Any]:
        """The builder arguments ``config`` (a training or VOC config) sets."""
        return {name: getattr(config, name) for name in self.options if hasattr(config, name)}


_ALEXNET = {
    "builder": "tfambient.models.alexnet:alexnet",
    "default_feature": "fc7",
    "report_layers": ("conv5", "fc7"),
    "head_layers": ("fc6", "fc7"),
    "options": ("dropout", "fc_units", "width"),
    # 64, 192, 384, 256, 256 channels: 9216, 9408, 9600, 9216, 9216 dimensions at 224 px.
    "probe_grids": {
        "conv1": 12,
        "conv2": 7,
        "conv3": 5,
        "conv4": 6,
        "conv5": 6,
        "fc6": 0,
        "fc7": 0,
    },
}
ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture("alexnet", **_ALEXNET),
        Architecture("alexnet_bn", **_ALEXNET, fixed={"batch_norm": True, "name": "alexnet_bn"}),
        Architecture(
            "resnet18",
            builder="tfambient.models.resnet:resnet18",
            default_feature="pool",
            report_layers=("stage4", "pool"),
            head_layers=(),
            # 64, 128, 256, 512 channels: 9216, 8192, 9216, 8192 dimensions at 224 px.
            probe_grids={"stage1": 12, "stage2": 8, "stage3": 6, "stage4": 4, "pool": 0},
        ),
    )
}


def get(name: str) -> Architecture:
    """The entry called ``name``; ValueError naming the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(ARCHITECTURES)}") from None
