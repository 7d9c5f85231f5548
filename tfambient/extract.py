"""One clip -> training examples: frames, the audio around each, and its sound descriptors.

This is the work a preparation worker process does for each AudioSet segment, so it
imports no TensorFlow: workers stay small and start fast. A clip that cannot be used
returns a :class:`Failure` with a short reason code instead of raising, because one bad
file among millions must never stop the job.

Where the frames are taken: the segment's span inside the file (the whole file when it
holds just the segment, ``[start, end]`` when it holds the whole video) is cut into
``frames_per_clip`` equal windows and a frame is taken at the centre of each. The audio
window is centred on its frame, shifted inward where it would cross the span's ends, so
no descriptor is computed over silence standing in for missing audio. A frame whose
window is digital silence or runs past the audio is dropped (:class:`DroppedFrame`) and
the clip's other frames are kept: the clip fails only when no frame is left.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import av.logging
import numpy as np
import threadpoolctl
from PIL import Image

from tfambient import media, sound
from tfambient.audioset import Segment, names_segment_start, segment_span
from tfambient.configs import option

# Below this RMS (-80 dBFS) a window is digital silence: its descriptor says nothing
# about the scene, and thousands of silent uploads would form a cluster of their own.
SILENCE_RMS = 1e-4

# A window may run this far past the end of the decoded audio (codec priming and edit
# lists trim a few milliseconds) before its frame is dropped as too short.
MAX_PADDING_S = 0.25


def quiet_decoders() -> None:
    """FFmpeg's own error lines ("moov atom not found") would garble the progress bar;
    every failure is reported with its reason anyway."""
    av.logging.set_level(None)


def init_worker() -> None:
    """One BLAS/FFT thread per worker process: the processes already fill the cores."""
    threadpoolctl.threadpool_limits(1)
    quiet_decoders()


@dataclass(frozen=True)
class ExtractSettings:
    """What is taken from each clip; recorded in the dataset so a rerun can check it."""

    frames_per_clip: int = option(
        1, "Frames per clip: 1 takes the centre; n > 1 the centres of n equal windows.", lower=1
    )
    audio_window_s: float = option(
        3.75,
        "Seconds of audio around each frame that its descriptors summarise (Owens et al.: 3.75).",
        lower=sound.audio.MIN_WINDOW_S,
    )
    short_side: int = option(
        256,
        "Frames are stored resized so their short side is this (tfambient-train's and "
        "-voc's --image_size is the side of the crops taken from them).",
        lower=16,
        formerly="image_size",
    )
    jpeg_quality: int = option(90, "JPEG quality of the stored frames.", lower=1, upper=100)
    descriptors: tuple[str, ...] = option(
        ("texture", "mfcc", "mfcc_summary"),
        f"Sound descriptors to compute and store ({', '.join(sound.DESCRIPTORS)}).",
    )
    frame_at: str = option(
        "exact",
        "exact: the frame shown at each frame time; keyframe: the keyframe nearest it (up to "
        "half a GOP away; 3-10x faster to decode), recorded at its own time, its audio window "
        "centred there.",
        choices=media.FRAME_AT,
    )

    def __post_init__(self):
        if self.frames_per_clip < 1:
            raise ValueError(f"frames_per_clip must be >= 1, got {self.frames_per_clip}")
        if self.audio_window_s < sound.audio.MIN_WINDOW_S:
            raise ValueError(
                f"audio_window_s must be >= {sound.audio.MIN_WINDOW_S}, got {self.audio_window_s}"
            )
        if self.short_side < 16:
            raise ValueError(f"short_side must be >= 16, got {self.short_side}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        sound.parse_names(self.descriptors)
        if self.frame_at not in media.FRAME_AT:
            raise ValueError(f"frame_at must be one of {', '.join(media.FRAME_AT)}")


@dataclass(frozen=True)
class Frame:
    """One example: a JPEG frame and the descriptors of the audio around it."""

    index: int
    time_s: float  # seconds from the segment's start
    audio_start_s: float  # start of the audio window, seconds from the segment's start
    jpeg: bytes
    height: int
    width: int
    descriptors: dict[str, np.ndarray]


@dataclass(frozen=True)
class Failure:
    reason: str  # a short code: not_found, no_video_stream, too_short, unreadable, ...
    detail: str


@dataclass(frozen=True)
class DroppedFrame:
    """A frame left out of a clip that is used, because of its audio window."""

    index: int
    time_s: float  # seconds from the segment's start, as Frame.time_s
    failure: Failure


@dataclass
class ClipResult:
    segment: Segment
    frames: list[Frame] = field(default_factory=list)
    failure: Failure | None = None
    dropped: list[DroppedFrame] = field(default_factory=list)  # of a clip that is used
    seconds: dict[str, float] = field(default_factory=dict)  # decode, describe, jpeg


def frame_times(first_s: float, last_s: float, count: int) -> np.ndarray:
    """Centres of ``count`` equal windows of ``[first_s, last_s]``."""
    return first_s + (np.arange(count) + 0.5) * (last_s - first_s) / count


def audio_centres(times: np.ndarray, first_s: float, last_s: float, window_s: float):
    """Window centres on the frames, moved inward so each window lies inside the span."""
    return np.clip(times, first_s + window_s / 2, last_s - window_s / 2)


def encode_jpeg(frame: np.ndarray, short_side: int, quality: int) -> tuple[bytes, int, int]:
    """Resize so the short side is ``short_side`` (keeping the aspect) and JPEG-encode."""
    height, width = frame.shape[:2]
    scale = short_side / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(frame)
    if size != (width, height):
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue(), size[1], size[0]


# Clips a worker extracts per call: their windows are described together, in batches that
# run faster per window than one clip's own (sound.describe_windows).
CLIPS_PER_CALL = 8


@dataclass
class _Decoded:
    """A clip's decoded frames and audio windows, waiting for their descriptors."""

    path: str
    rate: int
    origin: float  # file time of the segment's start, whichever kind of file it is
    times: np.ndarray
    audio: list[media.AudioWindow | Failure]  # per frame
    kept: list[int]  # frames whose window is usable
    encoded: list[tuple[bytes, int, int]]  # JPEG, height, width of the kept frames

    def samples(self) -> list[np.ndarray]:
        return [self.audio[i].samples for i in self.kept]


def extract_clip(segment: Segment, path: str, settings: ExtractSettings) -> ClipResult:
    """Frames and descriptors of one segment, or the reason it cannot be used."""
    return extract_clips([(segment, path)], settings)[0]


def extract_clips(
    jobs: Sequence[tuple[Segment, str]], settings: ExtractSettings
) -> list[ClipResult]:
    """extract_clip of each (segment, path), with the windows of all the clips described
    in one sound.describe_windows call: the same results, in the order given, faster."""
    results = [ClipResult(segment) for segment, _ in jobs]
    waiting: list[tuple[ClipResult, _Decoded]] = []
    for result, (_, path) in zip(results, jobs, strict=True):
        with _clip_failures(result, path):
            decoded = _decode(result, path, settings)
            if decoded is not None:
                waiting.append((result, decoded))
    described, share = _describe_together([d for _, d in waiting], settings)
    row = 0
    for result, decoded in waiting:
        rows = range(row, row + len(decoded.kept))
        row = rows.stop
        result.seconds["describe"] = share * len(rows)
        with _clip_failures(result, decoded.path):
            _finish(result, decoded, described, rows, settings)
    for result in results:
        if result.failure is not None:
            result.frames, result.dropped = [], []
    return results


def _describe_together(
    clips: list[_Decoded], settings: ExtractSettings
) -> tuple[sound.Described | None, float]:
    """(the kept windows of all ``clips`` described, seconds per window); None where that
    fails as a whole, so each clip is described alone and fails, if it does, on its own."""
    windows = [window for clip in clips for window in clip.samples()]
    rates = [clip.rate for clip in clips for _ in clip.kept]
    start = time.perf_counter()
    try:
        described = sound.describe_windows(windows, rates, settings.descriptors)
    except Exception:  # each clip, described alone, then says what went wrong
        described = None
    return described, (time.perf_counter() - start) / max(len(windows), 1)


@contextlib.contextmanager
def _clip_failures(result: ClipResult, path: str) -> Iterator[None]:
    """An error in the block becomes the clip's failure, with its reason code."""
    try:
        yield
    except media.MediaError as error:
        result.failure = Failure(error.reason, str(error))
    except sound.InvalidAudio as error:
        result.failure = Failure("bad_audio", f"{path}: {error}")
    except Exception as error:  # a decoder bug must cost one clip, not the whole job
        result.failure = Failure("error", f"{path}: {type(error).__name__}: {error}")


def _decode(result: ClipResult, path: str, settings: ExtractSettings) -> _Decoded | None:
    """The clip's kept frames and their windows; None with the reason when none is left."""
    seconds, segment = result.seconds, result.segment
    with _timed(seconds, "decode"), media.MediaFile(path) as clip:
        info = clip.info
        if not info.has_video:
            raise media.NoVideoStream(f"{path}: no video stream")
        if not info.has_audio:
            raise media.NoAudioStream(f"{path}: no audio stream")
        named_cut = names_segment_start(path, segment)
        first_s, last_s = segment_span(info.duration_s, segment, named_cut=named_cut)
        window_s = settings.audio_window_s
        if last_s - first_s < window_s:
            result.failure = Failure(
                "too_short",
                f"{path}: the segment spans {max(last_s - first_s, 0):.2f}s of the file "
                f"({info.duration_s:.2f}s long), less than the {window_s}s audio window",
            )
            return None
        times = frame_times(first_s, last_s, settings.frames_per_clip)
        decoded = (
            _keyframes_in(clip, times, first_s, last_s) if settings.frame_at == "keyframe" else {}
        )
        times = np.array([decoded[i].time_s if i in decoded else t for i, t in enumerate(times)])
        centres = audio_centres(times, first_s, last_s, window_s)
        # Only the windows' span: a whole video's audio would cost 10-100x.
        clip.restrict_audio(centres.min() - window_s / 2, centres.max() + window_s / 2)
        audio = [_frame_audio(clip, path, c, window_s, info.audio_rate) for c in centres]
        kept = [i for i, window in enumerate(audio) if isinstance(window, media.AudioWindow)]
        exact = [i for i in kept if i not in decoded]
        if exact:  # one decoder pass for every other frame that is kept
            decoded |= dict(zip(exact, clip.frames_at(times[exact]), strict=True))
        pictures = [decoded[i].image for i in kept]
    origin = first_s
    result.dropped = [
        DroppedFrame(i, float(times[i] - origin), window)
        for i, window in enumerate(audio)
        if isinstance(window, Failure)
    ]
    if not kept:
        result.failure = _no_frame_left(result.dropped)
        return None
    with _timed(seconds, "jpeg"):  # here, so that JPEGs, not pictures, wait for descriptors
        encoded = [encode_jpeg(p, settings.short_side, settings.jpeg_quality) for p in pictures]
    return _Decoded(path, info.audio_rate, origin, times, audio, kept, encoded)


def _finish(
    result: ClipResult,
    clip: _Decoded,
    described: sound.Described | None,
    rows: range,
    settings: ExtractSettings,
) -> None:
    """The clip's frames, with the descriptors of their windows (rows of ``described``)."""
    if described is None or any(row in described.failures for row in rows):
        # Described alone, the clip fails with the reason it always had (InvalidAudio).
        values = sound.describe(np.stack(clip.samples()), clip.rate, settings.descriptors)
    else:
        values = {
            name: rows_of[rows.start : rows.stop] for name, rows_of in described.values.items()
        }
    result.frames = [
        Frame(
            index=i,
            time_s=float(clip.times[i] - clip.origin),
            audio_start_s=float(clip.audio[i].start_s - clip.origin),
            jpeg=jpeg,
            height=height,
            width=width,
            descriptors={name: vectors[row] for name, vectors in values.items()},
        )
        for row, (i, (jpeg, height, width)) in enumerate(zip(clip.kept, clip.encoded, strict=True))
    ]


def _keyframes_in(
    clip: media.MediaFile, times: np.ndarray, first_s: float, last_s: float
) -> dict[int, media.DecodedFrame]:
    """By frame index, the keyframe nearest each time, where it lies inside the segment
    (the frame and its window are then placed at the keyframe's own time); a frame whose
    nearest keyframe lies outside is taken exactly instead."""
    nearest = clip.frames_at(times, at="keyframe")
    return {i: frame for i, frame in enumerate(nearest) if first_s <= frame.time_s <= last_s}


def _frame_audio(
    clip: media.MediaFile, path: str, centre_s: float, window_s: float, rate: int
) -> media.AudioWindow | Failure:
    """The audio window of one frame, or why the frame cannot be used: a window of
    silence says nothing about the scene, and zeros standing in for audio the file
    lacks would describe nothing."""
    try:
        window = clip.audio_window(centre_s, window_s, rate)
    except media.WindowOutsideClip as error:
        return Failure(error.reason, str(error))
    if window.padded_s > MAX_PADDING_S:
        return Failure(
            "too_short", f"{path}: {window.padded_s:.2f}s of the window lie outside the audio"
        )
    rms = float(np.sqrt(np.mean(np.square(window.samples, dtype=np.float64))))
    if rms < SILENCE_RMS:
        return Failure("silent_audio", f"{path}: audio window RMS {rms:.1e}")
    return window


def _no_frame_left(dropped: list[DroppedFrame]) -> Failure:
    """The clip's failure when every frame was dropped: the commonest reason, the first
    such frame's detail, and how many frames went for which reason."""
    reasons = Counter(frame.failure.reason for frame in dropped)
    reason = reasons.most_common(1)[0][0]
    first = next(frame.failure for frame in dropped if frame.failure.reason == reason)
    if len(dropped) == 1:
        return first
    counts = ", ".join(f"{n} {why}" for why, n in reasons.most_common())
    return Failure(reason, f"{first.detail} (every frame dropped: {counts})")


@contextlib.contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[name]`` (the benchmark's breakdown)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
