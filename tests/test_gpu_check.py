"""make gpu-check's script (benchmarks/gpu_check.py): on this machine without a GPU it says
so in one line and exits 0; --dry_run runs all of its code at tiny sizes on the CPU (two
logical CPUs standing for two GPUs) and writes the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"


def gpu_check(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: the no-GPU path cannot be seen here")
    result = gpu_check(f"--output={tmp_path / 'out.json'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines() == [
        "gpu-check: no GPU on this machine; nothing to measure (see --dry_run)"
    ]
    assert result.stderr == ""
    assert not (tmp_path / "out.json").exists()


def test_a_dry_run_measures_everything_it_promises(tmp_path):
    output = tmp_path / "gpu-check.json"
    result = gpu_check(
        "--dry_run", "--archs=alexnet", "--precisions=float32", f"--output={output}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(output.read_text())
    assert [(s["arch"], s["precision"], s["jit"]) for s in figures["steps"]] == [
        ("alexnet", "float32", False),
        ("alexnet", "float32", True),
    ]
    for step in figures["steps"]:
        assert step["compute_images_per_s"] > 0 and step["end_to_end_images_per_s"] > 0
        assert 0 <= step["input_wait_fraction"] <= 1
    assert figures["input"]["images_per_s"] > 0 and figures["input"]["ratio_to_decode_bound"] > 0
    replicas = figures["replicas"]
    assert len(replicas["devices"]) == 2
    assert len(replicas["loss_one_device"]) == len(replicas["loss_all_devices"]) == 5
    # Two replicas sum halves of the same global batch: float32 rounding apart, one curve.
    assert replicas["max_relative_difference"] < 1e-4
    assert replicas["loss_one_device"][0] != replicas["loss_one_device"][-1]  # it trained
    assert replicas["scaling"] > 0
    for heading in ("(1) step", "(2) input pipeline", "(3) 2 device(s) mirrored", "written:"):
        assert heading in result.stdout
