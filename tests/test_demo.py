"""The README's first command, in miniature: `make demo DEMO_FLAGS=flags/demo_ci` runs the
whole experiment (synthetic world, prepare, two pretext runs, three VOC transfers, three
linear probes, report) through the real commands, and a rerun resumes instead of starting
again."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tfambient.voc import CLASSES
from tfambient.world import SCENE_NAMES as SCENES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BACKBONES = ("texture_k6", "mfcc_k6", "random")


def make_demo(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-C", str(REPO), "demo", "DEMO_FLAGS=flags/demo_ci", f"DEMO_DIR={directory}"],
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    directory = tmp_path_factory.mktemp("demo")
    done = make_demo(directory)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return directory, done


def test_every_stage_leaves_its_output(demo):
    directory, _ = demo
    assert (directory / "world" / "world.json").is_file()
    assert (directory / "data" / "dataset.json").is_file()
    assert (directory / "data" / "clusters" / "texture_k6.png").is_file()
    for label in BACKBONES[:2]:
        assert (directory / "runs" / label / "export" / "backbone.keras").is_file()
    for name in BACKBONES:
        metrics = json.loads((directory / "voc" / name / "metrics.json").read_text())
        assert metrics["mode"] == "head" and set(metrics["per_class"]) == set(CLASSES)
        assert metrics["missing"] == []  # every class has test positives in the world
        expected = None if name == "random" else name
        assert (metrics["pretext"] or {}).get("label") == expected
    pretext = json.loads((directory / "runs" / BACKBONES[0] / "config.json").read_text())
    for random_run in ("voc", "probe"):
        random = json.loads((directory / random_run / "random" / "config.json").read_text())
        assert random["fc_units"] == pretext["fc_units"] != 4096  # the same narrow AlexNet
        assert random["width"] == pretext["width"] != 1
    for name in BACKBONES:
        probe = json.loads((directory / "probe" / name / "probe.json").read_text())
        assert list(probe["layers"]) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
        assert probe["classes"] == sorted(SCENES) and probe["images"] == {"train": 48, "val": 24}
        expected = None if name == "random" else name
        assert (probe["pretext"] or {}).get("label") == expected


def test_the_report_shows_every_figure_and_the_comparison(demo):
    directory, done = demo
    page = (directory / "report" / "index.html").read_text()
    for figure in (
        "clusters_02_texture_k6",
        "units_00_conv5",
        "units_00_fc7",
        "map_vs_k",
        "texture_vs_mfcc_00",
        "pretext_curves",
        "voc_curves",
        "maximize_00",
        "probe_layers",
    ):
        assert (directory / "report" / "figures" / f"{figure}.png").is_file(), figure
    assert page.count("data:image/png;base64,") == len(list(directory.glob("report/figures/*")))
    assert "Omitted" not in page
    assert "Per-class AP (Table 2)" in page
    for name in BACKBONES:  # the runs table printed at the end names each transfer and probe
        assert f"{directory}/voc/{name} | VOC" in done.stdout
        assert f"{directory}/probe/{name} | probe" in done.stdout
    assert "Top-1 accuracy (%) on val" in page


def test_a_rerun_resumes_every_stage(demo):
    directory, _ = demo
    before = (directory / "runs" / "texture_k6" / "metrics.jsonl").read_text()
    probed = directory / "probe" / "texture_k6" / "layers" / "fc7" / "metrics.jsonl"
    probe_before = probed.read_text()
    again = make_demo(directory)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (directory / "runs" / "texture_k6" / "metrics.jsonl").read_text() == before
    assert probed.read_text() == probe_before
    assert "train features" not in again.stderr  # cached
