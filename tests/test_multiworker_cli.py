"""Several hosts as docs/train.md shows them, through the installed commands: two worker
processes on 127.0.0.1, each with its own TF_CONFIG index, train one model with
tfambient-train (each in its own workdir, as two hosts without a shared disk) and fine-tune
one with tfambient-voc (in one shared workdir); a wrong TF_CONFIG, a port already taken or a
worker that never comes is one line and exit status 2."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from killing import (
    assert_logged_alike,
    assert_same_figures,
    contents,
    figures,
    logged_steps,
    without_timing,
)
from tiny import ALEXNET_FLAGS, smoke_flags
from tiny import IMAGE_SIZE as SIZE
from voc_tree import write_tree
from workers import BIN, command_env, free_ports, run_command, run_workers, tf_config

pytestmark = pytest.mark.slow


def logged_losses(stderr: str) -> list[tuple[int, str]]:
    """(step, loss) of each log line a worker wrote ("step 2  loss 1.099  ...")."""
    return [(int(step), loss) for step, loss in re.findall(r"\] step (\d+)  loss (\S+)", stderr)]


def assert_trained_together(workers: list[subprocess.CompletedProcess], steps: int) -> None:
    """Both ended well, under one MultiWorkerMirroredStrategy, and logged the same losses."""
    for worker in workers:
        assert worker.returncode == 0, worker.stderr[-3000:]
        # MultiWorkerMirroredStrategy's class:
        assert "CollectiveAllReduceStrategy over 2 replica(s)" in worker.stderr
    losses = [logged_losses(worker.stderr) for worker in workers]
    assert [step for step, _ in losses[0]] == steps
    assert losses[0] == losses[1]  # all-reduced: one model


def assert_worker_1_checkpointed(workdir: Path, steps: int) -> None:
    """What a worker other than the chief writes: its checkpoints, in WORKDIR/workers/1/."""
    assert [p.name for p in (workdir / "workers").iterdir()] == ["1"]
    assert [p.name for p in (workdir / "workers" / "1").iterdir()] == ["ckpt"]
    assert f"ckpt-{steps}" in (workdir / "workers" / "1" / "ckpt" / "checkpoint").read_text()


def train_flags(data_dir: Path, workdir: Path, *more: str) -> list[str]:
    """tfambient-train's flags for one worker: 4 steps, logged every 2 (``more`` overrides)."""
    return [
        *smoke_flags(data_dir, workdir),
        "--batch_size=8",
        "--train_steps=4",
        "--steps_per_loop=2",
        "--eval_every=4",
        "--checkpoint_every=4",
        # --strategy=auto: TF_CONFIG names two workers, so MultiWorkerMirroredStrategy
        *more,
    ]


def test_two_hosts_train_one_model_with_tfambient_train(data_dir, tmp_path):
    workdirs = [tmp_path / "host0", tmp_path / "host1"]
    workers = run_workers("tfambient-train", lambda i: train_flags(data_dir, workdirs[i]))
    assert_trained_together(workers, [2, 4])
    chief, other = workdirs
    assert sorted(p.name for p in chief.iterdir()) == [
        "ckpt",
        "config.json",
        "export",
        "flags.txt",
        "metrics.jsonl",
        "result.json",
        "tb",
    ]
    records = [json.loads(line) for line in (chief / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], f"{r['loss']:.4g}") for r in records] == logged_losses(workers[0].stderr)
    assert "eval_loss" in records[-1]  # the chief evaluated
    assert json.loads((chief / "result.json").read_text())["final"]["step"] == 4
    assert (chief / "export" / "backbone" / "saved_model.pb").is_file()
    assert (chief / "export" / "backbone.keras").is_file()
    assert [p.name for p in other.iterdir()] == ["workers"]  # and nothing else
    assert_worker_1_checkpointed(other, 4)
    assert all("trained to step 4" in worker.stdout for worker in workers)
    assert f"backbone: {chief / 'export'}" in workers[0].stdout
    assert f"checkpoints: {other / 'workers' / '1'}" in workers[1].stdout


def roll_back(checkpoints: Path, step: int) -> None:
    """A checkpoint directory as a kill before the checkpoint after ``step`` leaves it."""
    for path in checkpoints.glob("ckpt-*"):
        if int(path.name.split(".")[0].removeprefix("ckpt-")) > step:
            path.unlink()
    shutil.rmtree(checkpoints / "best", ignore_errors=True)  # the evaluation came later
    state = f'model_checkpoint_path: "ckpt-{step}"\nall_model_checkpoint_paths: "ckpt-{step}"\n'
    (checkpoints / "checkpoint").write_text(state)


def test_two_hosts_resume_where_they_stopped_and_a_finished_rerun_changes_nothing(
    data_dir, tmp_path
):
    """Both workers stopped after logging step 4 but before checkpointing it: rerun, each
    restores its own step-2 checkpoint (its input position and dropout states included) and
    they log what a run never stopped logs, step 4 once; rerun again, nothing changes."""
    references = [tmp_path / "reference0", tmp_path / "reference1"]
    workdirs = [tmp_path / "host0", tmp_path / "host1"]
    more = ("--checkpoint_every=2", "--keep_checkpoints=2", "--color_jitter=0.5")
    done = run_workers("tfambient-train", lambda i: train_flags(data_dir, references[i], *more))
    assert_trained_together(done, [2, 4])
    for reference, workdir in zip(references, workdirs, strict=True):
        shutil.copytree(reference, workdir)
    (workdirs[0] / "result.json").unlink()  # written after the last checkpoint
    shutil.rmtree(workdirs[0] / "export")
    roll_back(workdirs[0] / "ckpt", 2)
    roll_back(workdirs[1] / "workers" / "1" / "ckpt", 2)
    assert logged_steps(workdirs[0]) == [2, 4]

    resumed = run_workers("tfambient-train", lambda i: train_flags(data_dir, workdirs[i], *more))
    assert_trained_together(resumed, [4])
    assert logged_losses(resumed[0].stderr) == logged_losses(done[0].stderr)[1:]
    assert_logged_alike(workdirs[0], references[0])
    result = json.loads((workdirs[0] / "result.json").read_text())
    assert_same_figures([without_timing(result["final"])], figures(references[0])[-1:])

    finished = [contents(workdir) for workdir in workdirs]
    rerun = run_workers("tfambient-train", lambda i: train_flags(data_dir, workdirs[i], *more))
    for worker in rerun:
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "trained to step 4" in worker.stdout
    assert [contents(workdir) for workdir in workdirs] == finished


def test_two_hosts_fine_tune_one_model_in_a_shared_workdir_with_tfambient_voc(tmp_path):
    voc_dir = write_tree(tmp_path / "voc")
    workdir = tmp_path / "shared"  # as on a shared filesystem

    def args(index: int) -> list[str]:
        return [
            "--backbone=random",
            f"--voc_dir={voc_dir}",
            f"--workdir={workdir}",
            "--mode=head",
            f"--image_size={SIZE}",
            *ALEXNET_FLAGS,
            "--batch_size=8",
            "--train_steps=4",
            "--steps_per_loop=2",
            "--test_crops=1",
            "--strategy=multiworker",
        ]

    workers = run_workers("tfambient-voc", args)
    assert_trained_together(workers, [2, 4])
    assert sorted(p.name for p in workdir.iterdir()) == [
        "ap_table.csv",
        "ap_table.json",
        "ap_table.md",
        "ckpt",
        "config.json",
        "metrics.json",
        "metrics.jsonl",
        "model.keras",
        "problems.csv",
        "tb",
        "workers",
    ]
    assert json.loads((workdir / "metrics.json").read_text())["images"] == 32
    assert_worker_1_checkpointed(workdir, 4)
    maps = [[line for line in w.stdout.splitlines() if line.startswith("mAP")] for w in workers]
    assert maps[0] == maps[1] and len(maps[0]) == 1  # one model: one score


def assert_one_line(out: subprocess.CompletedProcess, message: str) -> None:
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


TWO = ["127.0.0.1:23456", "127.0.0.1:23457"]


def spec(cluster: dict, task_type: str = "worker", index: int = 0) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('{"cluster": {"worker": ', "TF_CONFIG is not JSON", id="not-json"),
        pytest.param(json.dumps(TWO), "TF_CONFIG must be a JSON object", id="a-list"),
        pytest.param(
            '{"task": {"type": "worker", "index": 0}}', 'names no "cluster"', id="no-cluster"
        ),
        pytest.param(json.dumps({"cluster": {"worker": TWO}}), 'has no "task"', id="no-task"),
        pytest.param(
            spec({"worker": TWO}, index=2),
            "task index must be 0 to 1 (the cluster names 2 workers), got 2",
            id="index-out-of-range",
        ),
        pytest.param(
            spec({"worker": TWO}, task_type="chief"),
            "task type must be \"worker\", got 'chief'",
            id="task-type",
        ),
        pytest.param(
            spec({"chief": TWO[:1], "worker": TWO[1:]}),
            "cluster has job(s) chief: tfambient runs one job",
            id="chief-job",
        ),
        pytest.param(spec({"worker": ["host0"]}), "address 'host0' is not host:port", id="no-port"),
        pytest.param(spec({"worker": TWO[:1] * 2}), "a worker address twice", id="twice"),
    ],
)
def test_a_wrong_tf_config_is_one_line_and_status_2(tmp_path, text, message):
    (tmp_path / "dataset.json").write_text("{}")  # never read: TF_CONFIG is checked first
    out = run_command(
        "tfambient-train", f"--data_dir={tmp_path}", f"--workdir={tmp_path}/w", tf_config_text=text
    )
    assert_one_line(out, message)
    assert not (tmp_path / "w").exists()


def test_tfambient_voc_checks_tf_config_too(tmp_path):
    out = run_command(
        "tfambient-voc",
        f"--voc_dir={tmp_path}",
        f"--workdir={tmp_path}/w",
        "--strategy=multiworker",
        tf_config_text='{"cluster": {"worker": ["127.0.0.1:23456"]}}',
    )
    assert_one_line(out, 'TF_CONFIG has no "task"')


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("tfambient-probe", ["--train_dir=t", "--val_dir=v"]),
        ("tfambient-features", ["--images=i", "--backbone=random"]),
    ],
)
def test_tfambient_probe_and_features_check_tf_config_too(tmp_path, command, args):
    out = run_command(
        command,
        *args,
        f"--workdir={tmp_path}/w" if command == "tfambient-probe" else f"--output={tmp_path}/w",
        tf_config_text='{"cluster": {"worker": ["127.0.0.1:23456"]}}',
    )
    assert_one_line(out, 'TF_CONFIG has no "task"')
    assert not (tmp_path / "w").exists()


def test_a_port_in_use_on_this_host_is_one_line_and_status_2(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = run_command(
            "tfambient-train",
            f"--data_dir={tmp_path}",
            f"--workdir={tmp_path}/w",
            tf_config_text=tf_config([port, *free_ports(1)], 0),
        )
    assert_one_line(out, f"port {port} of this worker (127.0.0.1:{port}, index 0 of TF_CONFIG)")


def test_a_worker_whose_peer_never_comes_names_it_within_the_timeout(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    ports = free_ports(2)
    start = time.monotonic()
    out = run_command(
        "tfambient-train",
        f"--data_dir={tmp_path}",
        f"--workdir={tmp_path}/w",
        "--cluster_timeout=2",
        tf_config_text=tf_config(ports, 1),
        timeout=120,  # TensorFlow's import, then 2 s of waiting; without a bound, forever
    )
    seconds = time.monotonic() - start
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and len(lines) == 2, out.stderr
    assert f"waiting up to 2 s for 127.0.0.1:{ports[0]}" in lines[0]
    assert lines[1].startswith(
        "tfambient-train: error: worker 1 of 2: after 2 s, still waiting for "
        f"worker 0 at 127.0.0.1:{ports[0]} (Connection refused): start the same command there"
    )
    assert seconds < 100, seconds


def train_as_worker_0(tmp_path: Path, ports: list[int]) -> subprocess.CompletedProcess:
    """tfambient-train as worker 0 of ``ports``, waiting 3 s for the others (TensorFlow
    alone would wait for a worker 1 that never answers forever)."""
    return run_command(
        "tfambient-train",
        f"--data_dir={tmp_path}",
        f"--workdir={tmp_path}/w",
        "--cluster_timeout=3",
        tf_config_text=tf_config(ports, 0),
        timeout=120,
    )


def test_another_program_on_a_peer_port_is_named_within_the_timeout(tmp_path):
    (tmp_path / "dataset.json").write_text("{}")
    with socket.create_server(("127.0.0.1", 0)) as impostor:  # accepts, never speaks
        ports = [free_ports(1)[0], impostor.getsockname()[1]]
        out = train_as_worker_0(tmp_path, ports)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and len(lines) == 2, out.stderr
    assert (
        f"after 3 s, still waiting for worker 1 at 127.0.0.1:{ports[1]} (something listens "
        "there, but does not answer as a tfambient worker)" in lines[1]
    )


def test_workers_with_different_tf_configs_name_each_other(tmp_path):
    """Two hosts whose TF_CONFIGs disagree on the worker list: the one that reaches the
    other sees the difference and says so, where TensorFlow would wait forever."""
    (tmp_path / "dataset.json").write_text("{}")
    ports = free_ports(3)
    configs = [tf_config(ports[:2], 0), tf_config([ports[2], ports[1]], 1)]
    # They never meet, so each waits this long: long enough for worker 0 to knock while
    # worker 1 still answers (each answers from its start, through TensorFlow's import, to
    # the end of its wait), also with 2 loaded cores importing TensorFlow at different speeds.
    args = [f"--data_dir={tmp_path}", f"--workdir={tmp_path}/w", "--cluster_timeout=30"]
    workers = [
        subprocess.Popen(
            [str(BIN / "tfambient-train"), *args],
            stderr=subprocess.PIPE,
            text=True,
            env=command_env(text),
        )
        for text in configs
    ]
    errors = [worker.communicate(timeout=240)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [2, 2], errors
    assert (
        f"worker 1 at 127.0.0.1:{ports[1]} (a tfambient worker whose TF_CONFIG lists other "
        "workers)" in errors[0]
    ), [error[-600:] for error in errors]
    assert "Traceback" not in errors[0] + errors[1]


def answer_as(server: socket.socket, line: bytes, stop: threading.Event) -> None:
    """A worker elsewhere that answers every knock with ``line``."""
    server.settimeout(0.2)
    while not stop.is_set():
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.settimeout(5)
                connection.makefile("rb").readline()
                connection.sendall(line)


def test_a_worker_started_with_the_wrong_index_is_named(tmp_path):
    """The same worker list on two hosts, but both say index 0 (each host has its port)."""
    (tmp_path / "dataset.json").write_text("{}")
    ports = free_ports(2)
    workers = [f"127.0.0.1:{port}" for port in ports]
    # The protocol, as tfambient/hosts.Meeting states it: KEY is a digest of the list.
    key = hashlib.sha256(json.dumps(workers).encode()).hexdigest()[:16]
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", ports[1])) as server:
        other = threading.Thread(
            target=answer_as, args=(server, f"tfambient-worker/1 {key} 0\n".encode(), stop)
        )
        other.start()
        try:
            out = train_as_worker_0(tmp_path, ports)
        finally:
            stop.set()
            other.join()
    assert out.returncode == 2, out.stderr[-3000:]
    assert (
        f"still waiting for worker 1 at 127.0.0.1:{ports[1]} (it is worker 0 in its TF_CONFIG, "
        "not 1: check its task index)" in out.stderr.strip().splitlines()[-1]
    )


def test_a_peer_that_answered_wrongly_then_stopped_is_named_for_what_it_said(tmp_path):
    """The other worker's own wait can end first (its port then refuses): the reason it was
    not accepted is what it answered, not the refusal the last knock met."""
    (tmp_path / "dataset.json").write_text("{}")
    ports = free_ports(2)
    server = socket.create_server(("127.0.0.1", ports[1]))

    def answer_once_and_go() -> None:
        with server:
            server.settimeout(60)
            connection, _ = server.accept()
            with connection:
                connection.makefile("rb").readline()
                connection.sendall(b"tfambient-worker/1 0123456789abcdef 1\n")

    other = threading.Thread(target=answer_once_and_go)
    other.start()
    out = train_as_worker_0(tmp_path, ports)
    other.join()
    assert out.returncode == 2, out.stderr[-3000:]
    assert (
        f"still waiting for worker 1 at 127.0.0.1:{ports[1]} (a tfambient worker whose "
        "TF_CONFIG lists other workers)" in out.stderr.strip().splitlines()[-1]
    ), out.stderr


@pytest.mark.parametrize("command", ["train", "voc", "probe", "features", "data_service"])
def test_defining_the_flags_imports_no_tensorflow(command):
    """--help and flag mistakes start nothing; a multi-worker strategy starts TensorFlow."""
    script = (
        f"import sys, tfambient.cli.{command}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
