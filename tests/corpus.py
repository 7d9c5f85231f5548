"""Small AudioSet-shaped corpora as people's downloads look: every naming scheme, a VP9
webm, a whole video, and each kind of broken input, with a CSV that has bad rows too; cuts
longer than their segments and clips whose sound stops early; a dozen plain clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import clips
import numpy as np
import soundfile

from tfambient import media
from tfambient.audioset import write_segments_csv

KIND_LABELS = {kind: f"/m/{kind}" for kind in clips.KINDS}


@dataclass(frozen=True)
class Corpus:
    csv: Path
    media_dir: Path
    kinds: dict[str, str]  # clip id -> sound kind, for every usable clip
    failures: dict[str, str]  # clip id -> the reason it cannot be used
    rejected: dict[str, int]  # CSV rows skipped, by reason


def clip_id(ytid: str, start: float) -> str:
    return f"{ytid}_{start:.3f}"


def write_corpus(root: Path) -> Corpus:
    media = root / "clips"
    rows, kinds, failures = [], {}, {}

    def usable(i: int, name: str, kind: str, start=30.0, end=35.0, **kw) -> None:
        y = clips.corpus_ytid(i)
        clips.write_kind_clip(media / name.format(y=y), kind, seed=i, **kw)
        rows.append((y, start, end, KIND_LABELS[kind]))
        kinds[clip_id(y, start)] = kind

    usable(0, "a/{y}_30.000.mp4", "tone")  # start as written in the CSV
    usable(1, "a/{y}_30.mp4", "noise")  # start as an integer
    usable(2, "b/Y{y}_30_35.mp4", "chirp")  # leading Y, start_end
    usable(3, "b/{y}_30000_35000.mkv", "tone")  # milliseconds
    # yt-dlp's "title [id]" name, holding the whole 10 s video; the segment is 2 s to 7 s.
    usable(4, "c/Rain at night [{y}].mp4", "noise", start=2.0, end=7.0, duration_s=10.0)
    usable(5, "{y}_30.000.webm", "chirp")  # VP9 + Opus
    usable(6, "d/e/{y}_30.000.mp4", "tone")
    usable(7, "{y}_30.000.mp4", "noise")
    usable(8, "{y}_30.000.mp4", "chirp")

    def broken(i: int, reason: str) -> str:
        y = clips.corpus_ytid(i)
        rows.append((y, 30.0, 35.0, "/m/tone"))
        failures[clip_id(y, 30.0)] = reason
        return y

    broken(9, "not_found")
    y = broken(10, "unreadable")
    (media / f"{y}_30.000.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    y = broken(11, "no_audio_stream")
    clips.write_kind_clip(media / f"{y}_30.000.mp4", "tone", seed=11, audio=False)
    y = broken(12, "no_video_stream")
    soundfile.write(
        media / f"{y}_30.000.wav",
        clips.kind_audio("tone", 5.0, np.random.default_rng(12)),
        clips.KIND_RATE,
    )
    y = broken(13, "too_short")
    clips.write_kind_clip(media / f"{y}_30.000.mp4", "tone", seed=13, duration_s=2.0)

    csv = write_segments_csv(root / "segments.csv", rows)
    with open(csv, "a") as f:
        f.write('#NAME?, 30.000, 35.000, "/m/tone"\n')
        f.write(f'{clips.corpus_ytid(20)}, abc, 35.000, "/m/tone"\n')
        f.write(f'{clips.corpus_ytid(21)}, 40.000, 35.000, "/m/tone"\n')
        f.write(f'{clips.corpus_ytid(0)}, 30.000, 35.000, "/m/tone"\n')  # duplicate
    rejected = {"bad_id": 1, "bad_time": 1, "end_not_after_start": 1, "duplicate": 1}
    return Corpus(csv, media, kinds, failures, rejected)


def write_plain_corpus(root: Path, count: int) -> Corpus:
    """``count`` usable 5 s clips of the three kinds in turn: a first try on a dozen clips."""
    rows, kinds = [], {}
    for i in range(count):
        y, kind = clips.corpus_ytid(i), clips.KINDS[i % len(clips.KINDS)]
        clips.write_kind_clip(root / "clips" / f"{y}_30.000.mp4", kind, seed=i)
        rows.append((y, 30.0, 35.0, KIND_LABELS[kind]))
        kinds[clip_id(y, 30.0)] = kind
    csv = write_segments_csv(root / "segments.csv", rows)
    return Corpus(csv, root / "clips", kinds, {}, {})


@dataclass(frozen=True)
class PartialCorpus:
    """Clips that hold the segment other than the plain way; every one is usable."""

    csv: Path
    media_dir: Path
    cuts: list[str]  # clip ids of cuts longer than their segments
    sound_stops: str  # clip id of a 10 s clip whose sound stops at 5 s (silence after)
    audio_ends: str  # clip id of a 10 s clip whose audio track ends at 9.5 s
    plain: list[str]  # clip ids of ordinary 10 s clips


def write_clip(path: Path, kind: str, video_s: float, audio_s: float, sound_s: float, seed: int):
    """A clip of one kind: ``video_s`` of pictures, an audio track of ``audio_s`` whose
    sound stops (digital silence) after ``sound_s``."""
    rng = np.random.default_rng(seed)
    frames = clips.kind_frames(kind, video_s, rng)
    audio = clips.kind_audio(kind, audio_s, rng)
    audio[round(sound_s * clips.KIND_RATE) :] = 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    media.write_video(path, frames, clips.KIND_FPS, audio, clips.KIND_RATE)


def write_partial_corpus(root: Path) -> PartialCorpus:
    media_dir, rows = root / "clips", []

    def clip(i, name, start, end, video_s, audio_s=None, sound_s=None) -> str:
        y, kind = clips.corpus_ytid(i), clips.KINDS[i % len(clips.KINDS)]
        audio_s = audio_s or video_s
        write_clip(media_dir / name.format(y=y), kind, video_s, audio_s, sound_s or audio_s, i)
        rows.append((y, start, end, KIND_LABELS[kind]))
        return clip_id(y, start)

    cuts = [
        # The case: named for the segment 16-24 s, cut 1.6 s longer than it.
        clip(0, "{y}_16.000.mp4", 16.0, 24.0, video_s=9.6),
        # Longer than the segment plus 1 s and than its start: only the name says "cut".
        clip(1, "{y}_4.000.mp4", 4.0, 9.0, video_s=7.0),
        # The whole video's name, but shorter than the segment's start: it is the cut.
        clip(2, "{y}.mp4", 16.0, 24.0, video_s=9.6),
    ]
    sound_stops = clip(3, "{y}_30.000.mp4", 30.0, 40.0, video_s=10.0, sound_s=5.0)
    audio_ends = clip(4, "{y}_30.000.mp4", 30.0, 40.0, video_s=10.0, audio_s=9.5)
    plain = [clip(i, "{y}_30.000.mp4", 30.0, 40.0, video_s=10.0) for i in (5, 6, 7)]
    csv = write_segments_csv(root / "segments.csv", rows)
    return PartialCorpus(csv, media_dir, cuts, sound_stops, audio_ends, plain)
