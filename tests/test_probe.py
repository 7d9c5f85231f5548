"""Linear probes and feature export on tiny generated image folders whose classes differ by
colour under heavy noise: what the commands write, that a backbone's features tell the
classes apart and that unrelated labels do not, damaged files, the cache, the heads trained
side by side, and the exported features against the SavedModel's."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from image_tree import BROKEN, COLOURS, EMPTY_CLASS, NOT_AN_IMAGE, damage, write_tree
from parity import run_parity_script
from tiny import ALEXNET, ALEXNET_FLAGS, FC_UNITS, IMAGE_SIZE, probe_config
from workers import run_workers

from tfambient import architectures, data, features, images, models, trainer
from tfambient.contracts.workdirs import FeatureDir, ProbeWorkdir, TrainWorkdir
from tfambient.tasks import probe

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ALEXNET_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]


def run_command(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / name), *args], capture_output=True, text=True, timeout=600, check=False
    )


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = write_tree(tmp_path_factory.mktemp("tree"), train=10, val=5)
    damage(root)
    return root


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A pretext-like workdir: config.json and the export (SavedModel and .keras) of a narrow
    AlexNet, as tfambient-train leaves them."""
    workdir = TrainWorkdir(tmp_path_factory.mktemp("pretext"))
    keras.utils.set_random_seed(2)
    backbone = models.build_backbone("alexnet", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), **ALEXNET)
    trainer.export(backbone, workdir)
    workdir.write_config({"arch": "alexnet", "label": "texture_k3"})
    return workdir.root


def run_probe(tree: Path, workdir: Path, backbone: object, *more: str):
    """tfambient-probe of ``tree``'s train and val folders, as the docs show it."""
    return run_command(
        "tfambient-probe",
        f"--backbone={backbone}",
        f"--train_dir={tree / 'train'}",
        f"--val_dir={tree / 'val'}",
        f"--workdir={workdir}",
        *PROBE_ARGS,
        *more,
    )


PROBE_ARGS = (
    f"--image_size={IMAGE_SIZE}",
    "--batch_size=8",
    "--epochs=8",
    "--learning_rates=0.01,0.1",
    "--weight_decays=0,1e-3",
    "--holdout_fraction=0.2",
    "--steps_per_loop=10",
)


@pytest.fixture(scope="module")
def probed(tree, exported, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """tfambient-probe of the exported backbone, every default layer, as the docs show it."""
    workdir = tmp_path_factory.mktemp("probe")
    done = run_probe(tree, workdir, exported)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir, done


def test_a_backbone_tells_the_colours_apart_at_every_layer(probed):
    workdir, done = probed
    results = ProbeWorkdir(workdir).read_results()
    assert list(results["layers"]) == ALEXNET_LAYERS
    assert results["classes"] == sorted(COLOURS)
    assert results["images"] == {"train": 30, "val": 15}
    assert results["pretext"] == {"arch": "alexnet", "label": "texture_k3"}
    best = max(layer["top1"] for layer in results["layers"].values())
    assert best >= 0.9 and results["chance_top1"] == pytest.approx(1 / 3)
    conv1 = results["layers"]["conv1"]
    assert conv1["dims"] == 12 * 12 * 16  # the 15x15 map pooled to 12x12 (64 channels / 4)
    assert results["layers"]["conv5"]["dims"] == 3 * 3 * 64  # smaller than 6x6: kept
    assert results["layers"]["fc7"]["dims"] == FC_UNITS
    assert len(conv1["selection"]) == 4 and conv1["heldout_images"] == 6  # 2 of 10 per class
    assert (conv1["learning_rate"], conv1["weight_decay"]) in {
        (row["learning_rate"], row["weight_decay"]) for row in conv1["selection"]
    }
    assert set(conv1["per_class"]) == set(COLOURS) and conv1["images_per_class"]["red"] == 5
    assert "| conv1 | 2304 |" in done.stdout and "chance 33.3" in done.stdout


def test_the_tables_list_every_layer_and_class(probed):
    layout = ProbeWorkdir(probed[0])
    table = rows_of(layout.table_csv)
    assert [row["layer"] for row in table] == ALEXNET_LAYERS
    assert {"top1", "top3", "mean_per_class", "learning_rate", "weight_decay"} <= set(table[0])
    per_class = rows_of(layout.per_class)
    assert len(per_class) == len(ALEXNET_LAYERS) * len(COLOURS)
    assert "| layer | dims | top1 |" in layout.table_markdown.read_text()


def test_damaged_files_and_empty_classes_are_listed_and_skipped(probed, tree):
    layout = ProbeWorkdir(probed[0])
    problems = {Path(row["path"]).name: row for row in rows_of(layout.problems)}
    assert problems[BROKEN]["reason"] == "unreadable" and problems[BROKEN]["split"] == "train"
    assert "JPEG" in problems[BROKEN]["detail"] and "{{" not in problems[BROKEN]["detail"]
    assert problems[NOT_AN_IMAGE]["reason"] == "not_an_image"
    assert problems[EMPTY_CLASS]["reason"] == "empty_class"
    indexed = rows_of(layout.features("train").index)
    assert len(indexed) == 30 and BROKEN not in {Path(row["path"]).name for row in indexed}
    assert [int(row["row"]) for row in indexed] == list(range(30))
    assert ProbeWorkdir(probed[0]).read_results()["skipped"] == {"train": 3, "val": 0}
    assert "3 files or classes skipped" in probed[1].stdout


def shard_times(layout: ProbeWorkdir) -> dict[str, int]:
    return {
        str(path): path.stat().st_mtime_ns
        for split in layout.SPLITS
        for path in layout.features(split).root.glob("*.npy")
    }


def test_a_rerun_with_other_classifier_settings_reuses_the_cached_features(
    probed, tree, exported, tmp_path
):
    copy = tmp_path / "probe"
    shutil.copytree(probed[0], copy)
    layout = ProbeWorkdir(copy)
    before = shard_times(layout)
    assert len(before) == 2 * len(ALEXNET_LAYERS)
    done = run_probe(tree, copy, exported, "--epochs=2", "--layers=conv1,fc7")
    assert done.returncode == 0, done.stderr[-3000:]
    assert shard_times(layout) == before  # not one feature recomputed
    assert "train features" not in done.stderr and "retraining the classifiers" in done.stderr
    results = layout.read_results()
    assert list(results["layers"]) == ["conv1", "fc7"] and results["settings"]["epochs"] == 2
    steps = [record["step"] for record in layout.classifier_run("fc7").read_metrics_log()]
    assert steps[-1] == 8  # 2 epochs of 30 images in batches of 8, trained afresh


def test_a_rerun_of_a_finished_probe_trains_nothing(probed, tree, exported, tmp_path):
    copy = tmp_path / "probe"
    shutil.copytree(probed[0], copy)
    layout = ProbeWorkdir(copy)
    logs = {layer: layout.classifier_run(layer).metrics_log.read_text() for layer in ["conv1"]}
    done = run_probe(tree, copy, exported)
    assert done.returncode == 0, done.stderr[-3000:]
    assert layout.classifier_run("conv1").metrics_log.read_text() == logs["conv1"]
    assert layout.read_results()["layers"] == ProbeWorkdir(probed[0]).read_results()["layers"]


def test_features_from_another_backbone_are_refused_in_the_same_workdir(probed, tree, tmp_path):
    copy = tmp_path / "probe"
    shutil.copytree(probed[0], copy)
    done = run_probe(tree, copy, "random", *ALEXNET_FLAGS)
    assert done.returncode == 2
    assert "holds features computed with other settings: weights_sha256" in done.stderr
    assert done.stderr.count("\n") == 1


def test_labels_unrelated_to_the_pictures_leave_the_probe_at_chance(tmp_path):
    """Every folder holds every colour: a probe scored on its training images (or one that
    leaked them) would still say 100 %."""
    rng = np.random.default_rng(4)
    colours = list(COLOURS.values())
    for split, count in (("train", 12), ("val", 10)):
        for name in COLOURS:
            for i in range(count):
                colour = colours[rng.integers(len(colours))]
                pixels = np.clip(rng.normal(colour, 45, (40, 40, 3)), 0, 255).astype(np.uint8)
                folder = tmp_path / split / name
                folder.mkdir(parents=True, exist_ok=True)
                keras.utils.save_img(folder / f"{i}.png", pixels, scale=False)
    config = probe_config(
        tmp_path,
        tmp_path / "probe",
        layers="conv1",
        epochs=20,
        learning_rates="0.1",
        weight_decays="0",
    )
    conv1 = probe.run(config, tf.distribute.get_strategy())["layers"]["conv1"]
    assert conv1["top1"] < 0.6 and conv1["selection"] == []


# ---------------------------------------------------------------------------- the heads


def write_rows(folder: Path, values: np.ndarray, per_shard: int) -> list[data.ArrayShard]:
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for k, start in enumerate(range(0, len(values), per_shard)):
        path = folder / f"x-{k}.npy"
        np.save(path, values[start : start + per_shard].astype(np.float16))
        shards.append(data.ArrayShard.of(path))
    return shards


def test_array_shards_read_back_every_row_with_its_label_in_order(tmp_path):
    values = np.random.default_rng(0).normal(size=(11, 5)).astype(np.float16)
    shards = write_rows(tmp_path, values, per_shard=4)
    keep = np.arange(11) % 3 != 1
    decoder = data.ArrayDecoder(tuple(shards), np.arange(11, dtype=np.int32), keep)
    batches = data.batches(decoder, data.feature_rows(), 3, training=False)
    rows, labels = zip(*((x.numpy(), y.numpy()) for x, y in batches), strict=True)
    np.testing.assert_array_equal(np.concatenate(labels), np.flatnonzero(keep))
    np.testing.assert_array_equal(np.concatenate(rows), values[keep].astype(np.float32))


ROWS, DIMS, CLASSES, STEPS = 40, 6, 3, 12


def rows_to_learn(tmp_path: Path) -> features.Features:
    """40 rows of 6 features, labels in 3 classes shifting the features."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, CLASSES, ROWS)
    values = rng.normal(size=(ROWS, DIMS)) + labels[:, None]
    shards = write_rows(tmp_path / "rows", values, per_shard=16)
    return features.Features(
        [str(i) for i in range(ROWS)], labels.astype(np.int32), [], {"x": shards}
    )


PROBE = probe.ProbeConfig(workdir="w", train_dir="t", val_dir="v", batch_size=10, epochs=3, seed=3)


def together(tmp_path: Path, heads: probe.Heads, held: np.ndarray) -> np.ndarray:
    """The kernel, (dims, heads, classes), of ``heads`` trained as the probe trains them."""
    run = ProbeWorkdir(tmp_path).classifier_run("together")
    strategy = tf.distribute.get_strategy()
    found = rows_to_learn(tmp_path)
    model = probe.train_classifiers(found, "x", held, heads, CLASSES, PROBE, strategy, run)
    return model.get_layer("linear").kernel.numpy().reshape(DIMS, heads.count, CLASSES)


def alone(tmp_path: Path, rate: float, decay: float) -> np.ndarray:
    """The kernel of one classifier trained the usual way: Keras's SGD at ``rate`` (the same
    cosine decay and momentum), the loss its cross-entropy plus decay / 2 |W|^2."""
    found = rows_to_learn(tmp_path)
    targets = np.stack([found.labels, np.zeros(ROWS, np.int32)], axis=1)
    decoder = data.ArrayDecoder(tuple(found.shards["x"]), targets, np.ones(ROWS, bool))
    strategy = tf.distribute.get_strategy()
    task = probe.ProbeTask(
        decoder, CLASSES, probe.Heads(((1.0, decay),), False), PROBE, strategy, STEPS
    )
    task.optimizer = keras.optimizers.SGD(
        learning_rate=keras.optimizers.schedules.CosineDecay(rate, STEPS), momentum=0.9
    )
    plan = trainer.Plan(
        train_steps=STEPS, global_batch_size=10, steps_per_loop=STEPS, checkpoint_every=STEPS
    )
    trainer.fit(task, strategy, tmp_path / f"alone_{rate}", plan)
    return task.model.get_layer("linear").kernel.numpy()


def test_each_head_learns_as_if_it_were_trained_alone_at_its_own_rate(tmp_path):
    """A head's loss scaled by its learning rate, under one SGD with momentum at rate 1, is
    that head trained alone by SGD at its rate; its weight decay is its own; held-out rows
    teach only the heads that learn from all of train."""
    grid = ((0.3, 0.01), (0.03, 0.0))
    held = np.arange(ROWS) % 5 == 0
    kernels = together(tmp_path, probe.Heads(grid, choosing=True), held)
    assert math.ceil(PROBE.epochs * ROWS / PROBE.batch_size) == STEPS  # as the probe trains
    for k, (rate, decay) in enumerate(grid):
        np.testing.assert_allclose(
            kernels[:, 2 + k], alone(tmp_path, rate, decay), rtol=1e-4, atol=1e-6
        )
    assert not np.allclose(kernels[:, 0], kernels[:, 2])  # held-out rows taught it nothing


def test_the_held_out_part_takes_a_share_of_every_class():
    labels = np.repeat([0, 1, 2], [10, 20, 1])
    held = probe.holdout_mask(labels, 0.2, seed=0)
    assert [int(held[labels == c].sum()) for c in range(3)] == [2, 4, 0]
    assert not np.array_equal(held, probe.holdout_mask(labels, 0.2, seed=1))


@pytest.mark.parametrize(("arch", "size"), [("alexnet", 224), ("resnet18", 224)])
def test_probed_conv_maps_are_pooled_to_about_nine_thousand_numbers(arch, size):
    backbone = models.build_backbone(arch, input_shape=(size, size, 3))
    grids = dict(architectures.get(arch).probe_grids)
    model = features.feature_model(backbone, list(grids), grids)
    dims = {name: int(np.prod(output.shape[1:])) for name, output in model.output.items()}
    for name, grid in grids.items():
        if grid:
            assert 0.85 * architectures.PROBE_DIMS <= dims[name] <= 1.1 * architectures.PROBE_DIMS
    assert dims.get("fc7", dims.get("pool")) in (4096, 512)


# ---------------------------------------------------------------------------- image lists


def test_a_csv_of_paths_and_labels_lists_its_images_and_its_bad_rows(tree, tmp_path):
    listing = tmp_path / "train.csv"
    train = tree / "train"
    listing.write_text(
        "path,label\n"
        f"{train / 'red' / '000.jpg'},red\n"
        f"{os.path.relpath(train / 'blue' / '001.jpg', tmp_path)},blue\n"
        "nowhere.jpg,red\n"
        f"{train / NOT_AN_IMAGE},red\n"
        "only-one-column\n"
    )
    listed = images.read_labelled(listing)
    assert listed.classes == ("blue", "red") and listed.labels == (1, 0)
    reasons = sorted(problem.reason for problem in listed.problems)
    assert reasons == ["bad_row", "missing", "not_an_image"]
    val = images.read_labelled(tree / "val", ("blue", "red"))
    assert len(val) == 10 and {p.reason for p in val.problems} == {"unknown_class"}


# ---------------------------------------------------------------------------- feature export


def test_exported_features_equal_the_saved_models_for_the_same_crops(exported, tree, tmp_path):
    out = tmp_path / "features"
    done = run_command(
        "tfambient-features",
        f"--backbone={exported}",
        f"--images={tree / 'val'}",
        "--layer=conv5,fc7",
        f"--image_size={IMAGE_SIZE}",
        "--shard_size=4",
        f"--output={out}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    layout = FeatureDir(out)
    index = rows_of(layout.index)
    assert list(index[0]) == ["path", "row"] and len(index) == 15
    description = layout.read_description()
    assert description["layers"]["fc7"]["dims"] == FC_UNITS
    assert [s["rows"] for s in description["layers"]["fc7"]["shards"]] == [4, 4, 4, 3]
    saved = tf.saved_model.load(str(TrainWorkdir(exported).saved_model))
    crops = tf.stack(
        [data.any_eval_image(tf.io.read_file(row["path"]), IMAGE_SIZE) for row in index]
    )
    expected = {
        name: value.numpy().reshape(len(index), -1) for name, value in saved.serve(crops).items()
    }
    for layer in ("conv5", "fc7"):
        shards = [np.load(layout.shard(layer, k, 4)) for k in range(4)]
        exported_rows = np.concatenate(shards)[[int(row["row"]) for row in index]]
        assert exported_rows.dtype == np.float16
        np.testing.assert_allclose(exported_rows, expected[layer], rtol=2e-3, atol=2e-3)
    assert "fc7: 15 x 64 float16, 4 shard(s)" in done.stdout


def test_an_interrupted_export_redoes_only_the_missing_shard(exported, tree, tmp_path):
    out = tmp_path / "features"
    args = (
        f"--backbone={exported}",
        f"--images={tree / 'train'}",
        f"--image_size={IMAGE_SIZE}",
        "--shard_size=8",
        f"--output={out}",
    )
    assert run_command("tfambient-features", *args).returncode == 0
    layout = FeatureDir(out)
    index = layout.index.read_text()
    assert "broken.jpg" not in index and "broken.jpg" in layout.problems.read_text()
    layout.shard("fc7", 2, 4).unlink()  # killed while writing the third shard
    times = {k: layout.shard("fc7", k, 4).stat().st_mtime_ns for k in (0, 1, 3)}
    again = run_command("tfambient-features", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {k: layout.shard("fc7", k, 4).stat().st_mtime_ns for k in (0, 1, 3)} == times
    assert layout.shard("fc7", 2, 4).is_file() and layout.index.read_text() == index


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("tfambient-probe", ["--learning_rates=0.1,x"], "--learning_rates must be comma-separated"),
        ("tfambient-probe", ["--layers=conv9"], "alexnet has no layer 'conv9'; it has conv1"),
        ("tfambient-probe", ["--val_dir=/nowhere"], "/nowhere: no such folder or CSV"),
        ("tfambient-features", ["--pool=max"], "--pool must be none or probe"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tree, tmp_path, command, args, message):
    common = {
        "tfambient-probe": [
            f"--train_dir={tree / 'train'}",
            f"--val_dir={tree / 'val'}",
            f"--workdir={tmp_path}",
            f"--image_size={IMAGE_SIZE}",
        ],
        "tfambient-features": [
            "--backbone=random",
            f"--images={tree / 'val'}",
            f"--output={tmp_path}",
        ],
    }[command]
    done = run_command(command, *common, *args)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_mirrored_over_two_devices_follows_the_one_device_probe(tree, tmp_path):
    runs = run_parity_script("probe_parity.py", tree, tmp_path)
    one, two = runs["one"], runs["two"]
    assert len(one["losses"]) == len(two["losses"]) == 15  # 4 epochs of 30 rows, batches of 8
    # The same global batches and weights; only the order of float32 sums differs.
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-4)
    assert one["losses"][-1] < one["losses"][0]
    assert two["top1"] == one["top1"] and two["selection"] == one["selection"]


def features_by_path(layout: FeatureDir, layer: str) -> dict[str, list[float]]:
    """Each image's row of ``layer``, by the path index.csv gives it."""
    rows = np.concatenate([np.load(shard) for shard in sorted(layout.root.glob(f"{layer}-*.npy"))])
    return {entry["path"]: rows[int(entry["row"])].tolist() for entry in rows_of(layout.index)}


def test_two_workers_share_the_features_and_train_the_classifiers_together(tree, tmp_path):
    """tfambient-probe and tfambient-features as two hosts start them (docs/probe.md), on
    one shared workdir."""
    common = (*ALEXNET_FLAGS, f"--image_size={IMAGE_SIZE}", "--seed=5")
    common += ("--shard_size=8",)  # 4 train shards, shared by the workers

    def probe_args(index: int) -> list[str]:
        return [
            "--backbone=random",
            f"--train_dir={tree / 'train'}",
            f"--val_dir={tree / 'val'}",
            f"--workdir={tmp_path / 'probe'}",
            "--layers=conv5,fc7",
            *common,
            "--batch_size=8",
            "--epochs=2",
            "--learning_rates=0.01,0.1",
            "--weight_decays=1e-4",
            "--holdout_fraction=0.2",
            # --strategy=auto: TF_CONFIG names two workers, so MultiWorkerMirroredStrategy
        ]

    workers = run_workers("tfambient-probe", probe_args)
    for worker in workers:
        assert worker.returncode == 0, worker.stderr[-3000:]
    tables = [[line for line in w.stdout.splitlines() if line.startswith("| ")] for w in workers]
    assert tables[0] == tables[1] and len(tables[0]) == 4  # one model: head, ---, conv5, fc7
    layout = ProbeWorkdir(tmp_path / "probe")
    assert layout.read_results()["images"] == {"train": 30, "val": 15}  # the chief wrote
    assert len(list(layout.features("train").root.glob("fc7-*.npy"))) == 4
    # 31 train files in shards of 8: worker 0 reads shards 0 and 2, worker 1 shards 1 and 3.
    for worker, mine in zip(workers, (16, 15), strict=True):
        assert f"| {mine}/{mine} [" in worker.stderr and "/31 [" not in worker.stderr
    assert (layout.classifier_run("fc7").root / "workers" / "1" / "ckpt").is_dir()

    def features_args(index: int) -> list[str]:
        output = tmp_path / "features"
        return ["--backbone=random", f"--images={tree / 'train'}", f"--output={output}", *common]

    workers = run_workers("tfambient-features", features_args)
    for worker, mine in zip(workers, (16, 15), strict=True):  # the same shards as above
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert f"| {mine}/{mine} [" in worker.stderr and "/31 [" not in worker.stderr
        assert "fc7: 30 x " in worker.stdout
    exported, cached = FeatureDir(tmp_path / "features"), layout.features("train")
    settings = [d.read_description()["settings"] for d in (exported, cached)]
    assert settings[0]["weights_sha256"] == settings[1]["weights_sha256"]  # one backbone
    assert features_by_path(exported, "fc7") == features_by_path(cached, "fc7")


def test_features_beyond_half_precision_are_clipped_not_infinite():
    values = np.array([[1.5, 7e4, -1e6]], np.float32)
    half = features.to_half(values, "conv1")
    assert half.dtype == np.float16 and np.isfinite(half).all()
    assert half.tolist() == [[1.5, 65504.0, -65504.0]]
