"""Decoded frames and audio windows from video and audio files, via PyAV.

Dataset preparation reads a frame at time t and the audio around t from millions of
clips, some of them broken. Every failure is raised as a :class:`MediaError` subclass
whose ``reason`` is a short code that the pipeline can write to its failures list.

Times are seconds from the start of the clip, the earliest start of its audio and video
streams, so that a picture and a sound recorded together get the same time even when a
stream does not start at timestamp 0.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np
import soxr

from tfambient.contracts.files import atomic_path

logger = logging.getLogger(__name__)

# FFmpeg warns about every oddity in real-world files; at millions of clips that is noise.
av.logging.set_level(av.logging.ERROR)

# av.open and demuxing raise FFmpegError subclasses, OSError for I/O, and (for a few
# malformed headers) plain ValueError; all of them mean "this file cannot be read".
_AV_ERRORS = (av.error.FFmpegError, OSError, ValueError)

# A file whose packets end this much before its stated duration was cut short (a partial
# download). The margin covers containers rounding durations and streams ending a frame
# apart.
_TRUNCATION_SLACK_S = 0.1

# A restricted decode (MediaFile.restrict_audio) keeps this much audio on each side of its
# span, room for soxr's filter, and starts decoding _PREROLL_S before that: a decoder
# resumed after a seek lacks the state of the packets before it (Opus takes ~0.3 s to
# converge, AAC one frame), so what it outputs first is garbage.
_SPAN_MARGIN_S = 1.0
_PREROLL_S = 0.5

# Slack for window bounds computed in floating point (extract.audio_centres) to fall
# inside a span they were computed from.
_SPAN_SLACK_S = 1e-6

_SAMPLE_DTYPES = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}


class MediaError(Exception):
    """Base class of media failures; ``reason`` is the code written to failures.csv."""

    reason = "media_error"


class UnreadableMedia(MediaError):
    """Missing, not media, or too damaged for anything to decode."""

    reason = "unreadable"


class NoVideoStream(MediaError):
    reason = "no_video_stream"


class NoAudioStream(MediaError):
    reason = "no_audio_stream"


class WindowOutsideClip(MediaError):
    """The requested time or window lies entirely outside the clip."""

    reason = "window_outside_clip"


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration_s: float
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    fps: float | None
    audio_rate: int | None
    audio_channels: int | None


@dataclass(frozen=True)
class AudioWindow:
    samples: np.ndarray  # float32, mono, exactly round(window_s * rate) samples
    rate: int
    start_s: float  # requested start, may be negative
    padded_s: float  # seconds of zeros standing in for audio the file does not have

    @property
    def padded(self) -> bool:
        return self.padded_s > 0.0


# How MediaFile.frames_at chooses the frame for a time: the frame shown nearest it, or the
# keyframe nearest it (one intra-coded frame decoded, at a time up to half a GOP away).
FRAME_AT = ("exact", "keyframe")


@dataclass(frozen=True)
class DecodedFrame:
    """A decoded picture and the clip time at which it is shown."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    time_s: float


@dataclass(frozen=True)
class _Decoded:
    """Mono float32 audio at the stream's own rate, decoded once per file (or span).

    ``samples[0]`` lies ``skipped_s`` whole seconds after ``grid_s``, the clip time of the
    stream's first sample. Whole seconds are whole samples at every rate, so a span that
    skips them resamples onto the same sample times as the whole track does.
    """

    samples: np.ndarray
    rate: int
    grid_s: float
    skipped_s: int
    span: tuple[float, float] | None  # what it was decoded for; None: the whole track

    @property
    def start_s(self) -> float:
        return self.grid_s + self.skipped_s

    def covers(self, span: tuple[float, float] | None) -> bool:
        if self.span is None:
            return True
        return span is not None and self.span[0] <= span[0] and span[1] <= self.span[1]


class MediaFile:
    """An open media file; reuse it to read several frames and windows from one clip."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        try:
            # metadata_errors="replace": odd bytes in a title tag must not lose the clip.
            self._container = av.open(self.path, metadata_errors="replace")
        except _AV_ERRORS as e:
            raise UnreadableMedia(f"{self.path}: cannot open: {e}") from e
        streams = self._container.streams
        # Cover art in audio files is a one-picture "video" stream, not video.
        self._video = next(
            (s for s in streams.video if not s.disposition & av.stream.Disposition.attached_pic),
            None,
        )
        self._audio = streams.audio[0] if streams.audio else None
        if self._video is None and self._audio is None:
            self.close()
            raise UnreadableMedia(f"{self.path}: no audio or video stream")
        starts = [
            float(st.start_time * st.time_base)
            for st in (self._video, self._audio)
            if st is not None and st.start_time is not None
        ]
        self._origin = min(starts, default=0.0)  # stream timestamp of clip time 0
        self._consumed = False  # whether demuxing moved the read position from the start
        self._data_end_s = -math.inf  # end of the last audio/video packet demuxed so far
        self._span: tuple[float, float] | None = None  # see restrict_audio
        self._native: _Decoded | None = None
        self._by_rate: dict[int, np.ndarray] = {}  # resamplings of self._native
        try:
            self.info = self._make_info()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> MediaFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frame_at(self, time_s: float) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame whose presentation time is nearest ``time_s``."""
        return self.frames_at([time_s])[0].image

    def frames_at(self, times_s: Sequence[float], at: str = "exact") -> list[DecodedFrame]:
        """The frames for ``times_s`` (any order), each with the clip time it is shown at.

        ``at="exact"``: the frame shown nearest each time (the earlier of two as near), as
        frame_at. All times are served by one forward pass of the decoder, which seeks
        ahead only where a keyframe lies before the next time; frames that no other frame
        refers to are not decoded unless they lie near a time.
        ``at="keyframe"``: the keyframe nearest each time (the earlier of two as near):
        one intra-coded frame decoded per time, at the cost of up to half a GOP of error.
        """
        if at not in FRAME_AT:
            raise ValueError(f"at must be one of {', '.join(FRAME_AT)}, got {at!r}")
        stream = self._video
        if stream is None:
            raise NoVideoStream(f"{self.path}: no video stream")
        for time_s in times_s:
            self._check_frame_time(stream, time_s)
        if not len(times_s):
            return []
        order = sorted(range(len(times_s)), key=lambda i: times_s[i])
        targets = [float(times_s[i]) for i in order]
        if at == "keyframe":
            chosen = self._nearest_keyframes(stream, targets)
        else:
            chosen = self._nearest_frames(stream, targets)
        images: dict[int, np.ndarray] = {}  # one conversion per distinct frame
        out: list[DecodedFrame | None] = [None] * len(times_s)
        for i, (frame, frame_s) in zip(order, chosen, strict=True):
            if id(frame) in images:
                out[i] = DecodedFrame(images[id(frame)].copy(), frame_s)
            else:
                images[id(frame)] = self._to_rgb(frame)
                out[i] = DecodedFrame(images[id(frame)], frame_s)
        return out

    def _check_frame_time(self, stream: av.stream.Stream, time_s: float) -> None:
        tolerance = self._frame_tolerance()
        end = self._stream_end(stream)
        if not -tolerance <= time_s <= end + tolerance:
            raise WindowOutsideClip(f"{self.path}: t={time_s:.3f}s is outside [0, {end:.3f}]s")

    def _frame_tolerance(self) -> float:
        """A frame's duration: how far from a time its nearest frame may lie."""
        return 1.0 / self.info.fps if self.info.fps else 0.1

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        try:
            return frame.to_ndarray(format="rgb24")
        except _AV_ERRORS as e:
            raise UnreadableMedia(f"{self.path}: cannot convert frame: {e}") from e

    def _nearest_frames(
        self, stream: av.stream.Stream, times: list[float]
    ) -> list[tuple[av.VideoFrame, float]]:
        """For sorted ``times``: the frame shown nearest each, and its clip time."""
        tolerance = self._frame_tolerance()
        found = self._forward_pass(stream, times, tolerance)
        out = []
        for time_s, (frame, frame_s, reached) in zip(times, found, strict=True):
            if frame is None or abs(frame_s - time_s) > tolerance:
                # Nothing decoded near the time: the seek landed late, frames were skipped
                # that may lie nearer, or the video ends or pauses there. Decide as one
                # seek and a plain decode per time would.
                frame, frame_s, reached = self._nearest_frame(stream, time_s, seek_s=time_s)
                if frame is not None and frame_s > time_s + tolerance:
                    frame, frame_s, reached = self._nearest_frame(stream, time_s, seek_s=None)
            if frame is None:
                raise UnreadableMedia(f"{self.path}: no video frame decodes up to t={time_s:.3f}s")
            # The last frame lasts one frame, and time_s may exceed the end by one more.
            if not reached and time_s - frame_s > 2 * tolerance:
                raise self._ended_early(
                    f"{self.path}: the video decodes only up to {frame_s:.3f}s, "
                    f"before t={time_s:.3f}s"
                )
            out.append((frame, frame_s))
        return out

    def _forward_pass(
        self, stream: av.stream.Stream, times: list[float], tolerance: float
    ) -> list[tuple[av.VideoFrame | None, float, bool]]:
        """For sorted ``times``: (nearest frame, its clip time, whether decoding got as far as
        the time), decoding forward from a seek to the first time.

        Frames that no other frame refers to are skipped unless their packet lies within
        ``tolerance`` of a time still ahead, so a frame chosen within ``tolerance`` of its
        time is the one a full decode would choose.
        """
        best: list[tuple[av.VideoFrame | None, float, bool]]
        best = [(None, math.inf, False) for _ in times]
        # Where seeking ahead saves decoding: only worth reading for several times.
        keyframes = self._keyframe_times(stream, times[0], times[-1]) if len(times) > 1 else []
        pending = 0  # times before this one have been passed
        self._seek(stream, times[0])
        sought = 0  # the last time sought

        def needed(packet_s: float | None) -> bool:
            return packet_s is None or any(abs(packet_s - t) <= tolerance for t in times[pending:])

        while pending < len(times):
            restart = False
            for frame in self._decode(stream, needed):
                if frame.time is None:
                    continue
                frame_s = frame.time - self._origin
                for j in range(pending, len(times)):
                    if abs(frame_s - times[j]) < abs(best[j][1] - times[j]):
                        best[j] = (frame, frame_s, False)
                while pending < len(times) and frame_s >= times[pending]:
                    best[pending] = (best[pending][0], best[pending][1], True)
                    pending += 1
                if (
                    pending < len(times)
                    and pending != sought
                    and _keyframe_between(keyframes, frame_s, times[pending])
                ):
                    # At most once per time, should the seek land before this frame.
                    self._seek(stream, times[pending])
                    sought, restart = pending, True
                    break
                if pending == len(times):
                    break
            if not restart:
                break
        return best

    def _nearest_keyframes(
        self, stream: av.stream.Stream, times: list[float]
    ) -> list[tuple[av.VideoFrame, float]]:
        """For sorted ``times``: the keyframe nearest each, and its clip time."""
        keyframes = self._keyframe_times(stream, times[0], times[-1])
        if not len(keyframes):
            raise UnreadableMedia(f"{self.path}: no keyframe found near t={times[0]:.3f}s")
        decoded: dict[float, tuple[av.VideoFrame, float]] = {}
        out = []
        for time_s in times:
            nearest = float(keyframes[np.argmin(np.abs(keyframes - time_s))])
            if nearest not in decoded:
                decoded[nearest] = self._keyframe(stream, nearest)
            out.append(decoded[nearest])
        return out

    def _keyframe_times(self, stream: av.stream.Stream, first_s: float, last_s: float):
        """Clip times of the keyframes from the last at or before ``first_s`` to the first
        after ``last_s``, read from packet headers (nothing is decoded)."""
        for seek_s in (first_s, None):
            self._seek(stream, seek_s)
            times = []
            for packet_s, is_key in self._packets(stream):
                if is_key and packet_s is not None:
                    times.append(packet_s)
                    if packet_s > last_s:
                        break
            if times and (seek_s is None or min(times) <= first_s):
                break  # else the seek landed after the first time: read from the start
        return np.array(sorted(times))

    def _keyframe(self, stream: av.stream.Stream, time_s: float) -> tuple[av.VideoFrame, float]:
        """The keyframe shown at ``time_s``, decoding keyframes only."""
        self._seek(stream, time_s)
        for frame in self._decode(stream, lambda _: False, skip="NONKEY"):
            if frame.time is not None and frame.time - self._origin >= time_s - 1e-6:
                return frame, frame.time - self._origin
        raise UnreadableMedia(f"{self.path}: the keyframe at t={time_s:.3f}s does not decode")

    def restrict_audio(self, first_s: float, last_s: float) -> None:
        """Decode only the audio around ``[first_s, last_s]`` (clip time) from now on.

        For a segment of a long video: a seek and a few seconds of decoding instead of the
        whole track. Windows inside the span are the same as without it (in containers
        with millisecond timestamps, such as WebM, up to a shift of about 1 ms); a window
        outside it, and ``audio()``, raise ValueError.
        """
        if not first_s <= last_s:
            raise ValueError(f"empty audio span [{first_s}, {last_s}]")
        self._span = (first_s, last_s)

    def audio(self, rate: int) -> np.ndarray:
        """Whole audio track, mono float32 in [-1, 1] at ``rate`` Hz; read-only, cached."""
        if self._span is not None:
            raise ValueError(f"{self.path}: audio() is the whole track; restrict_audio was called")
        return self._resampled(rate)

    def audio_window(self, center_s: float, window_s: float, rate: int) -> AudioWindow:
        """``[center - w/2, center + w/2)`` of the audio at ``rate``, zero-padded past its ends."""
        if window_s <= 0 or rate <= 0:
            raise ValueError(f"window_s and rate must be positive, got {window_s}, {rate}")
        start_s = center_s - window_s / 2
        self._check_in_span(start_s, start_s + window_s)
        samples = self._resampled(rate)
        decoded = self._native_audio()
        n = round(window_s * rate)
        # Index in `samples` of the window start, counted from the stream's first sample so
        # that it is the same whether or not whole seconds were skipped.
        first = round((start_s - decoded.grid_s) * rate) - decoded.skipped_s * rate
        lo, hi = max(first, 0), min(first + n, len(samples))
        if hi <= lo:
            begin_s = decoded.start_s
            where = (
                f"{self.path}: window [{start_s:.3f}, {start_s + window_s:.3f})s does not "
                f"overlap the decoded audio [{begin_s:.3f}, {begin_s + len(samples) / rate:.3f})s"
            )
            audio_start = self._stream_start(self._audio)
            if start_s + window_s <= audio_start or start_s >= self._stream_end(self._audio):
                raise WindowOutsideClip(where)
            raise self._ended_early(where)
        out = np.zeros(n, dtype=np.float32)
        out[lo - first : hi - first] = samples[lo:hi]
        return AudioWindow(out, rate, start_s, padded_s=(n - (hi - lo)) / rate)

    def _check_in_span(self, start_s: float, end_s: float) -> None:
        """A window outside the span given to restrict_audio is the caller's mistake."""
        span = self._span
        if span is None:
            return
        if start_s < span[0] - _SPAN_SLACK_S or end_s > span[1] + _SPAN_SLACK_S:
            raise ValueError(
                f"{self.path}: window [{start_s:.3f}, {end_s:.3f})s is outside the audio span "
                f"[{span[0]:.3f}, {span[1]:.3f}]s given to restrict_audio"
            )

    def _resampled(self, rate: int) -> np.ndarray:
        """The decoded audio at ``rate`` Hz, clipped to [-1, 1]; read-only, cached."""
        decoded = self._native_audio()
        if rate not in self._by_rate:
            samples = decoded.samples
            if rate != decoded.rate:
                samples = soxr.resample(samples, decoded.rate, rate, quality="HQ")
            # Lossy decoders and resampling overshoot slightly past full scale.
            samples = np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)
            samples.flags.writeable = False  # shared by every window cut from it
            self._by_rate[rate] = samples
        return self._by_rate[rate]

    def _make_info(self) -> MediaInfo:
        v, a = self._video, self._audio
        fps = None
        if v is not None:
            rate = v.average_rate or v.guessed_rate or v.base_rate
            fps = float(rate) if rate else None
        return MediaInfo(
            path=self.path,
            duration_s=self._duration(),
            has_video=v is not None,
            has_audio=a is not None,
            width=v.codec_context.width if v is not None else None,
            height=v.codec_context.height if v is not None else None,
            fps=fps,
            audio_rate=a.codec_context.sample_rate if a is not None else None,
            audio_channels=a.codec_context.channels if a is not None else None,
        )

    def _duration(self) -> float:
        """End of the longest stream, else the container's, else what actually decodes."""
        ends = [
            self._stream_end(s)
            for s in (self._video, self._audio)
            if s is not None and s.duration is not None
        ]
        if ends:
            return max(ends)
        if self._container.duration is not None:
            # Only a header gives a container duration without stream durations (Matroska's
            # segment duration), and headers count it from timestamp 0, not from the start.
            return self._container.duration / av.time_base - self._origin
        if self._audio is not None:
            decoded = self._native_audio()
            return decoded.start_s + len(decoded.samples) / decoded.rate
        last_s = None
        for frame in self._decode(self._video):
            if frame.time is not None:
                last_s = frame.time - self._origin
        if last_s is None:
            raise UnreadableMedia(f"{self.path}: no video frame decodes")
        return last_s + (1.0 / self._video.average_rate if self._video.average_rate else 0.0)

    def _stream_start(self, stream: av.stream.Stream) -> float:
        """Start of ``stream`` in clip time."""
        if stream.start_time is None:
            return 0.0
        return float(stream.start_time * stream.time_base) - self._origin

    def _stream_end(self, stream: av.stream.Stream) -> float:
        """End of ``stream`` in clip time; the clip's duration when the stream has none."""
        if stream.duration is None:
            return self.info.duration_s
        return self._stream_start(stream) + float(stream.duration * stream.time_base)

    def _seek(self, stream: av.stream.Stream, time_s: float | None) -> None:
        """Move to the keyframe at or before ``time_s`` (clip time), or to the stream start."""
        offset = stream.start_time or 0
        if time_s is not None:
            # Not before the stream's first packet: some demuxers fail a backward seek
            # that finds no keyframe at or before the target.
            offset = max(offset, math.floor((time_s + self._origin) / stream.time_base))
        try:
            self._container.seek(offset, stream=stream, backward=True)
        except _AV_ERRORS as e:
            raise UnreadableMedia(f"{self.path}: cannot seek: {e}") from e

    def _nearest_frame(
        self, stream: av.stream.Stream, time_s: float, seek_s: float | None
    ) -> tuple[av.VideoFrame | None, float, bool]:
        """(nearest frame, its clip time, whether decoding got as far as ``time_s``)."""
        self._seek(stream, seek_s)
        best, best_s = None, math.inf
        for frame in self._decode(stream):
            if frame.time is None:
                continue
            frame_s = frame.time - self._origin
            if abs(frame_s - time_s) < abs(best_s - time_s):
                best, best_s = frame, frame_s
            if frame_s >= time_s:  # frames leave the decoder in presentation order
                return best, best_s, True
        return best, best_s, False

    def _ended_early(self, message: str) -> MediaError:
        """Error for a request past the decoded end of a stream but within the clip.

        Either the file was cut short (its packets stop well before its stated duration),
        or only this stream is shorter than the clip.
        """
        if self._data_end_s < self.info.duration_s - _TRUNCATION_SLACK_S:
            return UnreadableMedia(
                f"{message}; its packets end at {self._data_end_s:.3f}s of the "
                f"{self.info.duration_s:.3f}s it states (truncated?)"
            )
        return WindowOutsideClip(message)

    def _native_audio(self) -> _Decoded:
        """The audio at its own rate: the whole track, or what restrict_audio asks for."""
        if self._native is None or not self._native.covers(self._span):
            self._native = self._decode_audio(self._span)
            self._by_rate = {}
        return self._native

    def _decode_audio(self, span: tuple[float, float] | None) -> _Decoded:
        """Decode ``span`` (None: everything), by seeking when it lies past the first seconds."""
        stream = self._audio
        if stream is None:
            raise NoAudioStream(f"{self.path}: no audio stream")
        grid_s = self._stream_start(stream)
        skip = _seconds_to_skip(span, grid_s)
        if skip:
            try:
                self._seek(stream, grid_s + skip - _PREROLL_S)
            except UnreadableMedia as e:
                logger.debug("%s: %s; decoding the audio from its start", self.path, e)
            else:
                decoded = self._read_audio(span, grid_s)
                if decoded is not None:
                    return decoded
                logger.debug("%s: the audio seek landed late or past the end", self.path)
        if self._consumed:
            self._seek(stream, None)
        decoded = self._read_audio(span, None)
        if decoded is None:
            raise UnreadableMedia(f"{self.path}: no audio decodes")
        return decoded

    def _read_audio(
        self, span: tuple[float, float] | None, grid_s: float | None
    ) -> _Decoded | None:
        """Decode the audio ``span`` needs (None: all of it) from the current position.

        ``grid_s`` is the clip time of the stream's first sample, None when decoding
        starts there (the first frame then says where it is). None when nothing decodes,
        or when decoding starts too late for the span (a seek landed after its target).
        """
        frames = self._decode(self._audio)
        first = next(frames, None)
        # After a seek, only the timestamp says where decoding resumed.
        if first is None or (grid_s is not None and first.time is None):
            return None
        time_s = first.time - self._origin if first.time is not None else 0.0
        grid_s = time_s if grid_s is None else grid_s
        rate = first.sample_rate
        at = round((time_s - grid_s) * rate)  # sample index, counted from the stream's first
        skip = _seconds_to_skip(span, grid_s)
        keep = skip * rate  # index of the first sample kept
        if at > keep:
            return None
        stop = math.inf if span is None else (span[1] + _SPAN_MARGIN_S - grid_s) * rate
        chunks = []
        for frame in itertools.chain([first], frames):
            if frame.sample_rate != rate:
                raise UnreadableMedia(
                    f"{self.path}: audio sample rate changes mid-stream "
                    f"({rate} -> {frame.sample_rate} Hz)"
                )
            if at + frame.samples > keep:
                chunks.append(_mono_float32(frame)[max(keep - at, 0) :])
            at += frame.samples
            if at >= stop:
                break
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        return _Decoded(self._cut_padding(samples, grid_s, keep, rate), rate, grid_s, skip, span)

    def _cut_padding(self, samples: np.ndarray, grid_s: float, first: int, rate: int) -> np.ndarray:
        """Drop what follows the stream's stated end from ``samples``, which start at sample
        ``first`` of a stream whose sample 0 is at ``grid_s``.

        Decoders emit whole codec frames; the stream's duration (an mp4 edit list) says
        where the encoder's padding of the last frame begins.
        """
        if self._audio.duration is None:
            return samples
        end = round((self._stream_end(self._audio) - grid_s) * rate)
        return samples[: max(end - first, 0)] if end > 0 else samples

    def _decode(
        self,
        stream: av.stream.Stream,
        needed: Callable[[float | None], bool] | None = None,
        skip: str = "NONREF",
    ) -> Iterator[av.frame.Frame]:
        """Frames of ``stream`` from the current position, as far as the file decodes.

        A damaged packet is skipped and a demuxing error ends the stream, so a truncated
        or partly corrupt file yields what it still holds instead of raising. With
        ``needed``, packets whose clip time it refuses are decoded at the ``skip`` level
        (FFmpeg's skip_frame: "NONREF" decodes only the frames other frames refer to).
        """
        self._consumed = True
        # All streams: how far the other stream's packets go tells a cut file from a
        # short stream (see _ended_early).
        packets = self._container.demux()
        context = stream.codec_context
        errors = 0
        try:
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except _AV_ERRORS as e:
                    errors += 1
                    logger.debug("%s: demuxing stopped: %s", self.path, e)
                    packet = None  # flush the frames the decoder still holds
                if packet is not None:
                    self._note_packet_end(packet)
                    if packet.stream is not stream:
                        continue
                    if needed is not None:
                        wanted = needed(self._packet_time(packet))
                        context.skip_frame = "DEFAULT" if wanted else skip
                try:
                    frames = context.decode(packet)
                except _AV_ERRORS as e:
                    errors += 1
                    logger.debug("%s: skipped a packet: %s", self.path, e)
                    frames = []
                yield from frames
                if packet is None:
                    break
        finally:
            if needed is not None:
                context.skip_frame = "DEFAULT"
        if errors:
            logger.warning("%s: %d decoding error(s) in stream %d", self.path, errors, stream.index)

    def _packets(self, stream: av.stream.Stream) -> Iterator[tuple[float | None, bool]]:
        """(clip time, is keyframe) of the packets of ``stream`` from the current position,
        without decoding them; a demuxing error ends them."""
        self._consumed = True
        try:
            for packet in self._container.demux(stream):
                if packet.size:
                    yield self._packet_time(packet), bool(packet.is_keyframe)
        except _AV_ERRORS as e:
            logger.debug("%s: demuxing stopped: %s", self.path, e)

    def _packet_time(self, packet: av.Packet) -> float | None:
        if packet.pts is None:
            return None
        return float(packet.pts * packet.time_base) - self._origin

    def _note_packet_end(self, packet: av.Packet) -> None:
        if packet.pts is not None and packet.stream in (self._video, self._audio):
            end = (packet.pts + (packet.duration or 0)) * packet.time_base
            self._data_end_s = max(self._data_end_s, float(end) - self._origin)


def _keyframe_between(keyframes: Sequence[float], after_s: float, until_s: float) -> bool:
    """Whether a keyframe lies in (after_s, until_s]: seeking there skips decoding."""
    return any(after_s < k <= until_s for k in keyframes)


def _seconds_to_skip(span: tuple[float, float] | None, grid_s: float) -> int:
    """Whole seconds of audio, from its first sample at ``grid_s``, that ``span`` needs not."""
    if span is None:
        return 0
    return max(math.floor(span[0] - _SPAN_MARGIN_S - grid_s), 0)


def _mono_float32(frame: av.AudioFrame) -> np.ndarray:
    """Average the channels of ``frame`` into float32 samples in [-1, 1]."""
    fmt = frame.format
    dtype = np.dtype(_SAMPLE_DTYPES[fmt.name.removesuffix("p")])
    channels = frame.layout.nb_channels
    if fmt.is_planar:
        data = np.stack([np.frombuffer(p, dtype, frame.samples) for p in frame.planes[:channels]])
    else:
        data = np.frombuffer(frame.planes[0], dtype, frame.samples * channels)
        data = data.reshape(frame.samples, channels).T
    mono = data.mean(axis=0, dtype=np.float64)
    if dtype.kind == "u":  # unsigned 8-bit is offset binary around 128
        mono = (mono - 128.0) / 128.0
    elif dtype.kind == "i":  # scale by 2**(bits-1) so that the most negative value is -1
        mono = mono / -float(np.iinfo(dtype).min)
    return mono.astype(np.float32)


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    with MediaFile(path) as media:
        return media.info


def read_frame(path: str | os.PathLike[str], time_s: float) -> np.ndarray:
    with MediaFile(path) as media:
        return media.frame_at(time_s)


def read_frames(
    path: str | os.PathLike[str], times_s: Sequence[float], at: str = "exact"
) -> list[DecodedFrame]:
    with MediaFile(path) as media:
        return media.frames_at(times_s, at)


def read_audio_window(
    path: str | os.PathLike[str], center_s: float, window_s: float, rate: int
) -> AudioWindow:
    with MediaFile(path) as media:
        return media.audio_window(center_s, window_s, rate)


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    audio_rate: int = 44100,
    video_codec: str = "h264",
    audio_codec: str = "aac",
) -> None:
    """Encode RGB ``frames`` (T, H, W, 3) and optional ``audio`` into a container chosen by
    the extension of ``path``.

    ``audio`` is float (n,) mono or (n, channels) in [-1, 1]. The file is written under a
    temporary name in the same directory and renamed when complete, so an interrupted
    write never leaves a truncated file under ``path``.
    """
    path = Path(path)
    frames = np.ascontiguousarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(
            f"frames must be a non-empty (T, H, W, 3) uint8 array, got {frames.dtype} "
            f"{frames.shape}"
        )
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(
            f"frame size {width}x{height} must be even: frames are encoded as yuv420p, "
            "which halves the chroma resolution (libx264 rejects odd sizes)"
        )
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[:, None]
        if audio.ndim != 2 or audio.shape[1] < 1:
            raise ValueError(f"audio must be (n,) or (n, channels), got {audio.shape}")
        rates = av.Codec(audio_codec, "w").audio_rates
        if rates and audio_rate not in rates:
            raise ValueError(f"{audio_codec} cannot encode {audio_rate} Hz; it accepts {rates}")

    # The temporary keeps the extension: FFmpeg picks the container from it.
    with atomic_path(path) as tmp, av.open(str(tmp), "w") as container:
        _mux(container, frames, fps, audio, audio_rate, video_codec, audio_codec)


def _mux(
    container: av.container.OutputContainer,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None,
    audio_rate: int,
    video_codec: str,
    audio_codec: str,
) -> None:
    """Encode video and audio interleaved in time, so that readers need not jump around."""
    rate = Fraction(fps).limit_denominator(100_000)
    vstream = container.add_stream(video_codec, rate=rate)
    vstream.height, vstream.width = frames.shape[1:3]
    vstream.pix_fmt = "yuv420p"
    astream, planar = None, np.zeros((1, 0), dtype=np.float32)
    if audio is not None:
        astream = container.add_stream(audio_codec, rate=audio_rate)
        channels = audio.shape[1]
        astream.layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
        planar = np.ascontiguousarray(audio.T)  # fltp: one row per channel

    done = 0  # audio samples encoded so far
    for i, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        frame.time_base = 1 / rate
        container.mux(vstream.encode(frame))
        # The audio up to the end of this frame; after the last frame, all that is left.
        last = i == len(frames) - 1
        stop = planar.shape[1] if last else min(planar.shape[1], round((i + 1) * audio_rate / rate))
        if stop > done:
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, done:stop]), format="fltp", layout=astream.layout
            )
            chunk.sample_rate = audio_rate
            chunk.pts = done
            chunk.time_base = Fraction(1, audio_rate)
            container.mux(astream.encode(chunk))
            done = stop
    container.mux(vstream.encode(None))
    if astream is not None:
        container.mux(astream.encode(None))
