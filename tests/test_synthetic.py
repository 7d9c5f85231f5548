"""The synthetic world: reproducible, read by the pipeline's own readers, and an honest
miniature (sounds cluster by scene, pictures need texture rather than colour)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tfambient import audioset, images, media, sound, world
from tfambient.voc import CLASSES
from tfambient.voc.dataset import read_annotation, read_split
from tfambient.world import scene_tree, writer

CLIPS_PER_SCENE = 6
SMALL = {"clips": 6, "voc_images": world.MIN_VOC_IMAGES, "scene_images": world.MIN_SCENE_IMAGES}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    clips = CLIPS_PER_SCENE * len(world.SCENES)
    world.write_world(root, clips=clips, voc_images=100, seed=0, progress=False)
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_the_same_seed_writes_the_same_files_whatever_the_workers(tmp_path):
    one = world.write_world(tmp_path / "a", seed=5, progress=False, **SMALL)
    two = world.write_world(tmp_path / "b", seed=5, num_workers=2, progress=False, **SMALL)
    other = world.write_world(tmp_path / "c", seed=6, progress=False, **SMALL)
    a, b, c = (files_of(tmp_path / name) for name in "abc")
    assert one.manifest == two.manifest
    assert a.keys() == b.keys() and len(a) > 6 + 2 * world.MIN_VOC_IMAGES
    assert [
        name for name in a if a[name] != b[name]
    ] == []  # clips too: H.264/AAC are deterministic
    jpeg = "VOCdevkit/VOC2007/JPEGImages/000001.jpg"
    assert a[jpeg] != c[jpeg] and other.manifest["settings"]["seed"] == 6


def test_the_corpus_reads_as_audioset_and_its_clips_decode(built):
    corpus = built / "corpus"
    ontology = audioset.read_ontology(corpus / "class_labels_indices.csv")
    assert list(ontology) == [scene.mid for scene in world.SCENES]
    table = audioset.read_segments(corpus / "segments.csv")
    assert not table.rejected and len(table.segments) == CLIPS_PER_SCENE * len(world.SCENES)
    labels = [segment.labels for segment in table.segments]
    assert sorted(labels) == sorted([(scene.mid,) for scene in world.SCENES] * CLIPS_PER_SCENE)
    index = audioset.index_media(corpus / "clips")
    for segment in table.segments:
        found = index.find(segment)
        assert found is not None and found.naming == "ytid_start", segment
        info = media.probe(found.path)
        assert info.duration_s == pytest.approx(world.CLIP_DURATION_S, abs=0.15)
        assert (info.height, info.width, info.fps) == (*world.CLIP_SIZE, world.FPS)
        assert info.audio_rate == world.RATE and info.has_video


def scene_windows(built: Path) -> tuple[np.ndarray, list[str]]:
    """The 3.75 s of decoded audio at the middle of each clip, and the clip's scene."""
    table = audioset.read_segments(built / "corpus" / "segments.csv")
    index = audioset.index_media(built / "corpus" / "clips")
    windows = [
        media.read_audio_window(index.find(s).path, 2.0, 3.75, world.RATE).samples
        for s in table.segments
    ]
    return np.stack(windows), [s.labels[0] for s in table.segments]


@pytest.mark.parametrize("descriptor", ["texture", "mfcc_summary"])
def test_sound_descriptors_cluster_by_scene(built, descriptor):
    windows, scenes = scene_windows(built)
    features = sound.describe(windows, world.RATE, [descriptor])[descriptor]
    clusters = KMeans(len(world.SCENES), n_init=10, random_state=0).fit_predict(
        StandardScaler().fit_transform(features)
    )
    assert adjusted_rand_score(scenes, clusters) > 0.6


def orientation_energy(frames: np.ndarray) -> np.ndarray:
    """Per frame: how the gradient energy of the grey image spreads over 6 orientations,
    and its overall strength, at 3 scales: texture, blind to colour."""
    grey = frames.astype(np.float32).mean(-1)
    n, height, width = grey.shape
    features = []
    for scale in (1, 2, 4):
        image = grey.reshape(n, height // scale, scale, width // scale, scale).mean((2, 4))
        gy, gx = np.gradient(image, axis=(1, 2))
        magnitude = np.hypot(gx, gy)
        bins = (np.arctan2(gy, gx) % np.pi / np.pi * 6).astype(int) % 6
        energy = np.stack([(magnitude * (bins == b)).sum((1, 2)) for b in range(6)], axis=1)
        features += [
            energy / energy.sum(1, keepdims=True),
            np.log1p(magnitude.mean((1, 2)))[:, None],
        ]
    return np.concatenate(features, axis=1)


def test_scenes_are_told_by_texture_not_by_mean_colour():
    scenes = np.repeat(np.arange(len(world.SCENES)), 30)
    frames = np.stack(
        [
            world.scene_frames(world.SCENES[s], 1 / world.FPS, np.random.default_rng([7, i]))[0]
            for i, s in enumerate(scenes)
        ]
    )
    train = np.arange(len(scenes)) % 2 == 0

    def accuracy(features):
        model = make_pipeline(StandardScaler(), NearestCentroid()).fit(
            features[train], scenes[train]
        )
        return (model.predict(features[~train]) == scenes[~train]).mean()

    by_colour = accuracy(frames.mean(axis=(1, 2)))
    by_texture = accuracy(orientation_energy(frames))
    assert by_colour < 0.5 and by_texture > by_colour + 0.25, (by_colour, by_texture)


@pytest.mark.parametrize("scene", world.SCENES, ids=world.SCENE_NAMES)
def test_clips_move_gently(scene):
    frames = world.scene_frames(scene, 2.0, np.random.default_rng(3)).astype(np.float32)
    assert frames.shape == (2 * world.FPS, *world.CLIP_SIZE, 3)
    changed = np.abs(np.diff(frames, axis=0)).max(-1) > 40  # beyond the sensor grain
    assert changed.mean(axis=(1, 2)).max() < 0.5
    assert (np.abs(frames[-1] - frames[0]).max(-1) > 40).mean() > 0.01


def test_the_voc_tree_reads_back_with_every_class_in_every_split(built):
    voc = built / "VOCdevkit"
    splits = {name: read_split(voc, name) for name in ("train", "val", "trainval", "test")}
    sizes = world.voc_split_sizes(100)
    for name, split in splits.items():
        assert split.problems == (), name
        assert len(split) == (sizes["train"] + sizes["val"] if name == "trainval" else sizes[name])
        assert (split.targets == 1).sum(0).min() >= 1, name  # each class, a positive
    assert splits["trainval"].ids == splits["train"].ids + splits["val"].ids
    assert not set(splits["trainval"].ids) & set(splits["test"].ids)


def test_voc_objects_have_boxes_inside_the_image_and_some_are_difficult(built):
    root = built / "VOCdevkit" / "VOC2007"
    objects = []
    for xml in sorted((root / "Annotations").glob("*.xml")):
        with Image.open(root / "JPEGImages" / f"{xml.stem}.jpg") as image:
            assert image.size == (world.VOC_SIZE[1], world.VOC_SIZE[0])
        found = read_annotation(xml)
        assert any(not o.difficult for o in found), xml.name  # the main object never is
        objects += found
    boxes = np.array([o.bbox for o in objects])
    assert (boxes[:, :2] >= 1).all() and (boxes[:, 2] <= world.VOC_SIZE[1]).all()
    assert (boxes[:, 3] <= world.VOC_SIZE[0]).all() and (boxes[:, 2:] >= boxes[:, :2]).all()
    difficult = [o for o in objects if o.difficult]
    assert 0.05 * len(objects) < len(difficult) < 0.5 * len(objects)
    assert any(o.truncated for o in objects)
    assert {o.name for o in objects} == set(CLASSES)


def test_every_class_belongs_to_one_scene_and_has_a_shape():
    assert sorted(world.SCENE_OF_CLASS) == sorted(CLASSES) == sorted(world.SHAPES)
    assert sum(len(scene.classes) for scene in world.SCENES) == len(CLASSES)


def test_the_scene_tree_holds_train_and_val_pictures_of_every_scene_apart_from_the_clips(
    tmp_path,
):
    made = world.write_world(tmp_path, clips=6, voc_images=80, scene_images=6, progress=False)
    assert made.manifest["scene_tree"] == {"train": 4, "val": 2}
    train = images.read_labelled(tmp_path / world.SCENE_TREE / "train")
    val = images.read_labelled(tmp_path / world.SCENE_TREE / "val", train.classes)
    assert train.classes == tuple(sorted(world.SCENE_NAMES)) and not train.problems
    assert list(train.counts()) == [4] * 6 and list(val.counts()) == [2] * 6
    pictures = [np.asarray(Image.open(path)) for path in train.paths + val.paths]
    assert {picture.shape for picture in pictures} == {(*world.CLIP_SIZE, 3)}
    clip_jobs, _ = writer._plan_corpus(tmp_path, 6, world.CLIP_DURATION_S, 0)
    first_frames = [  # drawn as _write_clip draws them, before encoding
        world.scene_frames(
            world.SCENE_BY_NAME[job.scene],
            1 / world.FPS,
            np.random.default_rng(job.seed).spawn(2)[0],
        )[0]
        for job in clip_jobs
    ]
    jobs = scene_tree.plan_scene_tree(tmp_path, 6, 0, writer._SCENE_STREAM)
    drawn = [scene_tree.scene_picture(job) for job in jobs]
    assert not any(np.array_equal(a, b) for a in drawn for b in first_frames)
    assert len({picture.tobytes() for picture in drawn}) == len(drawn)


def test_rerunning_with_the_same_settings_writes_nothing(built):
    manifest = built / world.MANIFEST
    before = manifest.stat().st_mtime_ns
    again = world.write_world(
        built, clips=CLIPS_PER_SCENE * len(world.SCENES), voc_images=100, seed=0, progress=False
    )
    assert not again.written and manifest.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match=r"other settings: seed 0 \(asked 1\)"):
        world.write_world(built, seed=1, progress=False, **SMALL)


def test_an_interrupted_run_leaves_no_tree_that_looks_finished(tmp_path, monkeypatch):
    write_image = writer._write_image

    def fail_at_the_fifth(job):
        if job.image_id == "000005":
            raise OSError(28, "No space left on device")
        return write_image(job)

    monkeypatch.setattr(writer, "_write_image", fail_at_the_fifth)
    with pytest.raises(OSError, match="No space"):
        world.write_world(tmp_path, clips=1, voc_images=80, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(writer, "_write_image", write_image)
    assert world.write_world(tmp_path, clips=1, voc_images=80, progress=False).written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VOCdevkit", "corpus", world.MANIFEST]


def test_a_tree_without_its_manifest_is_replaced_only_when_asked(tmp_path):
    (tmp_path / "corpus").mkdir()
    with pytest.raises(ValueError, match="exists but"):
        world.write_world(tmp_path, clips=1, voc_images=80, progress=False)
    assert world.write_world(
        tmp_path, clips=1, voc_images=80, overwrite=True, progress=False
    ).written
    assert len(list((tmp_path / "corpus" / "clips").glob("*.mp4"))) == 1
    assert sum(world.read_manifest(tmp_path)["clips"].values()) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clips": 0}, "clips must be at least 1"),
        ({"voc_images": 79}, "voc_images must be at least 80"),
        ({"duration_s": 2.0}, "duration_s must be at least 3.75"),
        ({"num_workers": -1}, "num_workers"),
        ({"scene_images": 2}, "scene_images must be 0 .* or at least 3"),
    ],
)
def test_bad_sizes_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        world.write_world(tmp_path, **({"clips": 6, "voc_images": 80} | kwargs))
    assert list(tmp_path.iterdir()) == []


SYNTH = str(Path(sys.executable).with_name("tfambient-synth"))


def synth(*args, check_rc=0):
    result = subprocess.run([SYNTH, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == check_rc, result.stderr
    return result


@pytest.mark.slow
def test_the_command_writes_the_world_and_reruns_as_a_no_op(tmp_path):
    args = ("--output_dir", str(tmp_path), "--clips=6", "--voc_images=80", "--num_workers=0")
    args += ("--scene_images=3",)
    out = synth(*args, "--noprogress").stdout
    assert "wrote" in out and "6 clips" in out and "train 20, val 20, test 40" in out
    assert "scenes/ with 2 train and 1 val pictures per scene" in out
    assert world.read_manifest(tmp_path)["settings"]["clips"] == 6
    assert "already holds this world" in synth(*args, "--noprogress").stdout


@pytest.mark.slow
def test_the_command_help_explains_every_flag():
    out = synth("--help").stdout
    flags = ("output_dir", "clips", "voc_images", "scene_images", "seed", "duration_s")
    for flag in (*flags, "num_workers"):
        assert f"--{flag}:" in out
    assert "--[no]overwrite:" in out and "--[no]progress:" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no_such_flag"], "no_such_flag"),
        (["--voc_images=10"], "--voc_images"),
        (["--clips=0"], "--clips"),
        ([], "--output_dir is required"),
        (["--output_dir={file}"], "is a file, not a directory"),
    ],
)
def test_user_mistakes_give_one_line_and_status_2(tmp_path, args, message):
    file = tmp_path / "a_file"
    file.write_text("")
    err = synth(*(a.format(file=file) for a in args), check_rc=2).stderr.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
