"""Writing the world: the corpus (clips, segments.csv, the ontology), the VOC 2007 tree and
the scene-classification tree, planned from the seed, drawn by worker processes under a hidden
staging folder, moved into place when complete, and world.json, its manifest, last."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from tfambient import media
from tfambient.audioset import write_segments_csv
from tfambient.contracts.files import write_text
from tfambient.voc import CLASSES
from tfambient.voc.dataset import VocObject, targets_of, write_annotation, write_image_sets
from tfambient.world.clips import CLIP_DURATION_S, FPS, scene_audio, scene_frames
from tfambient.world.pictures import CLIP_SIZE
from tfambient.world.scene_tree import (
    MIN_SCENE_IMAGES,
    SCENE_TREE,
    SceneJob,
    plan_scene_tree,
    scene_picture,
    split_sizes,
)
from tfambient.world.scenes import SCENE_BY_NAME, SCENE_NAMES, SCENES
from tfambient.world.sounds import RATE
from tfambient.world.voc_tree import VOC_SIZE, _primaries, voc_image, voc_split_sizes

WORLD_FORMAT = "tfambient synthetic world"
WORLD_VERSION = 2  # 2: the scene-classification tree
MANIFEST = "world.json"
PARTIAL = ".synth-partial"  # hidden: media indexing and listings skip it
MIN_DURATION_S = 3.75  # tfambient-prepare's default audio window
MIN_VOC_IMAGES = 4 * len(CLASSES)  # every class positive in train, val and test
_CLIP_STREAM, _VOC_STREAM, _PLAN_STREAM, _SCENE_STREAM = 0, 1, 2, 3
TREES = ("corpus", "VOCdevkit", SCENE_TREE)
JPEG_QUALITY = 90


def world_ytid(i: int) -> str:
    """An 11-character id with '-' and '_' as real YouTube ids have, unlike the toy corpus's."""
    return f"-w_{i:08d}"


@dataclass(frozen=True)
class _ClipJob:
    path: Path
    scene: str
    duration_s: float
    seed: tuple[int, ...]


@dataclass(frozen=True)
class _ImageJob:
    voc2007: Path
    image_id: str
    primary: str
    seed: tuple[int, ...]


def _write_clip(job: _ClipJob) -> None:
    """One clip; its picture and its sound come from independent streams of its seed."""
    scene = SCENE_BY_NAME[job.scene]
    pictures, sounds = np.random.default_rng(job.seed).spawn(2)
    frames = scene_frames(scene, job.duration_s, pictures)
    media.write_video(job.path, frames, FPS, scene_audio(scene, job.duration_s, sounds), RATE)


def _write_image(job: _ImageJob) -> tuple[VocObject, ...]:
    """One JPEG and its annotation; returns the image's objects for the split lists."""
    drawn = voc_image(job.primary, np.random.default_rng(job.seed))
    buffer = io.BytesIO()
    Image.fromarray(drawn.pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    (job.voc2007 / "JPEGImages" / f"{job.image_id}.jpg").write_bytes(buffer.getvalue())
    height, width = drawn.pixels.shape[:2]
    path = job.voc2007 / "Annotations" / f"{job.image_id}.xml"
    write_annotation(path, f"{job.image_id}.jpg", width, height, drawn.objects)
    return drawn.objects


def _write_scene_picture(job: SceneJob) -> None:
    """One picture of the scene tree."""
    Image.fromarray(scene_picture(job)).save(job.path, format="JPEG", quality=JPEG_QUALITY)


def _plan_corpus(corpus: Path, clips: int, duration_s: float, seed: int):
    """(jobs, CSV rows): scenes balanced and shuffled, segment starts at random seconds."""
    rng = np.random.default_rng([seed, _PLAN_STREAM])
    scenes = np.asarray(SCENE_NAMES)[rng.permutation(np.arange(clips) % len(SCENES))]
    starts = rng.integers(0, 300, clips).astype(float)
    jobs, rows = [], []
    for i, (scene, start) in enumerate(zip(scenes, starts, strict=True)):
        ytid = world_ytid(i)
        path = corpus / "clips" / f"{ytid}_{start:.3f}.mp4"
        jobs.append(_ClipJob(path, str(scene), duration_s, (seed, _CLIP_STREAM, i)))
        rows.append((ytid, start, start + duration_s, SCENE_BY_NAME[scene].mid))
    return jobs, rows


def _plan_voc(voc2007: Path, sizes: dict[str, int], seed: int) -> dict[str, list[_ImageJob]]:
    """Image jobs per split, ids numbered on through train, val and test."""
    rng = np.random.default_rng([seed, _PLAN_STREAM, _VOC_STREAM])
    jobs: dict[str, list[_ImageJob]] = {}
    first = 1
    for split, count in sizes.items():
        ids = [f"{first + i:06d}" for i in range(count)]
        primaries = _primaries(count, rng)
        jobs[split] = [
            _ImageJob(voc2007, image_id, str(cls), (seed, _VOC_STREAM, int(image_id)))
            for image_id, cls in zip(ids, primaries, strict=True)
        ]
        first += count
    return jobs


def _write_ontology(path: Path) -> None:
    lines = [f'{i},{scene.mid},"{scene.display_name}"' for i, scene in enumerate(SCENES)]
    path.write_text("index,mid,display_name\n" + "\n".join(lines) + "\n")


def _call(call: tuple[Callable, object]):
    function, job = call
    return function(job)


def _results(calls: list[tuple[Callable, object]], num_workers: int) -> Iterator:
    """``function(job)`` of each call, in order, from ``num_workers`` processes (0: this one).
    They fork from a clean server: the caller may hold threads (TensorFlow)."""
    if num_workers == 0:
        yield from map(_call, calls)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    chunk = max(1, len(calls) // (16 * num_workers))
    with ProcessPoolExecutor(num_workers, mp_context=context) as pool:
        yield from pool.map(_call, calls, chunksize=chunk)


def _check_settings(
    clips: int, voc_images: int, scene_images: int, duration_s: float, num_workers: int
) -> None:
    if clips < 1:
        raise ValueError(f"clips must be at least 1, got {clips}")
    if voc_images < MIN_VOC_IMAGES:
        raise ValueError(
            f"voc_images must be at least {MIN_VOC_IMAGES} (each of the {len(CLASSES)} classes "
            f"positive in train, val and twice in test), got {voc_images}"
        )
    if duration_s < MIN_DURATION_S:
        raise ValueError(
            f"duration_s must be at least {MIN_DURATION_S} (tfambient-prepare's audio window), "
            f"got {duration_s}"
        )
    if num_workers < 0:
        raise ValueError(f"num_workers must be 0 (this process) or more, got {num_workers}")
    if scene_images != 0 and scene_images < MIN_SCENE_IMAGES:
        raise ValueError(
            f"scene_images must be 0 (no scene tree) or at least {MIN_SCENE_IMAGES} (two train "
            f"and one val picture per scene), got {scene_images}"
        )


def read_manifest(output_dir: str | os.PathLike[str]) -> dict | None:
    """The world.json of a finished world in ``output_dir``, or None if there is none."""
    path = Path(output_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable ({error}); remove it or pass overwrite") from None
    if not isinstance(manifest, dict) or manifest.get("format") != WORLD_FORMAT:
        raise ValueError(f"{path}: not a {WORLD_FORMAT} manifest")
    return manifest


def _check_replaceable(output: Path, existing: dict | None, settings: dict) -> None:
    """Refuse to replace a world made with other settings, or a tree we did not finish."""
    if existing is not None:
        old = existing.get("settings", {})
        changed = ", ".join(
            f"{key} {old.get(key)} (asked {value})"
            for key, value in settings.items()
            if old.get(key) != value
        )
        raise ValueError(
            f"{output} holds a world written with other settings: {changed}; "
            "pass overwrite (--overwrite) to replace it"
        )
    for name in TREES:
        if (output / name).exists():
            raise ValueError(
                f"{output / name} exists but {output / MANIFEST} does not (an interrupted run, "
                "or not ours); pass overwrite (--overwrite) to replace it"
            )


@dataclass(frozen=True)
class World:
    manifest: dict  # world.json
    written: bool  # False: a world with the same settings was there already


def write_world(
    output_dir: str | os.PathLike[str],
    *,
    clips: int,
    voc_images: int,
    scene_images: int = 0,
    seed: int = 0,
    duration_s: float = CLIP_DURATION_S,
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> World:
    """Write ``output_dir/corpus`` (clips/, segments.csv, class_labels_indices.csv),
    ``output_dir/VOCdevkit/VOC2007`` and, if ``scene_images`` (pictures per scene, a third of
    them val), ``output_dir/scenes/{train,val}/<scene>/``, then ``output_dir/world.json``.

    The same seed and sizes write the same files, whatever ``num_workers`` (processes; 0:
    this one). Everything is
    written under ``output_dir/.synth-partial`` and moved into place when complete, and the
    manifest comes last: a tree without world.json is unfinished. If a world with the same
    settings is already there, nothing is written.
    """
    _check_settings(clips, voc_images, scene_images, duration_s, num_workers)
    output = Path(output_dir)
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output} is a file, not a directory")
    settings = {
        "version": WORLD_VERSION,
        "seed": seed,
        "clips": clips,
        "voc_images": voc_images,
        "scene_images": scene_images,
        "duration_s": float(duration_s),
        "fps": FPS,
        "audio_rate": RATE,
        "clip_size": list(CLIP_SIZE),
        "voc_size": list(VOC_SIZE),
    }
    existing = read_manifest(output)
    if existing is not None and existing["settings"] == settings and not overwrite:
        return World(existing, written=False)
    if not overwrite:
        _check_replaceable(output, existing, settings)
    staging = output / PARTIAL
    shutil.rmtree(staging, ignore_errors=True)
    try:
        manifest = _write_staged(staging, settings, num_workers, progress)
        _move_into_place(staging, output)
        write_text(output / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return World(manifest, written=True)


def _move_into_place(staging: Path, output: Path) -> None:
    """Replace corpus/, VOCdevkit/ and scenes/ by the staged ones (an old scenes/ goes even
    when no new one was asked for); the old manifest goes first."""
    (output / MANIFEST).unlink(missing_ok=True)
    for name in TREES:
        shutil.rmtree(output / name, ignore_errors=True)
        if (staging / name).exists():
            os.replace(staging / name, output / name)


def _write_staged(staging: Path, settings: dict, num_workers: int, progress: bool) -> dict:
    corpus, voc2007 = staging / "corpus", staging / "VOCdevkit" / "VOC2007"
    for directory in (corpus / "clips", voc2007 / "JPEGImages", voc2007 / "Annotations"):
        directory.mkdir(parents=True)
    seed = settings["seed"]
    clip_jobs, rows = _plan_corpus(corpus, settings["clips"], settings["duration_s"], seed)
    image_jobs = _plan_voc(voc2007, voc_split_sizes(settings["voc_images"]), seed)
    scene_jobs = plan_scene_tree(
        staging / SCENE_TREE, settings["scene_images"], seed, _SCENE_STREAM
    )
    for folder in sorted({job.path.parent for job in scene_jobs}):
        folder.mkdir(parents=True)
    calls = [(_write_clip, job) for job in clip_jobs]
    calls += [(_write_image, job) for jobs in image_jobs.values() for job in jobs]
    calls += [(_write_scene_picture, job) for job in scene_jobs]
    bar = tqdm(_results(calls, num_workers), "synth", len(calls), unit="file", disable=not progress)
    voc_results = len(calls) - len(scene_jobs)
    objects = iter(list(bar)[len(clip_jobs) : voc_results])
    write_segments_csv(corpus / "segments.csv", rows, written_by="tfambient.synthetic")
    _write_ontology(corpus / "class_labels_indices.csv")
    split_objects = {split: [next(objects) for _ in jobs] for split, jobs in image_jobs.items()}
    split_objects["trainval"] = split_objects["train"] + split_objects["val"]
    ids = {split: [job.image_id for job in jobs] for split, jobs in image_jobs.items()}
    ids["trainval"] = ids["train"] + ids["val"]
    for split, per_image in split_objects.items():
        targets = np.stack([targets_of(image) for image in per_image])
        write_image_sets(voc2007, split, ids[split], targets)
    return _manifest(settings, [job.scene for job in clip_jobs], split_objects)


def _manifest(settings: dict, clip_scenes: list[str], split_objects: dict) -> dict:
    per_scene = settings["scene_images"]

    def counts(images):
        flat = [o for image in images for o in image]
        return {
            "images": len(images),
            "objects": len(flat),
            "difficult": sum(o.difficult for o in flat),
            "truncated": sum(o.truncated for o in flat),
        }

    return {
        "format": WORLD_FORMAT,
        "settings": settings,
        "scenes": {
            s.name: {"mid": s.mid, "display_name": s.display_name, "voc_classes": list(s.classes)}
            for s in SCENES
        },
        "clips": {name: clip_scenes.count(name) for name in SCENE_NAMES},
        "voc": {split: counts(images) for split, images in split_objects.items()},
        "scene_tree": split_sizes(per_scene) if per_scene else None,  # pictures per scene
    }
