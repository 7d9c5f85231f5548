"""VOC fine-tuning on a tiny generated VOCdevkit: what each mode trains, its outputs, the
masked loss, the rescaling, and tfambient-voc as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from killing import assert_logged_alike, contents, kill_twice_and_rerun, logged_steps, run
from parity import run_parity_script
from tiny import ALEXNET, ALEXNET_FLAGS, IMAGE_SIZE, voc_config
from voc_tree import USED, write_tree

from tfambient import models
from tfambient.tasks import voc as ft
from tfambient.voc import CLASSES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory) -> Path:
    return write_tree(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="module")
def saved_backbone(tmp_path_factory) -> Path:
    """A pretext-like run: WORKDIR/config.json and WORKDIR/export/backbone.keras."""
    workdir = tmp_path_factory.mktemp("pretext")
    keras.utils.set_random_seed(1)
    (workdir / "export").mkdir()
    models.build_backbone("alexnet", input_shape=(96, 96, 3), **ALEXNET).save(
        workdir / "export" / "backbone.keras"
    )
    (workdir / "config.json").write_text(json.dumps({"arch": "alexnet", "label": "texture_k5"}))
    return workdir


def saved_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Weights by layer name of the backbone in a .keras file (a VOC model's nested one)."""
    model = keras.models.load_model(path, compile=False)
    backbone = next((layer for layer in model.layers if layer.name == "alexnet"), model)
    return {layer.name: layer.get_weights() for layer in backbone.layers if layer.weights}


def changed(before: dict, after: dict, names) -> dict[str, bool]:
    return {
        name: any(not np.array_equal(a, b) for a, b in zip(before[name], after[name], strict=True))
        for name in names
    }


CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def test_head_trains_fc6_to_fc8_and_leaves_every_conv_weight_unchanged(
    voc_dir, saved_backbone, tmp_path
):
    ft.run(voc_config(voc_dir, tmp_path, backbone=str(saved_backbone), mode="head"))
    before = saved_weights(saved_backbone / "export" / "backbone.keras")
    after = saved_weights(tmp_path / "model.keras")
    assert changed(before, after, CONVS) == dict.fromkeys(CONVS, False)
    assert changed(before, after, ("fc6", "fc7")) == {"fc6": True, "fc7": True}


def test_head_keeps_batchnorm_statistics_frozen(voc_dir, tmp_path):
    backbone = models.build_backbone("resnet18", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    ft.freeze(backbone, "head")
    model = ft.voc_model(backbone, IMAGE_SIZE)
    stats = [v.numpy().copy() for v in backbone.non_trainable_variables]
    assert not backbone.trainable_variables  # ResNet-18's head is fc8 alone
    model(tf.random.normal([4, IMAGE_SIZE, IMAGE_SIZE, 3]), training=True)
    for before, variable in zip(stats, backbone.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(before, variable.numpy())


def test_all_changes_the_convolutional_weights_too(voc_dir, saved_backbone, tmp_path):
    ft.run(voc_config(voc_dir, tmp_path, backbone=str(saved_backbone), mode="all"))
    before = saved_weights(saved_backbone / "export" / "backbone.keras")
    after = saved_weights(tmp_path / "model.keras")
    assert all(changed(before, after, CONVS).values())


def test_a_run_writes_metrics_tables_and_records_its_pretext(voc_dir, saved_backbone, tmp_path):
    metrics = ft.run(voc_config(voc_dir, tmp_path, backbone=str(saved_backbone), mode="head"))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["mode"] == "head" and saved["arch"] == "alexnet" and saved["images"] == 32
    assert saved["pretext"] == {"arch": "alexnet", "label": "texture_k5"}
    assert saved["settings"]["learning_rate"] == 0.003  # the head protocol's
    assert set(saved["per_class"]) == set(CLASSES)
    assert sorted(saved["missing"]) == sorted(set(CLASSES) - set(USED))
    assert 0 <= saved["map_voc07"] <= 1 and 0 <= saved["map_sklearn"] <= 1
    for name in ("ap_table.md", "ap_table.csv", "ap_table.json", "model.keras", "problems.csv"):
        assert (tmp_path / name).is_file(), name
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [3, 6]
    assert list((tmp_path / "tb").iterdir())


def test_a_rerun_resumes_from_the_last_checkpoint(voc_dir, tmp_path):
    ft.run(voc_config(voc_dir, tmp_path, train_steps=3))
    ft.run(voc_config(voc_dir, tmp_path, train_steps=6))
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [3, 6]  # steps 1-3 were not run again


def test_svm_probes_frozen_features_and_learns_the_colours(voc_dir, saved_backbone, tmp_path):
    metrics = ft.run(
        voc_config(voc_dir, tmp_path, backbone=str(saved_backbone), mode="svm", layer="conv5")
    )
    assert metrics["layer"] == "conv5"
    costs = metrics["svm_costs_chosen"]
    assert all(costs[name] in ft.VocConfig(workdir="", voc_dir="x").costs() for name in USED)
    assert all(costs[name] is None for name in set(CLASSES) - set(USED))
    assert metrics["map_voc07"] > 0.8  # four colours: separable even by random conv features
    assert (tmp_path / "ap_table.md").is_file() and not (tmp_path / "model.keras").exists()


def test_the_loss_ignores_the_ignored_targets():
    logits = tf.constant([[3.0, -2.0, 5.0]])
    base = ft.masked_sigmoid_loss(tf.constant([[1, -1, 0]], tf.int8), logits)
    flipped = ft.masked_sigmoid_loss(tf.constant([[1, -1, 0]], tf.int8), logits * [1, 1, -1])
    expected = np.log1p(np.exp(-3.0)) + np.log1p(np.exp(-2.0))
    np.testing.assert_allclose(base.numpy(), [expected], rtol=1e-6)
    np.testing.assert_allclose(flipped.numpy(), [expected], rtol=1e-6)
    accuracy = ft.masked_accuracy(tf.constant([[1, 1, 0]], tf.int8), logits)
    np.testing.assert_allclose(accuracy.numpy(), [0.5])


def test_rescaling_gives_every_unit_unit_std_and_keeps_first_layer_responses(voc_dir):
    keras.utils.set_random_seed(0)
    backbone = models.build_backbone("alexnet", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), **ALEXNET)
    images = tf.random.normal([16, IMAGE_SIZE, IMAGE_SIZE, 3], seed=1)
    before = backbone(images, training=False)["conv1"].numpy()
    ft.rescale(backbone, images)
    for name in ("conv1", "conv3", "fc6"):
        layer = backbone.get_layer(name)
        out = keras.Model(backbone.inputs, layer.output)(images, training=False).numpy()
        std = out.reshape(-1, out.shape[-1]).std(axis=0)
        np.testing.assert_allclose(std[std > 0], 1.0, rtol=1e-3)
    after = backbone(images, training=False)["conv1"].numpy()
    # A first-layer unit is a positive multiple of what it was.
    ratio = after[..., 0][before[..., 0] > 1e-3] / before[..., 0][before[..., 0] > 1e-3]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)
    assert ratio[0] > 0


def test_backbone_is_found_from_a_workdir_its_export_dir_or_the_file(saved_backbone, tmp_path):
    file = saved_backbone / "export" / "backbone.keras"
    for spec in (saved_backbone, saved_backbone / "export", file):
        assert ft.backbone_file(str(spec)) == file
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot be fine-tuned"):
        ft.backbone_file(str(tmp_path))


def test_a_backbone_of_another_arch_than_asked_is_refused(voc_dir, saved_backbone, tmp_path):
    bad = voc_config(voc_dir, tmp_path, backbone=str(saved_backbone), arch="resnet18")
    with pytest.raises(ValueError, match="holds a alexnet"):
        ft.load_backbone(bad)


def test_test_crops_are_repeatable(voc_dir):
    from tfambient.voc.dataset import read_split

    split = read_split(voc_dir, "test")
    settings = voc_config(voc_dir, Path("unused"), test_crops=3)
    first, second = (next(iter(ft.test_dataset(split, settings, 4))).numpy() for _ in range(2))
    assert first.shape == (4, 3, IMAGE_SIZE, IMAGE_SIZE, 3)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[:, 0], first[:, 1])  # crops of one image differ
    one = next(iter(ft.test_dataset(split, replace(settings, test_crops=1), 4))).numpy()
    assert one.shape == (4, 1, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_mirrored_over_two_devices_follows_the_one_device_run(voc_dir, tmp_path):
    runs = run_parity_script("voc_parity.py", voc_dir, tmp_path)
    assert len(runs["one"]["losses"]) == len(runs["two"]["losses"]) == 6
    # The same global batches and weights; only the order of float32 sums differs.
    np.testing.assert_allclose(runs["two"]["losses"], runs["one"]["losses"], rtol=1e-4)
    assert runs["one"]["losses"][0] != runs["one"]["losses"][-1]  # it trained
    assert abs(runs["two"]["map"] - runs["one"]["map"]) < 1e-3


def run_cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("tfambient-voc")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=300)


def test_a_killed_fine_tuning_resumes_exactly_and_a_rerun_changes_nothing(voc_dir, tmp_path):
    """Killed right after a checkpoint and mid-interval, rerun: the figures, curves and APs
    of a run never stopped (AlexNet's fc6 and fc7 train, under dropout)."""
    reference, workdir = tmp_path / "reference", tmp_path / "killed"

    def command(output: Path) -> list[str]:
        return [
            str(Path(sys.executable).with_name("tfambient-voc")),
            f"--voc_dir={voc_dir}",
            f"--workdir={output}",
            "--mode=head",
            f"--image_size={IMAGE_SIZE}",
            *ALEXNET_FLAGS,
            "--batch_size=8",
            "--train_steps=20",
            "--steps_per_loop=2",
            "--checkpoint_every=10",
            "--test_crops=2",
        ]

    run(command(reference))
    kill_twice_and_rerun(command(workdir), workdir)
    assert logged_steps(workdir) == list(range(2, 21, 2))
    assert_logged_alike(workdir, reference)
    resumed, unstopped = (
        json.loads((w / "metrics.json").read_text()) for w in (workdir, reference)
    )
    for key in ("map_voc07", "map_sklearn", "per_class"):  # scores ranked alike: APs equal
        assert resumed[key] == unstopped[key], key

    finished = contents(workdir)
    run(command(workdir))
    assert contents(workdir) == finished  # metrics.json, tables, model.keras, logs


def test_the_command_prints_the_table_beside_the_published_numbers(voc_dir, tmp_path):
    out = run_cli(
        f"--voc_dir={voc_dir}",
        f"--workdir={tmp_path}",
        "--mode=head",
        f"--image_size={IMAGE_SIZE}",
        *ALEXNET_FLAGS,
        "--batch_size=8",
        "--train_steps=3",
        "--steps_per_loop=3",
        "--test_crops=1",
        "--compare_published",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Owens et al., sound texture | 52.3 | 61.3" in out.stdout
    assert "random, head, VOC07 11-point" in out.stdout
    assert "mAP" in out.stdout and (tmp_path / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode=linear"], "--mode must be one of head, all, svm"),
        (["--voc_dir=/nowhere"], "no VOC2007 tree in /nowhere"),
        (["--backbone=/nowhere/b.keras"], "no backbone at /nowhere/b.keras"),
        (["--svm_costs=1,x"], "--svm_costs must be numbers"),
        (["--arch=vgg"], "unknown --arch vgg"),
        (["--width=0"], "--width must be above 0, got 0"),
        (["--mode=svm", "--layer=conv9"], "has no layer 'conv9'; it has conv1, conv2"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(voc_dir, tmp_path, args, message):
    out = run_cli(f"--voc_dir={voc_dir}", f"--workdir={tmp_path}", *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
