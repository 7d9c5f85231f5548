"""tfambient-prepare survives what real runs meet: a kill -9 part-way, several machines
sharing one CSV, and clips that must be downloaded first."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import clips
import imageio_ffmpeg
import pytest
from prepare_run import BIN, FRAMES_PER_CLIP, by_frame, prepare_args, read_dataset, run
from served import download_env, failing_ffmpeg_dir, serve

from tfambient.audioset import write_segments_csv
from tfambient.media import probe
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


@pytest.mark.parametrize(
    ("mode", "ffmpeg_flag"),
    [("sections", None), ("whole", "--ffmpeg=ffmpeg")],
    ids=["sections-default-ffmpeg", "whole-ffmpeg-on-path"],
)
def test_missing_clips_are_downloaded_first(tmp_path, mode, ffmpeg_flag):
    """Served 8 s videos, segments 2-7 s. First on the PATH, an ffmpeg that must not be used:
    a broken one, or the user's own (imageio-ffmpeg's, linked) when --ffmpeg names it."""
    served = tmp_path / "served"
    ytids = [clips.corpus_ytid(i) for i in range(len(clips.KINDS) + 1)]
    for i, kind in enumerate(clips.KINDS):
        clips.write_kind_clip(served / f"{ytids[i]}.mp4", kind, duration_s=8.0, seed=i)
    wanted = [f"{ytid}_2.000" for ytid in ytids[:-1]]
    unavailable = f"{ytids[-1]}_2.000"  # not served: its download fails with a 404
    csv = write_segments_csv(tmp_path / "segments.csv", [(y, 2.0, 7.0, "/m/x") for y in ytids])
    if ffmpeg_flag:
        on_path = tmp_path / "bin"
        on_path.mkdir()
        (on_path / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
        expected_ffmpeg = on_path / "ffmpeg"
    else:
        on_path = failing_ffmpeg_dir(tmp_path)
        expected_ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    media, out = tmp_path / "clips", tmp_path / "data"
    with serve(served) as server:
        result = run(
            "tfambient-prepare",
            f"--audioset={csv}",
            f"--media_dir={media}",
            f"--output_dir={out}",
            "--download",
            f"--download_mode={mode}",
            f"--url_template={server.template}",
            "--num_workers=0",
            "--num_clusters=2",
            "--num_bits=0",
            "--val_fraction=0",
            "--noprogress",
            *[ffmpeg_flag] * bool(ffmpeg_flag),
            env=download_env(on_path),
        )
    assert f"downloading with {expected_ffmpeg} (ffmpeg version" in result.stderr
    assert not (on_path / "calls.log").exists()
    assert sorted(p.name for p in media.iterdir()) == sorted(f"{c}.mp4" for c in wanted)
    expected_s = 5.0 if mode == "sections" else 8.0
    for clip in wanted:
        assert expected_s <= probe(media / f"{clip}.mp4").duration_s <= expected_s + 0.5
    assert {clip for clip, _ in frames_of(out)} == set(wanted)
    failures = (out / "failures.csv").read_text()
    assert f"{unavailable}," in failures and "download_failed" in failures and "404" in failures


def test_an_ffmpeg_that_is_not_there_is_one_line(tmp_path):
    csv = write_segments_csv(tmp_path / "segments.csv", [(clips.corpus_ytid(0), 2.0, 7.0, "/m/x")])
    missing = tmp_path / "nowhere" / "ffmpeg"
    result = run(
        "tfambient-prepare",
        f"--audioset={csv}",
        f"--media_dir={tmp_path / 'clips'}",
        f"--output_dir={tmp_path / 'data'}",
        "--download",
        f"--ffmpeg={missing}",
        "--url_template=http://127.0.0.1:9/{ytid}.mp4",
        "--noprogress",
        check_rc=2,
    )
    last = result.stderr.strip().splitlines()[-1]
    assert str(missing) in last and "Traceback" not in result.stderr
