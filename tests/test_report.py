"""tfambient-report on a tiny trained pretext run and fake VOC runs: every section is drawn
with PNGs that decode, Figure 3's points and Figure 4's pairs are the right runs, the top
images are the true top-k, maximization climbs, and user mistakes are one line and exit 2."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from records import class_jpeg
from tiny import train_config

from tfambient import cluster, data, models, report, visualize
from tfambient.configs import ReportConfig
from tfambient.contracts.files import write_json
from tfambient.contracts.records import LabelName
from tfambient.contracts.workdirs import DataDir, ProbeWorkdir
from tfambient.tasks import pretext as train
from tfambient.voc import CLASSES

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SECTIONS = (
    "Runs",
    "1. Sound clusters",
    "2. What units respond to",
    "3. mAP against the number of clusters",
    "4. Sound texture against MFCC",
    "5. Per-class AP",
    "6. Training curves",
    "7. Activation maximization",
    "8. Linear probes per layer",
)
# (directory, pretext label, top-1 of conv1, conv5, fc7): the classic figure in miniature.
PROBE_RUNS = (
    ("probe_random", "random", (0.50, 0.30, 0.20)),
    ("probe_texture_k5", "texture_k5", (0.50, 0.70, 0.60)),
)
# (directory, pretext label, mode, mAP): the K sweep of the paper in miniature.
VOC_RUNS = (
    ("voc_texture_k2", "texture_k2", "head", 0.30),
    ("voc_texture_k5", "texture_k5", "head", 0.40),
    ("voc_mfcc_k5", "mfcc_k5", "head", 0.35),
    ("voc_random", "random", "head", 0.20),
)


@pytest.fixture(scope="module")
def data_dir(data_dir) -> Path:
    """conftest.py's learnable dataset, with the montage tfambient-prepare would draw."""
    layout, label = DataDir(data_dir), LabelName.parse("texture_k3")
    layout.clusters.mkdir()
    rows = [(f"#{c}", [class_jpeg(c)] * 3) for c in range(3)]
    cluster.plot_montage(rows, layout.cluster_montage(label), "texture, k=3")
    montage = layout.relative(layout.cluster_montage(label))
    write_json(layout.clusters_report, {"fields": {label.key: {"k": 3, "montage": montage}}})
    return data_dir


@pytest.fixture(scope="module")
def pretext_run(data_dir, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("runs") / "texture_k3"
    config = train_config(
        data_dir,
        workdir,
        # The published conv widths: the units the maximization test names (conv5:3, fc6:11,
        # fc7:7) are not all reachable by 15 ascent steps in a network a quarter as wide.
        width=1.0,
        train_steps=4,
        steps_per_loop=2,
        eval_every=2,
        checkpoint_every=4,
    )
    train.train(config)
    return workdir


def write_voc_run(directory: Path, label: str, mode: str, map_voc07: float, pretext: dict):
    """A tfambient-voc workdir: every class at the mAP, but 'cow' without positives."""
    per_class = {name: {"voc07": map_voc07, "sklearn": map_voc07 + 0.01} for name in CLASSES}
    per_class["cow"] = {"voc07": None, "sklearn": None}
    metrics = {
        "mode": mode,
        "arch": "alexnet",
        "backbone": "random" if label == "random" else "runs/x/export/backbone.keras",
        "pretext": None if label == "random" else pretext | {"label": label},
        "map_voc07": map_voc07,
        "map_sklearn": map_voc07 + 0.01,
        "per_class": per_class,
        "missing": ["cow"],
        "settings": {},
        "split": "test",
        "images": 10,
    }
    directory.mkdir(parents=True)
    (directory / "metrics.json").write_text(json.dumps(metrics))
    curve = [{"step": s, "loss": 1.0 / s, "learning_rate": 1e-3} for s in (10, 20, 30)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curve))
    return directory


def write_probe_run(directory: Path, label: str, top1: tuple[float, ...], pretext: dict):
    """A tfambient-probe workdir's probe.json: three layers, six classes."""
    layers = {
        layer: {"top1": value, "top5": 0.95, "mean_per_class": value - 0.01, "dims": 9216}
        for layer, value in zip(("conv1", "conv5", "fc7"), top1, strict=True)
    }
    results = {
        "backbone": "random" if label == "random" else "runs/x",
        "arch": "alexnet",
        "pretext": None if label == "random" else pretext | {"label": label},
        "classes": [f"scene{i}" for i in range(6)],
        "chance_top1": 1 / 6,
        "images": {"train": 360, "val": 180},
        "layers": layers,
    }
    directory.mkdir(parents=True)
    write_json(ProbeWorkdir(directory).results, results)
    return directory


@pytest.fixture(scope="module")
def probe_dirs(pretext_run) -> list[Path]:
    pretext = json.loads((pretext_run / "config.json").read_text())
    root = pretext_run.parent
    return [write_probe_run(root / d, label, top1, pretext) for d, label, top1 in PROBE_RUNS]


@pytest.fixture(scope="module")
def voc_dirs(pretext_run) -> list[Path]:
    pretext = json.loads((pretext_run / "config.json").read_text())
    root = pretext_run.parent
    return [write_voc_run(root / d, label, mode, m, pretext) for d, label, mode, m in VOC_RUNS]


def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "tfambient-report"), *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def report_dir(pretext_run, voc_dirs, probe_dirs, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("report")
    (output / "figures").mkdir()
    (output / "figures" / "stale.png").write_bytes(b"from an earlier report")
    result = run_report(
        str(pretext_run),
        *map(str, voc_dirs),
        *map(str, probe_dirs),
        f"--output={output}",
        "--units=2",
        "--top_k=3",
        "--maximize_steps=10",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def embedded_pngs(page: str) -> list[Image.Image]:
    images = []
    for encoded in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        image.load()
        assert image.format == "PNG"
        images.append(image)
    return images


def test_the_page_has_every_section_and_its_figures_decode(report_dir):
    page = (report_dir / "index.html").read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert [h.split(" (")[0] for h in headings] == list(SECTIONS)
    assert "Omitted" not in page
    images = embedded_pngs(page)
    figures = sorted(p.name for p in (report_dir / "figures").glob("*.png"))
    assert figures == [
        "clusters_00_texture_k3.png",
        "map_vs_k.png",
        "maximize_00.png",
        "pretext_curves.png",
        "probe_layers.png",
        "texture_vs_mfcc_00.png",
        "units_00_conv5.png",
        "units_00_fc7.png",
        "voc_curves.png",
    ]  # and stale.png, which this report did not draw, is gone
    assert len(images) == len(figures)
    assert all(min(image.size) >= 100 for image in images)
    markdown = (report_dir / "report.md").read_text()
    linked = re.findall(r"\]\(figures/([^)]+)\)", markdown)
    assert sorted(linked) == figures


def test_table_2_lists_every_voc_run_by_both_ap_definitions(report_dir):
    markdown = (report_dir / "report.md").read_text()
    assert "**VOC07 11-point AP**" in markdown and "**sklearn AP**" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| texture_k5 · head")]
    assert len(rows) == 2  # one per definition
    voc07 = rows[0].strip("| ").split(" | ")
    assert len(voc07) == 1 + len(CLASSES) + 1
    assert voc07[1] == "40.0" and voc07[1 + CLASSES.index("cow")] == "–" and voc07[-1] == "40.0"
    assert rows[1].strip("| ").split(" | ")[-1] == "41.0"


def test_the_probe_tables_give_each_backbone_a_row_and_each_layer_a_column(report_dir):
    markdown = (report_dir / "report.md").read_text()
    top1 = markdown.split("**Top-1 accuracy (%) on val**")[1]
    rows = [line for line in top1.splitlines() if line.startswith("| ")][:4]
    assert rows[0] == "| backbone | conv1 | conv5 | fc7 |"
    assert rows[2:] == ["| texture_k5 | 50.0 | 70.0 | 60.0 |", "| random | 50.0 | 30.0 | 20.0 |"]
    assert "| texture_k5 | 6 | 360 | 180 |" in markdown
    assert "probe | alexnet, texture_k5 | – | top-1 70.0 % (conv5) |" in markdown


def voc_runs(voc_dirs) -> list[report.VocRun]:
    return [report.load_run(d) for d in voc_dirs]


def test_figure_3_points_are_k_and_map_per_descriptor_and_mode(voc_dirs):
    sweep = report.cluster_sweep(voc_runs(voc_dirs))
    assert sweep.lines == {
        ("mfcc", "head"): [(5, 0.35)],
        ("texture", "head"): [(2, 0.30), (5, 0.40)],
    }
    assert sweep.random == {"head": 0.20}


def test_figure_3_averages_runs_at_one_point_and_leaves_out_codes(tmp_path, voc_dirs):
    pretext = {"data_dir": "d"}
    more = [
        write_voc_run(tmp_path / "again", "texture_k5", "head", 0.50, pretext),
        write_voc_run(tmp_path / "bits", "texture_bits30", "head", 0.9, pretext),
        write_voc_run(tmp_path / "all", "texture_k5", "all", 0.6, pretext),
    ]
    sweep = report.cluster_sweep(voc_runs([*voc_dirs, *more]))
    assert sweep.lines[("texture", "head")] == [(2, 0.30), (5, pytest.approx(0.45))]
    assert sweep.lines[("texture", "all")] == [(5, 0.6)]
    assert ("texture", "bits") not in {(d, m) for d, m in sweep.lines}
    assert len(sweep.lines) == 3


def test_figure_4_pairs_texture_and_mfcc_of_the_same_mode_and_k(voc_dirs):
    pairs = report.texture_mfcc_pairs(voc_runs(voc_dirs))
    assert [(t.pretext_label, m.pretext_label) for t, m in pairs] == [("texture_k5", "mfcc_k5")]


def test_top_k_rows_are_each_units_true_top_k():
    responses = np.random.default_rng(0).normal(size=(50, 7))
    top = visualize.top_k_rows(responses, 5)
    assert top.shape == (7, 5)
    np.testing.assert_array_equal(top, np.argsort(-responses, axis=0)[:5].T)
    assert visualize.top_k_rows(responses[:3], 5).shape == (7, 3)  # k beyond the frames


def test_conv_units_respond_by_their_spatial_maximum_and_the_most_selective_come_first():
    features = np.zeros((4, 3, 3, 3), np.float32)
    features[:, 1, 1, 0] = 1.0  # fires equally on every frame: max/mean 1
    features[2, 0, 2, 1] = 5.0  # fires on one frame: max/mean 4
    # unit 2 never fires: selectivity 0
    responses = visualize.unit_responses(features)
    np.testing.assert_array_equal(responses[:, 1], [0, 0, 5, 0])
    np.testing.assert_allclose(visualize.selectivity(responses), [1.0, 4.0, 0.0])
    np.testing.assert_array_equal(visualize.selective_units(responses, 2, min_active=1), [1, 0])
    # Shown two frames per unit, a unit that fires on one frame is not worth a row.
    np.testing.assert_array_equal(visualize.selective_units(responses, 2, min_active=2), [0, 1])
    features[1, 0, 0, 2], features[3, 2, 2, 2] = 1.0, 3.0  # unit 2 fires twice: max/mean 3
    responses = visualize.unit_responses(features)
    np.testing.assert_array_equal(visualize.selective_units(responses, 3, min_active=2), [2, 0, 1])


@pytest.fixture(scope="module")
def backbone(pretext_run):
    return models.load_backbone(pretext_run / "export" / "backbone.keras")


def test_top_images_are_the_frames_that_excite_each_unit_most(backbone, data_dir):
    batches = visualize.frame_batches(data_dir, "texture_k3", 64, 30)
    studies = visualize.top_images(backbone, batches, 30, ["conv5", "fc7"], units=3, k=4)
    frames = np.concatenate(list(batches.as_numpy_iterator()))
    assert len(frames) == 30
    features = backbone(frames, training=False)
    for study in studies:
        every = visualize.unit_responses(features[study.layer].numpy())[:, study.units]
        expected = -np.sort(-every, axis=0)[:4].T
        np.testing.assert_allclose(study.responses, expected, rtol=1e-4, atol=1e-6)
        assert study.images.shape == (3, 4, 64, 64, 3) and study.images.dtype == np.uint8
        assert study.frames_seen == 30


def test_activation_maximization_raises_each_units_activation(backbone):
    targets = [("conv5", 3), ("fc7", 7), ("fc6", 11)]
    settings = visualize.Maximize(steps=15, size=64)
    images, start, final = visualize.maximize(backbone, targets, settings)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    assert np.all(final > start + 0.05), (start, final)
    # What it reports is what the images do.
    rebuilt = visualize.before_relu(backbone)
    again = visualize.unit_activations(rebuilt, data.standardize(images).numpy(), targets)
    np.testing.assert_allclose(again, final, rtol=0.05, atol=0.02)


def test_a_unit_the_backbone_lacks_is_named(backbone):
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        visualize.check_targets(backbone, [("conv9", 1)])
    with pytest.raises(ValueError, match=r"fc7 has units 0..63, not 5000"):
        visualize.check_targets(backbone, [("fc7", 5000)])


def test_sections_without_their_inputs_say_what_they_need(tmp_path, voc_dirs):
    random_only = [report.load_run(voc_dirs[-1])]
    sections = report.build_sections(random_only, ReportConfig())
    omitted = {s.title.split(" (")[0] for s in sections if not (s.pictures or s.tables)}
    assert omitted == set(SECTIONS[1:5]) | {SECTIONS[7], SECTIONS[8]}
    assert all(s.notes for s in sections if s.title.split(" (")[0] in omitted)
    page = report.write_report(sections, tmp_path).read_text()
    assert page.count("Omitted.") == len(omitted)
    assert "Needs VOC runs of backbones pretrained on" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one run directory"),
        (["{missing}"], "no such directory"),
        (["{empty}"], "neither a tfambient-train workdir"),
        (["{voc}", "--maximize=conv5"], "expected LAYER:UNIT"),
        (["{voc}", "--units=0"], "units"),
    ],
)
def test_user_mistakes_give_one_line_and_status_2(tmp_path, voc_dirs, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "voc": voc_dirs[0]}
    result = run_report(*(arg.format(**paths) for arg in args), f"--output={tmp_path / 'r'}")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
