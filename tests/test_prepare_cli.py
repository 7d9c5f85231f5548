"""tfambient-prepare, tfambient-cluster and tfrecords-inspect end to end, as a user runs
them, on a generated corpus with every naming scheme and every kind of broken input."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from prepare_run import FRAMES_PER_CLIP, by_frame, prepare_args, read_dataset, run
from sklearn.metrics import adjusted_rand_score

from tfambient import synthetic

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "data"
    result = run("tfambient-prepare", *prepare_args(corpus, out, "--num_workers=2"))
    return out, result


def test_every_usable_clip_is_in_the_shards_once_per_frame(prepared, corpus):
    records = read_dataset(prepared[0])
    frames = by_frame(records)
    assert len(records) == len(frames) == FRAMES_PER_CLIP * len(corpus.kinds)
    assert {clip for clip, _ in frames} == set(corpus.kinds)


def test_counts_failures_and_rejected_rows_are_reported(prepared, corpus):
    data_dir, result = prepared
    manifest = json.loads((data_dir / "dataset.json").read_text())
    counts = manifest["counts"]
    assert counts["clips_used"] == len(corpus.kinds)
    expected_failed = {}
    for reason in corpus.failures.values():
        expected_failed[reason] = expected_failed.get(reason, 0) + 1
    assert counts["clips_failed"] == expected_failed
    assert counts["rejected_rows"] == corpus.rejected
    assert sum(counts["frames"].values()) == FRAMES_PER_CLIP * len(corpus.kinds)
    with open(data_dir / "failures.csv") as f:
        rows = {r["clip_id"]: r["reason"] for r in csv.DictReader(f)}
    assert rows == corpus.failures
    assert "9 clips used of 14 segments" in result.stdout
    assert "CSV rows skipped" in result.stdout


def test_records_follow_the_schema(prepared, corpus):
    for (clip, index), r in by_frame(read_dataset(prepared[0])).items():
        image = tf.io.decode_jpeg(r["image/encoded"][0]).numpy()
        assert image.shape == (64, 85, 3)  # 48x64 frames, short side resized to 64
        assert (r["image/height"][0], r["image/width"][0]) == (64, 85)
        # Both frames sit in the middle of equal halves of the 5 s segment, in segment
        # time, also for the whole video whose segment starts 2 s in. (A segment file runs
        # a few tens of ms longer than 5 s: the codecs pad their last frame.)
        assert r["frame/time_s"][0] == pytest.approx([1.25, 3.75][index], abs=0.05)
        assert r["audio/start_s"][0] == pytest.approx([0.0, 1.25][index], abs=0.05)
        assert r["sound/texture"].shape == (502,) and np.isfinite(r["sound/texture"]).all()
        assert r["sound/mfcc"].shape == (3240,) and r["sound/mfcc_summary"].shape == (40,)
        kind = corpus.kinds[clip]
        assert [t.decode() for t in r["audioset/labels"]] == [f"/m/{kind}"]
        assert set(r["label/texture_bits4"]) <= {0, 1} and r["label/texture_bits4"].shape == (4,)


@pytest.mark.parametrize("descriptor", ["texture", "mfcc_summary"])
def test_sound_clusters_separate_the_sound_kinds(prepared, corpus, descriptor):
    frames = by_frame(read_dataset(prepared[0]))
    truth = [corpus.kinds[clip] for clip, _ in frames]
    found = [int(r[f"label/{descriptor}_k3"][0]) for r in frames.values()]
    assert adjusted_rand_score(truth, found) > 0.9


def test_clusters_are_described_and_drawn(prepared):
    data_dir = prepared[0]
    clusters = json.loads((data_dir / "clusters" / "clusters.json").read_text())
    assert set(clusters["fields"]) == {
        f"label/{d}_{suffix}"
        for d in ("texture", "mfcc", "mfcc_summary")
        for suffix in ("k3", "bits4")
    }
    texture = clusters["fields"]["label/texture_k3"]
    assert texture["examples"]["total"] == 18
    assert sum(c["total"] for c in texture["clusters"]) == 18
    for d in ("texture", "mfcc", "mfcc_summary"):
        image = tf.io.decode_png((data_dir / "clusters" / f"{d}_k3.png").read_bytes()).numpy()
        assert image.shape[0] > 100 and image.std() > 10


def test_inspect_verifies_the_prepared_shards(prepared):
    out = run("tfrecords-inspect", prepared[0]).stdout
    assert "every shard read to its end" in out and "label/texture_k3" in out


def test_inspect_names_a_truncated_shard(prepared, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared[0], data_dir)
    shard = max((data_dir / "shards").glob("train-*"), key=lambda p: p.stat().st_size)
    shard.write_bytes(shard.read_bytes()[:-10])
    assert shard.name in run("tfrecords-inspect", data_dir, check_rc=1).stderr


def test_rerunning_a_finished_command_changes_nothing(prepared, corpus):
    data_dir = prepared[0]
    before = {p: p.read_bytes() for p in (data_dir / "shards").iterdir()}
    result = run("tfambient-prepare", *prepare_args(corpus, data_dir, "--num_workers=0"))
    assert "up to date" in result.stderr
    assert {p: p.read_bytes() for p in (data_dir / "shards").iterdir()} == before


def test_reclustering_rewrites_only_the_labels(prepared, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared[0], data_dir)
    before = by_frame(read_dataset(data_dir))
    run(
        "tfambient-cluster",
        f"--data_dir={data_dir}",
        "--num_clusters=2,3",
        "--descriptors=texture",
        "--num_bits=0",
        "--noprogress",
    )
    after = by_frame(read_dataset(data_dir))
    assert after.keys() == before.keys()
    for key, record in after.items():
        assert {k for k in record if k.startswith("label/")} == {
            "label/texture_k2",
            "label/texture_k3",
        }
        for field, value in before[key].items():
            if not field.startswith("label/"):
                assert value.tolist() == record[field].tolist(), field
    assert not list((data_dir / "clusters").glob("mfcc*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output_dir=x", "--media_dir=."], "--audioset is required"),
        (["--audioset=nope.csv", "--media_dir=.", "--output_dir=x"], "nope.csv"),
        (["--audioset=x.csv", "--media_dir=/no/such/dir", "--output_dir=x"], "/no/such/dir"),
        (["--audioset=x.csv", "--media_dir=.", "--output_dir=/proc/x"], "--output_dir /proc/x"),
        (["--frames_per_clip=0"], "frames_per_clip"),
    ],
)
def test_user_mistakes_give_one_line_and_status_2(args, message, tmp_path):
    err = run("tfambient-prepare", *args, check_rc=2, cwd=tmp_path).stderr.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_changing_extraction_settings_on_a_rerun_is_refused(prepared, corpus, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared[0], data_dir)
    args = prepare_args(corpus, data_dir, "--num_workers=0", "--image_size=32")
    err = run("tfambient-prepare", *args, check_rc=2).stderr.strip()
    assert "--image_size=64 (now 32)" in err and len(err.splitlines()) == 1


def test_a_failed_first_run_does_not_fix_the_settings(corpus, tmp_path):
    out = tmp_path / "data"
    run("tfambient-prepare", *prepare_args(corpus, out, "--audioset=missing.csv"), check_rc=2)
    assert not (out / "parts" / "settings.json").exists()


def test_a_rerun_with_more_rows_recounts_without_relabelling(prepared, corpus, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared[0], data_dir)
    extra = synthetic.write_segments_csv(
        tmp_path / "extra.csv", [(synthetic.corpus_ytid(40), 30.0, 35.0, "/m/x")]
    )
    with open(extra, "a") as f:
        f.write('#NAME?, 30.000, 35.000, "/m/x"\n')
    args = prepare_args(corpus, data_dir, "--num_workers=0")
    args[0] = f"--audioset={corpus.csv},{extra}"
    result = run("tfambient-prepare", *args)
    assert "up to date" in result.stderr
    counts = json.loads((data_dir / "dataset.json").read_text())["counts"]
    assert counts["segments"] == 15
    assert counts["clips_failed"]["not_found"] == 2
    assert counts["rejected_rows"]["bad_id"] == 2
    assert (data_dir / "failures.csv").read_text().count("not_found") == 2


def test_failed_clips_are_retried_when_asked(prepared, corpus, tmp_path):
    data_dir, media = tmp_path / "data", tmp_path / "clips"
    shutil.copytree(prepared[0], data_dir)
    shutil.copytree(corpus.media_dir, media)
    unreadable = next(c for c, reason in corpus.failures.items() if reason == "unreadable")
    synthetic.write_kind_clip(media / f"{unreadable}.mp4", "tone", seed=99)  # mended
    args = prepare_args(corpus, data_dir, "--num_workers=0", f"--media_dir={media}")
    args.remove(f"--media_dir={corpus.media_dir}")
    run("tfambient-prepare", *args)
    assert json.loads((data_dir / "dataset.json").read_text())["counts"]["clips_used"] == 9
    run("tfambient-prepare", *args, "--retry_failed")
    manifest = json.loads((data_dir / "dataset.json").read_text())
    assert manifest["counts"]["clips_used"] == 10
    assert "unreadable" not in manifest["counts"]["clips_failed"]
    assert unreadable in {clip for clip, _ in by_frame(read_dataset(data_dir))}


def test_help_explains_every_flag():
    out = run("tfambient-prepare", "--help").stdout
    for flag in (
        "--audioset",
        "--media_dir",
        "--frames_per_clip",
        "--num_clusters",
        "--task_index",
        "--download",
        "--kmeans_max_samples",
    ):
        assert flag in out
