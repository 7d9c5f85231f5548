"""One clip -> examples (extract.py) and the resumable parts around it (prepare.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil

import clips
import numpy as np
import pytest
from corpus import write_clip
from crashing_work import extract_or_die
from PIL import Image

from tfambient import extract, media, prepare
from tfambient.audioset import ClipFile, Segment
from tfambient.extract import ExtractSettings
from tfrecords_tools import example, reader

SETTINGS = ExtractSettings(frames_per_clip=2, short_side=32, descriptors=("mfcc_summary",))


def segment(i: int, start: float = 30.0, end: float = 35.0) -> Segment:
    return Segment(
        clips.corpus_ytid(i), start, end, ("/m/x",), "test.csv", 4 + i, f"{start}", f"{end}"
    )


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    clips.write_kind_clip(root / "tone.mp4", "tone", seed=1)
    clips.write_kind_clip(root / "whole.mp4", "noise", seed=2, duration_s=10.0)
    clips.write_kind_clip(root / "short.mp4", "tone", seed=3, duration_s=2.0)
    clips.write_kind_clip(root / "mute.mp4", "tone", seed=4, audio=False)
    silent = np.zeros((40, *clips.KIND_SIZE, 3), np.uint8)
    media.write_video(
        root / "silent.mp4",
        silent,
        clips.KIND_FPS,
        np.zeros(5 * clips.KIND_RATE),
        clips.KIND_RATE,
    )
    return root


def test_frames_sit_at_the_centres_of_equal_windows():
    np.testing.assert_allclose(extract.frame_times(0.0, 10.0, 1), [5.0])
    np.testing.assert_allclose(extract.frame_times(2.0, 7.0, 2), [3.25, 5.75])
    np.testing.assert_allclose(extract.frame_times(0.0, 10.0, 5), [1, 3, 5, 7, 9])


def test_audio_windows_move_inward_to_stay_inside_the_span():
    centres = extract.audio_centres(np.array([1.0, 5.0, 9.5]), 0.0, 10.0, 3.75)
    np.testing.assert_allclose(centres, [1.875, 5.0, 10.0 - 1.875])


@pytest.mark.parametrize(
    ("height", "width", "size"), [(48, 64, (32, 43)), (360, 640, (32, 57)), (100, 50, (64, 32))]
)
def test_jpeg_short_side_is_the_short_side_asked_for(height, width, size):
    frame = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    jpeg, h, w = extract.encode_jpeg(frame, 32, 90)
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and (h, w) == size and image.size == (w, h)


def test_a_segment_file_gives_its_frames_and_descriptors(clip_dir):
    result = extract.extract_clip(segment(0), str(clip_dir / "tone.mp4"), SETTINGS)
    assert result.failure is None and [f.index for f in result.frames] == [0, 1]
    assert [f.time_s for f in result.frames] == pytest.approx([1.25, 3.75], abs=0.05)
    assert result.frames[0].descriptors["mfcc_summary"].shape == (40,)
    assert {"decode", "describe", "jpeg"} <= set(result.seconds)
    # The frames are the clip's colour (the tone kind is red).
    image = np.asarray(Image.open(io.BytesIO(result.frames[0].jpeg)))
    assert image[..., 0].mean() > 150 > image[..., 1].mean()


def test_a_whole_video_is_read_at_the_segment_and_timed_from_its_start(clip_dir):
    whole = extract.extract_clip(segment(1, 2.0, 7.0), str(clip_dir / "whole.mp4"), SETTINGS)
    assert [f.time_s for f in whole.frames] == pytest.approx([1.25, 3.75])
    assert [f.audio_start_s for f in whole.frames] == pytest.approx([0.0, 1.25])


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("short.mp4", "too_short"),
        ("mute.mp4", "no_audio_stream"),
        ("silent.mp4", "silent_audio"),
        ("missing.mp4", "unreadable"),
    ],
)
def test_unusable_clips_say_why_instead_of_raising(clip_dir, name, reason):
    result = extract.extract_clip(segment(2), str(clip_dir / name), SETTINGS)
    assert result.failure is not None and result.failure.reason == reason
    assert result.frames == [] and name in result.failure.detail


@pytest.mark.parametrize(
    ("audio_s", "kept", "dropped"),
    [
        # Sound for 5 s, then digital silence; the audio track ends 0.5 s before the video.
        (9.5, [0, 1, 2], [(3, "silent_audio"), (4, "too_short")]),
        # The audio track ends at 5 s: the last two windows lie wholly after it.
        (5.0, [0, 1], [(2, "too_short"), (3, "window_outside_clip"), (4, "window_outside_clip")]),
    ],
)
def test_frames_without_sound_are_dropped_and_listed_and_the_others_kept(
    tmp_path, audio_s, kept, dropped
):
    write_clip(tmp_path / "clip.mp4", "tone", video_s=10.0, audio_s=audio_s, sound_s=5.0, seed=1)
    settings = ExtractSettings(frames_per_clip=5, short_side=32, descriptors=("mfcc_summary",))
    result = extract.extract_clip(segment(0, 30.0, 40.0), str(tmp_path / "clip.mp4"), settings)
    assert result.failure is None
    assert [f.index for f in result.frames] == kept
    assert [f.time_s for f in result.frames] == pytest.approx([1.0 + 2 * i for i in kept])
    assert [(d.index, d.failure.reason) for d in result.dropped] == dropped
    assert [d.time_s for d in result.dropped] == pytest.approx([1.0 + 2 * i for i, _ in dropped])
    assert all("clip.mp4" in d.failure.detail for d in result.dropped)


def test_a_clip_fails_when_no_frame_is_left(clip_dir):
    result = extract.extract_clip(segment(3), str(clip_dir / "silent.mp4"), SETTINGS)
    assert result.failure.reason == "silent_audio" and result.frames == result.dropped == []
    assert result.failure.detail.endswith("(every frame dropped: 2 silent_audio)")


def test_clips_described_together_give_what_each_gives_alone(clip_dir, tmp_path, monkeypatch):
    """A worker describes the windows of several clips in one call (extract_clips): each
    clip's records and failure are those it gets alone, rates and failures mixed in."""
    clips.write_kind_clip(tmp_path / "tone.webm", "tone", seed=5)  # 48 kHz among 44.1 kHz
    shutil.copy(clip_dir / "whole.mp4", tmp_path / "broken.mp4")
    frame_audio = extract._frame_audio

    def nan_for_broken(clip, path, *args):  # windows no descriptor can be computed from
        window = frame_audio(clip, path, *args)
        if "broken" in path and isinstance(window, media.AudioWindow):
            window = dataclasses.replace(window, samples=np.full_like(window.samples, np.nan))
        return window

    monkeypatch.setattr(extract, "_frame_audio", nan_for_broken)
    settings = ExtractSettings(frames_per_clip=2, short_side=32)
    paths = [clip_dir / "tone.mp4", tmp_path / "broken.mp4", clip_dir / "short.mp4",
             tmp_path / "tone.webm", clip_dir / "silent.mp4", clip_dir / "whole.mp4"]  # fmt: skip
    jobs = [(segment(i, 2.0, 7.0), str(path)) for i, path in enumerate(paths)]
    together = extract.extract_clips(jobs, settings)
    alone = [extract.extract_clip(s, path, settings) for s, path in jobs]
    assert [r.segment for r in together] == [s for s, _ in jobs]
    failures = [r.failure and r.failure.reason for r in together]
    assert failures == [None, "bad_audio", "too_short", None, "silent_audio", None]
    broken = together[1].failure.detail
    assert broken == f"{paths[1]}: window(s) [0, 1] contain NaN or Inf samples"
    for batched, single in zip(together, alone, strict=True):
        assert batched.failure == single.failure and batched.dropped == single.dropped
        assert len(batched.frames) == len(single.frames)
        for got, want in zip(batched.frames, single.frames, strict=True):
            assert (got.index, got.time_s, got.audio_start_s) == (
                want.index,
                want.time_s,
                want.audio_start_s,
            )
            assert got.jpeg == want.jpeg and got.descriptors.keys() == want.descriptors.keys()
            for name, values in got.descriptors.items():
                np.testing.assert_allclose(values, want.descriptors[name], rtol=1e-5, atol=1e-6)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="frames_per_clip"):
        ExtractSettings(frames_per_clip=0)
    with pytest.raises(ValueError, match="unknown descriptor"):
        ExtractSettings(descriptors=("texture", "nope"))


def results_for(clip_dir, count):
    return [
        extract.extract_clip(segment(i), str(clip_dir / "tone.mp4"), SETTINGS) for i in range(count)
    ]


def test_parts_commit_records_and_the_clips_they_finished(clip_dir, tmp_path):
    store = prepare.PartStore(tmp_path)
    results = results_for(clip_dir, 2)
    results.append(extract.extract_clip(segment(5), str(clip_dir / "mute.mp4"), SETTINGS))
    store.commit(results)
    assert store.done() == {segment(i).clip_id for i in (0, 1, 5)}
    records = list(reader.read_records([tmp_path / "part-000000.tfrecord"]))
    assert len(records) == 4
    first = example.to_dict(records[0])
    assert first["clip/id"] == [segment(0).clip_id.encode()]
    assert first["sound/mfcc_summary"].shape == (40,)
    sidecar = json.loads((tmp_path / "part-000000.json").read_text())
    assert sidecar["failures"][0]["reason"] == "no_audio_stream"
    assert sidecar["clips"][segment(5).clip_id] == 0


def test_an_uncommitted_part_is_dropped_and_numbering_continues(clip_dir, tmp_path):
    store = prepare.PartStore(tmp_path)
    store.commit(results_for(clip_dir, 1))
    store.close()
    # A run killed between writing part 1's records and its sidecar, and one killed mid-write.
    shutil.copy(tmp_path / "part-000000.tfrecord", tmp_path / "part-000001.tfrecord")
    (tmp_path / "part-000002.tfrecord.tmp-1-0123abcd").write_bytes(b"half")
    store = prepare.PartStore(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == [
        "part-000000.json",
        "part-000000.tfrecord",
    ]
    store.commit(results_for(clip_dir, 1))
    assert (tmp_path / "part-000001.json").exists()


def test_a_task_runs_in_one_process_at_a_time(tmp_path):
    store = prepare.PartStore(tmp_path)
    with pytest.raises(prepare.PrepareError, match="another process"):
        prepare.PartStore(tmp_path)
    store.close()
    prepare.PartStore(tmp_path).close()


def test_a_damaged_sidecar_makes_its_part_work_to_redo(clip_dir, tmp_path):
    store = prepare.PartStore(tmp_path)
    store.commit(results_for(clip_dir, 2))
    store.close()
    (tmp_path / "part-000000.json").write_text('{"records": 2, "cl')  # cut by a power loss
    store = prepare.PartStore(tmp_path)
    assert store.done() == set() and not list(tmp_path.glob("part-*"))


def test_tasks_split_the_clips_disjointly_and_completely():
    ids = [segment(i).clip_id for i in range(300)]
    owners = [[t for t in range(3) if prepare.Task(t, 3).owns(c)] for c in ids]
    assert all(len(o) == 1 for o in owners)
    assert min(sum(o == [t] for o in owners) for t in range(3)) > 70
    with pytest.raises(prepare.PrepareError, match="task_index"):
        prepare.Task(3, 3)


def test_a_worker_that_dies_costs_only_the_clip_that_killed_it(clip_dir, tmp_path):
    shutil.copy(clip_dir / "tone.mp4", tmp_path / "crash.mp4")
    jobs = [(segment(i), ClipFile(clip_dir / "tone.mp4", True, "ytid")) for i in range(5)]
    jobs.insert(2, (segment(9), ClipFile(tmp_path / "crash.mp4", True, "ytid")))
    results = list(prepare.run_extraction(jobs, SETTINGS, num_workers=2, work=extract_or_die))
    by_clip = {r.segment.clip_id: r for r in results}
    assert len(results) == len(by_clip) == 6
    assert by_clip[segment(9).clip_id].failure.reason == "crashed"
    failed = {i: by_clip[segment(i).clip_id].failure for i in range(5)}
    assert failed == dict.fromkeys(range(5))  # (the failures, if any, name their reason)
