"""The scene-classification tree: pictures of the six scenes, one folder per scene, for
train and val (the layout of ImageNet and Places205 that tfambient-probe reads).

A picture is drawn as a clip's first frame is (the scene's picture under a random palette
and light, its objects and clutter, sensor grain), from a random stream of its own: none is
a frame of a corpus clip, so a probe measures what the pretext task taught about scenes it
never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfambient.world.clips import FPS, scene_frames
from tfambient.world.scenes import SCENE_BY_NAME, SCENES

SCENE_TREE = "scenes"
MIN_SCENE_IMAGES = 3  # two train and one val picture per scene


def split_sizes(per_scene: int) -> dict[str, int]:
    """Pictures per scene in each split: a third val (rounded down), the rest train."""
    val = per_scene // 3
    return {"train": per_scene - val, "val": val}


@dataclass(frozen=True)
class SceneJob:
    path: Path
    scene: str
    seed: tuple[int, ...]


def plan_scene_tree(root: Path, per_scene: int, seed: int, stream: int) -> list[SceneJob]:
    """root/<split>/<scene>/NNNNN.jpg for every picture, each with its own seed."""
    return [
        SceneJob(root / split / scene.name / f"{i:05d}.jpg", scene.name, (seed, stream, s, c, i))
        for s, (split, count) in enumerate(split_sizes(per_scene).items())
        for c, scene in enumerate(SCENES)
        for i in range(count)
    ]


def scene_picture(job: SceneJob) -> np.ndarray:
    """(H, W, 3) uint8: the job's picture, a one-frame clip of its scene."""
    return scene_frames(SCENE_BY_NAME[job.scene], 1 / FPS, np.random.default_rng(job.seed))[0]
