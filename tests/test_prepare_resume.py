"""tfambient-prepare survives what real runs meet: a kill -9 part-way, several machines
sharing one CSV, and clips that must be downloaded first."""

from __future__ import annotations

import functools
import http.server
import json
import signal
import subprocess
import threading
import time

import pytest
from prepare_run import BIN, FRAMES_PER_CLIP, by_frame, prepare_args, read_dataset, run

from tfambient import synthetic
from tfrecords_tools import reader

pytestmark = pytest.mark.slow


def frames_of(data_dir) -> list[tuple[str, int]]:
    return sorted(by_frame(read_dataset(data_dir)))


def expected_frames(corpus) -> list[tuple[str, int]]:
    return sorted((clip, i) for clip in corpus.kinds for i in range(FRAMES_PER_CLIP))


def test_a_killed_run_resumes_and_uses_every_clip_exactly_once(corpus, tmp_path):
    out = tmp_path / "data"
    args = prepare_args(corpus, out, "--num_workers=0", "--clips_per_part=1")
    job = subprocess.Popen([str(BIN / "tfambient-prepare"), *args], stderr=subprocess.DEVNULL)
    parts = out / "parts" / "task-00000-of-00001"
    deadline = time.monotonic() + 120
    while len(list(parts.glob("part-*.json"))) < 2 and job.poll() is None:
        assert time.monotonic() < deadline, "no part was committed"
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "dataset.json").exists()
    # Whatever is under a final name is complete.
    for records in parts.glob("part-*.tfrecord"):
        reader.count_records(records)
    committed = len(list(parts.glob("part-*.json")))

    result = run("tfambient-prepare", *args)
    assert f"resuming: {committed} clips already done" in result.stderr
    assert frames_of(out) == expected_frames(corpus)
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["counts"]["clips_used"] == len(corpus.kinds)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_tasks_on_several_machines_merge_into_one_dataset(corpus, tmp_path):
    out = tmp_path / "data"
    run(
        "tfambient-prepare",
        *prepare_args(corpus, out, "--num_workers=0", "--num_tasks=2", "--task_index=1"),
    )
    assert not (out / "dataset.json").exists()
    err = run("tfambient-prepare", f"--output_dir={out}", "--merge", check_rc=2).stderr
    assert "task-00000-of-00002" in err.strip().splitlines()[-1]
    run(
        "tfambient-prepare",
        *prepare_args(corpus, out, "--num_workers=0", "--num_tasks=2", "--task_index=0"),
    )
    parts = {p.parent.name for p in out.glob("parts/task-*/part-*.tfrecord")}
    assert parts == {"task-00000-of-00002", "task-00001-of-00002"}
    run(
        "tfambient-prepare",
        f"--output_dir={out}",
        "--merge",
        "--num_clusters=3",
        "--num_bits=4",
        "--val_fraction=0.25",
        "--noprogress",
    )
    assert frames_of(out) == expected_frames(corpus)
    failed = json.loads((out / "dataset.json").read_text())["counts"]["clips_failed"]
    assert sum(failed.values()) == len(corpus.failures)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_missing_clips_are_downloaded_first(corpus, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    wanted = sorted(corpus.kinds)[:3]
    unavailable = sorted(corpus.kinds)[3]  # not served: its download fails with a 404
    for clip in wanted:
        ytid = clip.rsplit("_", 1)[0]
        source = next(p for p in corpus.media_dir.rglob(f"*{ytid}*") if p.suffix == ".mp4")
        (served / f"{ytid}.mp4").write_bytes(source.read_bytes())
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ytids = [c.rsplit("_", 1)[0] for c in [*wanted, unavailable]]
        csv = synthetic.write_segments_csv(
            tmp_path / "segments.csv", [(y, 30.0, 35.0, "/m/x") for y in ytids]
        )
        media = tmp_path / "clips"
        out = tmp_path / "data"
        run(
            "tfambient-prepare",
            f"--audioset={csv}",
            f"--media_dir={media}",
            f"--output_dir={out}",
            "--download",
            f"--url_template=http://127.0.0.1:{server.server_port}/{{ytid}}.mp4",
            "--num_workers=0",
            "--num_clusters=2",
            "--num_bits=0",
            "--val_fraction=0",
            "--noprogress",
        )
    finally:
        server.shutdown()
    assert sorted(p.name for p in media.iterdir()) == sorted(f"{c}.mp4" for c in wanted)
    assert {clip for clip, _ in frames_of(out)} == set(wanted)
    failures = (out / "failures.csv").read_text()
    assert f"{unavailable}," in failures and "download_failed" in failures and "404" in failures
