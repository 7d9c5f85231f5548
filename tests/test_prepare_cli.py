"""tfambient-prepare, tfambient-cluster and tfrecords-inspect end to end, as a user runs
them, on a generated corpus with every naming scheme and every kind of broken input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import clips
import numpy as np
import pytest
import tensorflow as tf
from corpus import clip_id, write_partial_corpus, write_plain_corpus
from prepare_run import FRAMES_PER_CLIP, by_frame, prepare_args, read_dataset, run
from sklearn.metrics import adjusted_rand_score

from tfambient.audioset import write_segments_csv
from tfambient.contracts.workdirs import DataDir

pytestmark = pytest.mark.slow

# Real AudioSet ids, which the class list shipped with tfambient names.
MUSIC, CROWD = "/m/04rlf", "/m/03qtwd"


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
        (["--image_size=96"], "--image_size is now --short_side"),  # an old flagfile
    ],
)
def test_user_mistakes_give_one_line_and_status_2(args, message, tmp_path):
    err = run("tfambient-prepare", *args, check_rc=2, cwd=tmp_path).stderr.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_changing_extraction_settings_on_a_rerun_is_refused(prepared, corpus, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared[0], data_dir)
    args = prepare_args(corpus, data_dir, "--num_workers=0", "--short_side=32")
    err = run("tfambient-prepare", *args, check_rc=2).stderr.strip()
    assert "--short_side=64 (now 32)" in err and len(err.splitlines()) == 1


def test_a_directory_prepared_before_short_side_was_named_so_still_resumes(
    prepared, corpus, tmp_path
):
    """Its settings file says image_size (the flag's old name): read as --short_side."""
    data_dir = tmp_path / "data"
    shutil.copytree(prepared[0], data_dir)
    settings = DataDir(data_dir).extraction_settings
    recorded = json.loads(settings.read_text())
    recorded["image_size"] = recorded.pop("short_side")
    settings.write_text(json.dumps(recorded))
    err = run("tfambient-prepare", *prepare_args(corpus, data_dir, "--short_side=32"), check_rc=2)
    assert "was prepared with --short_side=64 (now 32);" in err.stderr
    run("tfambient-prepare", *prepare_args(corpus, data_dir, "--num_workers=0"), check_rc=0)


def test_a_failed_first_run_does_not_fix_the_settings(corpus, tmp_path):
    out = tmp_path / "data"
    run("tfambient-prepare", *prepare_args(corpus, out, "--audioset=missing.csv"), check_rc=2)
    assert not (out / "parts" / "settings.json").exists()


def test_a_rerun_with_more_rows_recounts_without_relabelling(prepared, corpus, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(prepared[0], data_dir)
    extra = write_segments_csv(
        tmp_path / "extra.csv", [(clips.corpus_ytid(40), 30.0, 35.0, "/m/x")]
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
    clips.write_kind_clip(media / f"{unreadable}.mp4", "tone", seed=99)  # mended
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
        "--download_mode",
        "--ffmpeg",
        "--kmeans_max_samples",
    ):
        assert flag in out


# Clips that are usable in part: cuts longer than their segments, windows without sound.

PARTIAL_FRAMES = 5  # frames at 1, 3, 5, 7 and 9 s of a 10 s segment


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    root = tmp_path_factory.mktemp("partial")
    corpus = write_partial_corpus(root)
    out = root / "data"
    result = run(
        "tfambient-prepare",
        f"--audioset={corpus.csv}",
        f"--media_dir={corpus.media_dir}",
        f"--output_dir={out}",
        f"--frames_per_clip={PARTIAL_FRAMES}",
        "--short_side=32",
        "--descriptors=mfcc_summary",
        "--num_clusters=2",
        "--num_bits=2",
        "--val_fraction=0",
        "--num_workers=0",
        "--noprogress",
    )
    return corpus, out, result


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cuts_longer_than_their_segments_are_used(partial):
    corpus, data_dir, _ = partial
    assert read_csv(data_dir / "failures.csv") == []
    frames = by_frame(read_dataset(data_dir))
    for clip in corpus.cuts:
        assert {i for c, i in frames if c == clip} == set(range(PARTIAL_FRAMES)), clip
    # A cut is read from its start for the segment's length and the 1 s tolerance: 9 s of
    # the 9.6 s file for the 16-24 s segment, so the last of its 5 frames is at 8.1 s.
    assert frames[corpus.cuts[0], 4]["frame/time_s"][0] == pytest.approx(8.1)


def test_a_frame_without_sound_is_dropped_and_listed_and_the_clip_kept(partial):
    corpus, data_dir, result = partial
    frames = by_frame(read_dataset(data_dir))
    assert {i for c, i in frames if c == corpus.sound_stops} == {0, 1, 2}
    assert {i for c, i in frames if c == corpus.audio_ends} == {0, 1, 2, 3}
    for clip in corpus.plain:
        assert {i for c, i in frames if c == clip} == set(range(PARTIAL_FRAMES))
    rows = read_csv(data_dir / "dropped_frames.csv")
    dropped = {(r["clip_id"], int(r["frame_index"])): r for r in rows}
    assert {key: (r["reason"], float(r["frame_time_s"])) for key, r in dropped.items()} == {
        (corpus.sound_stops, 3): ("silent_audio", 7.0),
        (corpus.sound_stops, 4): ("silent_audio", 9.0),
        (corpus.audio_ends, 4): ("too_short", 9.0),
    }
    assert len(rows) == 3
    assert all(r["detail"] and r["source"].startswith(str(corpus.csv)) for r in rows)
    counts = json.loads((data_dir / "dataset.json").read_text())["counts"]
    assert counts["clips_used"] == 8 and counts["clips_failed"] == {}
    assert counts["frames_dropped"] == {"silent_audio": 2, "too_short": 1}
    assert counts["frames"] == {"train": 8 * PARTIAL_FRAMES - 3}
    assert "frames dropped from used clips: 2 silent_audio, 1 too_short" in result.stdout


# A first try on a dozen clips, with the defaults.


@pytest.fixture(scope="module")
def dozen(tmp_path_factory):
    return write_plain_corpus(tmp_path_factory.mktemp("dozen"), 12)


def dozen_args(corpus, output_dir, *extra, media_dir=None):
    return [
        f"--audioset={corpus.csv}",
        f"--media_dir={media_dir or corpus.media_dir}",
        f"--output_dir={output_dir}",
        "--num_clusters=3",
        "--noprogress",
        *extra,
    ]


def test_defaults_the_sample_cannot_support_are_reduced_and_recorded(dozen, tmp_path):
    data_dir = tmp_path / "data"
    result = run("tfambient-prepare", *dozen_args(dozen, data_dir))
    manifest = json.loads((data_dir / "dataset.json").read_text())
    train = manifest["counts"]["frames"]["train"]
    assert manifest["counts"]["clips_used"] == 12 and 6 <= train <= 12
    reduced = manifest["clusters"]["reduced_defaults"]
    assert [(r["flag"], r["descriptor"], r["default"], r["used"]) for r in reduced] == [
        ("--num_bits", d, 30, train) for d in ("texture", "mfcc", "mfcc_summary")
    ]
    assert set(manifest["clusters"]["fields"]) == {
        f"label/{d}_{suffix}"
        for d in ("texture", "mfcc", "mfcc_summary")
        for suffix in ("k3", f"bits{train}")
    }
    assert manifest["schema"][f"label/texture_bits{train}"]["length"] == train
    assert "--num_bits left at its default 30" in result.stderr
    assert f"--num_bits 30 (the default) reduced to {train} for texture" in result.stdout

    # tfambient-cluster with every default: K too is reduced, to the distinct descriptors.
    run("tfambient-cluster", f"--data_dir={data_dir}", "--descriptors=mfcc_summary", "--noprogress")
    clusters = json.loads((data_dir / "dataset.json").read_text())["clusters"]
    assert [(r["flag"], r["used"]) for r in clusters["reduced_defaults"]] == [
        ("--num_clusters", train),
        ("--num_bits", train),
    ]
    assert set(clusters["fields"]) == {
        f"label/mfcc_summary_k{train}",
        f"label/mfcc_summary_bits{train}",
    }


def test_an_explicit_value_that_cannot_be_fitted_keeps_the_extracted_clips(dozen, tmp_path):
    media, data_dir = tmp_path / "clips", tmp_path / "data"
    shutil.copytree(dozen.media_dir, media)
    quick = ("--descriptors=mfcc_summary", "--short_side=32", "--num_workers=0")
    args = dozen_args(dozen, data_dir, *quick, "--num_bits=30", media_dir=media)
    err = run("tfambient-prepare", *args, check_rc=2).stderr.strip()
    # After the extraction's log lines, one line says what cannot be done and what is kept.
    error = err.splitlines()[-1]
    assert error.startswith("tfambient-prepare: error: --num_bits=30 cannot be fitted")
    assert "not decoded again" in error and err.count("error") == 1 and "Traceback" not in err
    # The clips are gone: the rerun can only succeed with what the first run extracted.
    media.rename(tmp_path / "moved")
    media.mkdir()
    args[-1] = "--num_bits=4"
    result = run("tfambient-prepare", *args)
    assert "resuming: 12 clips already done, 0 found to extract" in result.stderr
    manifest = json.loads((data_dir / "dataset.json").read_text())
    assert manifest["counts"]["clips_used"] == 12
    assert manifest["clusters"]["reduced_defaults"] == []
    assert set(manifest["clusters"]["fields"]) == {
        "label/mfcc_summary_k3",
        "label/mfcc_summary_bits4",
    }


def usable_rows(corpus) -> list[tuple[str, float]]:
    """(ytid, start) of every usable clip of the corpus (each segment lasts 5 s)."""
    return [(clip[:11], float(clip[12:])) for clip in sorted(corpus.kinds)]


def write_damaged_csv(corpus, path: Path) -> list[str]:
    """The corpus's usable rows as re-saving and a cut download leave them; its lines."""
    lines = [
        "# Segments csv, damaged",
        "# num_ytids=12, num_segs=12, num_unique_labels=2",  # 9 rows follow
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    lines += [f'{y}, {start:.3f}, {start + 5:.3f}, "{MUSIC}"' for y, start in usable_rows(corpus)]
    lines[3] = lines[3].replace(f'"{MUSIC}"', f'" ""{MUSIC},{CROWD}"""')  # quoted twice over
    lines[4] += ", i"  # a stray field
    lines[5] = lines[5].removesuffix('"')  # a closing quote lost mid-file
    lines[-1] = lines[-1][:-4]  # the last row cut in its labels, without a newline
    path.write_text("\n".join(lines))
    return lines


def top_tag_names(data_dir: Path) -> set[str]:
    clusters = json.loads((data_dir / "clusters" / "clusters.json").read_text())
    field = clusters["fields"]["label/texture_k3"]
    return {tag["name"] for cluster in field["clusters"] for tag in cluster["top_tags"]}


def test_damaged_csv_rows_are_listed_and_the_rest_used(corpus, tmp_path):
    damaged_csv, data_dir = tmp_path / "damaged.csv", tmp_path / "data"
    lines = write_damaged_csv(corpus, damaged_csv)
    again = f"{tmp_path}/./damaged.csv"
    args = prepare_args(corpus, data_dir, "--num_workers=2", f"--audioset={damaged_csv},{again}")
    args.remove(f"--audioset={corpus.csv}")
    result = run("tfambient-prepare", *args)

    rows = usable_rows(corpus)
    frames = by_frame(read_dataset(data_dir))
    lost = {clip_id(*rows[2]), clip_id(*rows[-1])}  # the two rows whose quote is left open
    assert {clip for clip, _ in frames} == set(corpus.kinds) - lost
    labels = {clip: [t.decode() for t in r["audioset/labels"]] for (clip, _), r in frames.items()}
    assert labels[clip_id(*rows[0])] == [MUSIC, CROWD]  # the doubled quotes stripped
    assert labels[clip_id(*rows[1])] == [MUSIC]  # the stray field dropped, the row used
    counts = json.loads((data_dir / "dataset.json").read_text())["counts"]
    assert counts["segments"] == 7
    assert counts["rejected_rows"] == {"unbalanced_quote": 2}
    assert counts["labels_dropped"] == 1
    listing = data_dir / "rejected_rows.csv"
    with open(listing, newline="") as f:
        listed = [tuple(row.values()) for row in csv.DictReader(f)]
    assert listed == [
        (str(damaged_csv), "5", "bad_label", "i", lines[4]),
        (str(damaged_csv), "6", "unbalanced_quote", "", lines[5]),
        (str(damaged_csv), "12", "unbalanced_quote", "", lines[11]),
    ]
    assert f"{damaged_csv}: its header says num_segs=12 but 9 rows were read" in result.stderr
    assert f"{again} is {damaged_csv} again: read once" in result.stderr
    assert f"every one, and why: {listing}" in result.stderr
    assert f"CSV rows skipped: 2 unbalanced_quote; labels dropped: 1 (see {listing})" in (
        result.stdout
    )
    # AudioSet's class list ships with tfambient: the clusters name classes, not ids.
    assert top_tag_names(data_dir) == {"Music", "Crowd"}
    ontology = tmp_path / "names.csv"
    ontology.write_text(f"index,mid,display_name\n0,{MUSIC},Tunes\n")
    recluster = ["--num_clusters=3", "--descriptors=texture", "--num_bits=0", "--noprogress"]
    run("tfambient-cluster", f"--data_dir={data_dir}", f"--ontology={ontology}", *recluster)
    assert top_tag_names(data_dir) == {"Tunes", CROWD}  # --ontology overrides it
    run("tfambient-cluster", f"--data_dir={data_dir}", *recluster)
    assert top_tag_names(data_dir) == {"Music", "Crowd"}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_utf16_and_utf8_bom_csvs_are_read(corpus, tmp_path, encoding):
    resaved, data_dir = tmp_path / "segments.csv", tmp_path / "data"
    text = corpus.csv.read_text()
    resaved.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    args = prepare_args(corpus, data_dir, "--num_workers=2", f"--audioset={resaved}")
    args.remove(f"--audioset={corpus.csv}")
    run("tfambient-prepare", *args)
    counts = json.loads((data_dir / "dataset.json").read_text())["counts"]
    assert counts["clips_used"] == len(corpus.kinds)
    assert counts["rejected_rows"] == corpus.rejected
    with open(data_dir / "rejected_rows.csv", newline="") as f:
        listed = [(row["line"], row["reason"], row["text"]) for row in csv.DictReader(f)]
    lines = text.splitlines()
    first = len(lines) - 3  # the corpus CSV ends with 4 bad rows
    reasons = ["bad_id", "bad_time", "end_not_after_start", "duplicate"]
    assert listed == [
        (str(first + i), reason, lines[first + i - 1]) for i, reason in enumerate(reasons)
    ]


def test_a_refused_csv_leaves_no_output_dir_behind(tmp_path):
    letter = tmp_path / "letter.csv"
    letter.write_text("Dear reader,\nthis is not a list of clips.\n")
    existing = tmp_path / "existing"
    existing.mkdir()
    for data_dir in (tmp_path / "new" / "data", existing):
        args = [f"--audioset={letter}", f"--media_dir={tmp_path}", f"--output_dir={data_dir}"]
        err = run("tfambient-prepare", *args, check_rc=2).stderr.strip()
        assert f"{letter}:1: not an AudioSet segments CSV" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "new").exists()
    assert existing.is_dir() and not any(existing.iterdir())  # not ours to remove


def test_a_csv_without_usable_rows_is_refused_with_its_rows_listed(tmp_path):
    backwards = tmp_path / "backwards.csv"
    backwards.write_text("--PJHxphWEs, 40.000, 30.000\n--ZhevVpy1s, 60.000, 50.000\n")
    data_dir = tmp_path / "data"
    args = [f"--audioset={backwards}", f"--media_dir={tmp_path}", f"--output_dir={data_dir}"]
    err = run("tfambient-prepare", *args, check_rc=2).stderr.strip().splitlines()[-1]
    listing = data_dir / "rejected_rows.csv"
    assert err.endswith(f"no usable rows in {backwards}; {listing} lists why")
    with open(listing, newline="") as f:
        assert [row["reason"] for row in csv.DictReader(f)] == ["end_not_after_start"] * 2


def test_frames_at_keyframes_are_recorded_at_their_own_times(corpus, tmp_path):
    """The corpus clips have one keyframe, at 0 s. In a cut (the segment starts at the
    file's 0 s) both frames take it and are recorded at 0 s, their windows at the segment's
    start; the whole video's segment starts 2 s in, past its keyframe, so its frames are
    taken exactly, as without the flag."""
    out = tmp_path / "data"
    run("tfambient-prepare", *prepare_args(corpus, out, "--frame_at=keyframe"))
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["extraction"]["frame_at"] == "keyframe"
    frames = by_frame(read_dataset(out))
    assert {clip for clip, _ in frames} == set(corpus.kinds)
    whole = next(clip for clip in corpus.kinds if clip.endswith("_2.000"))
    for (clip, index), r in frames.items():
        expected = [1.25, 3.75][index] if clip == whole else 0.0
        assert r["frame/time_s"][0] == pytest.approx(expected, abs=0.05), clip
        window_start = {0.0: 0.0, 1.25: 0.0, 3.75: 1.25}[expected]  # moved inside the segment
        assert r["audio/start_s"][0] == pytest.approx(window_start, abs=0.05)
