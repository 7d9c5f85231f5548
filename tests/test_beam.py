"""--engine=beam: tfambient-prepare and tfambient-cluster as Apache Beam pipelines on the
Python DirectRunner with two worker processes, against the local engine on the same
corpus (every naming scheme, a missing clip, a corrupt file, a clip without audio, bad CSV
rows; cuts longer than their segments, frames without sound, defaults the sample cannot
support): the same records, labels, splits, failures, dropped frames, rejected rows and
reduced defaults; --frame_at reaching the workers; a decoder that kills its process; a
non-local filesystem carrying the CSV, media and output; reruns."""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import beam_test_fs
import clips
import numpy as np
import pytest
from corpus import write_partial_corpus
from crashing_work import extract_or_die
from prepare_run import by_frame, prepare_args, read_dataset, run

from tfambient.audioset import ClipFile, Segment
from tfambient.contracts.files import is_partial

pytestmark = pytest.mark.slow
beam_engine = pytest.importorskip("tfambient.beam_engine", reason="needs tfambient[beam]")

TESTS = Path(__file__).parent
TWO_WORKERS = "runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing"
CSV_FILES = ("failures.csv", "dropped_frames.csv", "rejected_rows.csv")


def beam_env(fs_root: Path | None = None) -> dict[str, str]:
    """The commands' environment: the test FileSystem importable (beam_plugins)."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    if fs_root:
        env[beam_test_fs.ROOT_VARIABLE] = str(fs_root)
    return env


@pytest.fixture(scope="module")
def local(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "data"
    run("tfambient-prepare", *prepare_args(corpus, out, "--num_workers=2"))
    return out


@pytest.fixture(scope="module")
def beam(corpus, tmp_path_factory):
    """Run with a HOME of its own, where Beam's default runner would cache its Prism."""
    out = tmp_path_factory.mktemp("beam") / "data"
    args = prepare_args(corpus, out, "--engine=beam", f"--beam_pipeline_options={TWO_WORKERS}")
    home = tmp_path_factory.mktemp("home")
    return out, run("tfambient-prepare", *args, env=beam_env() | {"HOME": str(home)}), home


def assert_same_records(expected: Path, actual: Path, labels: bool = True) -> None:
    """The same frames (by clip id and frame index) with the same fields: descriptors
    equal as float32, labels and every other field identical."""
    want, got = by_frame(read_dataset(expected)), by_frame(read_dataset(actual))
    assert sorted(got) == sorted(want)
    for frame, record in want.items():
        assert sorted(got[frame]) == sorted(record)
        for key, value in record.items():
            if labels or not key.startswith("label/"):
                assert np.array_equal(got[frame][key], value), (frame, key)


def shard_of_each_frame(data_dir: Path) -> dict[tuple[str, int], str]:
    """(clip id, frame index) -> the shard file holding it."""
    import tensorflow as tf

    from tfrecords_tools import reader

    spec = {
        "clip/id": tf.io.FixedLenFeature([], tf.string),
        "frame/index": tf.io.FixedLenFeature([], tf.int64),
    }
    where = {}
    for shard in json.loads((data_dir / "dataset.json").read_text())["shards"]:
        for batch in reader.parse_batches([data_dir / shard["path"]], spec):
            for clip, index in zip(batch["clip/id"], batch["frame/index"], strict=True):
                where[(clip.decode(), int(index))] = shard["path"]
    return where


def assert_same_outputs(local: Path, out: Path) -> dict:
    """What the local engine wrote to ``local``, the Beam engine wrote to ``out``: records,
    the split and shard of each frame, the CSV lists, dataset.json (but the per-cluster
    details, which follow from the same labels) and clusters/. Returns dataset.json."""
    assert_same_records(local, out)
    assert shard_of_each_frame(out) == shard_of_each_frame(local)
    for name in CSV_FILES:
        assert (out / name).read_text() == (local / name).read_text(), name
    want, got = (json.loads((d / "dataset.json").read_text()) for d in (local, out))
    for key in ("counts", "shards", "schema", "splits", "descriptors", "extraction"):
        assert got[key] == want[key], key
    assert got["clusters"]["reduced_defaults"] == want["clusters"]["reduced_defaults"]
    assert got["clusters"]["fields"].keys() == want["clusters"]["fields"].keys()
    for field, entry in want["clusters"]["fields"].items():
        assert {k: v for k, v in got["clusters"]["fields"][field].items() if k != "clusters"} == {
            k: v for k, v in entry.items() if k != "clusters"
        }
    assert sorted(p.name for p in (out / "clusters").iterdir()) == sorted(
        p.name for p in (local / "clusters").iterdir()
    )
    return got


def test_beam_gives_the_local_engine_s_records_labels_splits_and_failures(local, beam):
    out, result, home = beam
    assert "9 clips used of 14 segments" in result.stdout
    assert_same_outputs(local, out)
    # The Python DirectRunner, built explicitly: Beam's DirectRunner would have made
    # ~/.apache_beam/cache/prism/bin to download its Prism runner into.
    assert not (home / ".apache_beam").exists()
    assert not [p for p in out.rglob("*") if is_partial(p)] and not list(out.glob("beam-work-*"))


def partial_args(corpus, output_dir, *extra):
    """Five frames a clip (the sound of some stops before the last ones) and --num_bits
    left at its default, more than the fit sample supports."""
    return [
        f"--audioset={corpus.csv}",
        f"--media_dir={corpus.media_dir}",
        f"--output_dir={output_dir}",
        "--frames_per_clip=5",
        "--short_side=32",
        "--descriptors=mfcc_summary",
        "--num_clusters=2",
        "--val_fraction=0.5",  # three of the eight clips: 22 train frames, fewer than 30 bits
        "--noprogress",
        *extra,
    ]


def test_clips_used_in_part_and_reduced_defaults_are_the_local_engine_s(tmp_path):
    """Cuts longer than their segments, frames dropped for their sound (dropped_frames.csv)
    and defaults reduced to what the sample supports come out of Beam as out of the local
    engine."""
    corpus = write_partial_corpus(tmp_path / "corpus")
    local, out = tmp_path / "local", tmp_path / "beam"
    run("tfambient-prepare", *partial_args(corpus, local, "--num_workers=2"))
    beam_args = ("--engine=beam", f"--beam_pipeline_options={TWO_WORKERS}")
    run("tfambient-prepare", *partial_args(corpus, out, *beam_args), env=beam_env())
    manifest = assert_same_outputs(local, out)
    assert manifest["counts"]["frames_dropped"] == {"silent_audio": 2, "too_short": 1}
    assert {r["flag"] for r in manifest["clusters"]["reduced_defaults"]} == {"--num_bits"}
    frames = by_frame(read_dataset(out))
    assert {i for c, i in frames if c == corpus.cuts[0]} == set(range(5))


def test_a_rerun_changes_nothing_and_an_unfinished_run_s_files_are_dropped(beam, corpus):
    out, _, _ = beam
    task = out / "parts" / "task-00000-of-00001"
    # What a run killed before its commit leaves: records no sidecar lists.
    dead = task / "beam-killed" / "records-00000-of-00001.tfrecord"
    dead.parent.mkdir()
    shutil.copy(next(task.glob("beam-*/records-*.tfrecord")), dead)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "shards").iterdir()}
    parts = sorted(p.relative_to(out) for p in (out / "parts").rglob("*") if p.is_file())
    args = prepare_args(corpus, out, "--engine=beam", f"--beam_pipeline_options={TWO_WORKERS}")
    result = run("tfambient-prepare", *args, env=beam_env())
    assert "up to date" in result.stderr
    assert "resuming: 12 clips already done" in result.stderr
    assert not dead.exists()
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "shards").iterdir()}
    assert after == before
    now = sorted(p.relative_to(out) for p in (out / "parts").rglob("*") if p.is_file())
    assert now == [p for p in parts if "beam-killed" not in str(p)]


def test_a_clip_that_kills_its_worker_process_is_listed_and_the_job_finishes(
    corpus, tmp_path, monkeypatch
):
    """... and the other clip's records are what extraction gives here with the same
    settings: --frame_at=keyframe reaches the workers (the clip's one keyframe is at 0 s,
    its exact centre frame at 2.5 s)."""
    monkeypatch.setenv("PYTHONPATH", beam_env()["PYTHONPATH"])  # workers import crashing_work
    ytid = clips.corpus_ytid(7)  # a usable clip, at the top of the media dir
    clip = corpus.media_dir / f"{ytid}_30.000.mp4"
    crash = tmp_path / "media" / f"crash-{clip.name}"
    crash.parent.mkdir()
    shutil.copy(clip, crash)
    jobs = [
        (Segment(ytid, 30.0, 35.0, ("/m/x",), "s.csv", 1, "30", "35"), ClipFile(clip, True, "")),
        (
            Segment("crashcrash1", 30.0, 35.0, ("/m/x",), "s.csv", 2, "30", "35"),
            ClipFile(crash, True, ""),
        ),
    ]
    import tensorflow as tf

    from tfambient import extract, prepare

    settings = extract.ExtractSettings(
        short_side=32, descriptors=("mfcc_summary",), frame_at="keyframe"
    )
    engine = beam_engine.BeamEngine(beam_engine.pipeline_options(TWO_WORKERS), work=extract_or_die)
    store = prepare.PartStore(tmp_path / "data" / "parts" / "task-00000-of-00001")
    engine.extract(jobs, store, settings, False)
    (sidecar,) = store.sidecars.values()
    assert sidecar["clips"] == {f"{ytid}_30.000": 1, "crashcrash1_30.000": 0}
    (failure,) = sidecar["failures"]
    assert failure["reason"] == "crashed" and str(crash) in failure["detail"]
    assert sidecar["records"] == 1 and len(sidecar["files"]) >= 1

    files = [str(tmp_path / "data" / f) for f in sidecar["files"]]
    written = [example_fields(r.numpy()) for r in tf.data.TFRecordDataset(files)]

    def extracted_here(frame_at: str) -> list[dict]:
        segment, clip_file = jobs[0]
        result = extract.extract_clip(
            segment, str(clip_file.path), replace(settings, frame_at=frame_at)
        )
        return [example_fields(prepare.frame_example(segment, f)) for f in result.frames]

    here = extracted_here("keyframe")
    assert [r["frame/time_s"] for r in written] == [r["frame/time_s"] for r in here] == [[0.0]]
    assert [r["frame/time_s"] for r in extracted_here("exact")] == [[2.5]]
    for got, want in zip(written, here, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():  # descriptors equal to float32 rounding
            if isinstance(value[0], float):
                np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=key)
            else:
                assert got[key] == value, key


def example_fields(record: bytes) -> dict[str, list]:
    """A serialized tf.train.Example's features as lists of values."""
    import tensorflow as tf

    features = tf.train.Example.FromString(record).features.feature
    return {k: list(getattr(f, f.WhichOneof("kind")).value) for k, f in features.items()}


def test_csv_media_and_output_on_another_filesystem(corpus, local, tmp_path):
    """Only Beam's FileSystems can reach tfambient-test:// (as with gs://): the CSV, the
    clips and the output all live there; the results equal the local engine's, and
    tfambient-cluster --engine=beam relabels them there as the local engine does here."""
    root = tmp_path / "bucket"
    shutil.copytree(corpus.media_dir, root / "clips")
    shutil.copy(corpus.csv, root / "segments.csv")
    options = f"{TWO_WORKERS},beam_plugins=beam_test_fs"
    env = beam_env(root)
    args = prepare_args(corpus, beam_test_fs.url("data"), "--engine=beam")
    args = [a for a in args if not a.startswith(("--audioset", "--media_dir"))]
    result = run(
        "tfambient-prepare",
        f"--audioset={beam_test_fs.url('segments.csv')}",
        f"--media_dir={beam_test_fs.url('clips')}",
        f"--beam_pipeline_options={options}",
        *args,
        env=env,
    )
    out = root / "data"
    assert f"prepared {beam_test_fs.url('data')}" in result.stdout
    assert_same_records(local, out)
    with open(out / "failures.csv") as f:
        failures = {row["clip_id"]: row for row in csv.DictReader(f)}
    with open(local / "failures.csv") as f:
        expected = {row["clip_id"]: row for row in csv.DictReader(f)}
    assert failures.keys() == expected.keys()
    for clip, row in failures.items():
        assert row["reason"] == expected[clip]["reason"]
        assert row["source"] == expected[clip]["source"].replace(
            str(corpus.csv), beam_test_fs.url("segments.csv")
        )
        assert "/tmp" not in row["detail"].replace(str(tmp_path), "")  # names the URL, not a copy

    relabelled = tmp_path / "local-relabelled"
    shutil.copytree(local, relabelled)
    cluster_args = ["--num_clusters=2", "--descriptors=texture", "--num_bits=2", "--noprogress"]
    run("tfambient-cluster", f"--data_dir={relabelled}", *cluster_args)
    run(
        "tfambient-cluster",
        f"--data_dir={beam_test_fs.url('data')}",
        "--engine=beam",
        f"--beam_pipeline_options={options}",
        *cluster_args,
        env=env,
    )
    assert_same_records(relabelled, out)
    manifest = json.loads((out / "dataset.json").read_text())
    assert set(manifest["clusters"]["fields"]) == {"label/texture_k2", "label/texture_bits2"}
    assert not list(out.glob("shards.*")) and not list(out.glob("beam-work-*"))


def test_the_direct_runner_is_python_s_never_prism():
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    for text in ("", "runner=DirectRunner", "direct_num_workers=2"):
        options = beam_engine.pipeline_options(text, 3)
        assert isinstance(beam_engine.make_runner(options), fn_runner.FnApiRunner), text
    options = beam_engine.pipeline_options("direct_num_workers=2").get_all_options()
    assert options["direct_running_mode"] == "multi_processing"
    assert options["direct_num_workers"] == 2
    assert (
        beam_engine.make_runner(beam_engine.pipeline_options("runner=FlinkRunner")) == "FlinkRunner"
    )
    with pytest.raises(beam_engine.BeamOptionsError, match="not key=value"):
        beam_engine.pipeline_options("runner")


def test_beam_mistakes_are_one_line(corpus, tmp_path):
    missing_beam = tmp_path / "no_beam"
    (missing_beam / "apache_beam").mkdir(parents=True)
    (missing_beam / "apache_beam" / "__init__.py").write_text(
        "raise ImportError('not installed')\n"
    )
    cases = [
        (["--engine=beam"], {"PYTHONPATH": str(missing_beam)}, "pip install 'tfambient[beam]'"),
        (["--engine=beam", "--beam_pipeline_options=runner"], {}, "is not key=value"),
        (["--beam_pipeline_options=runner=DirectRunner"], {}, "needs --engine=beam"),
        (["--engine=beam", "--num_tasks=2"], {}, "--num_tasks"),
    ]
    for extra, env, message in cases:
        args = prepare_args(corpus, tmp_path / "out", *extra)
        result = run("tfambient-prepare", *args, check_rc=2, env=dict(os.environ, **env))
        assert result.stderr.strip().splitlines()[-1].startswith("tfambient-prepare: error:")
        assert message in result.stderr.strip().splitlines()[-1], result.stderr[-500:]
    url = ["--output_dir=gs://bucket/data"]
    result = run("tfambient-prepare", *prepare_args(corpus, "x"), *url, check_rc=2)
    assert "needs --engine=beam" in result.stderr
