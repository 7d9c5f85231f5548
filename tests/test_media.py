"""tfambient.media on small clips written by write_video: one colour and one tone per second."""

from __future__ import annotations

import io
import os
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tfambient import media
from tfambient.media import (
    AudioWindow,
    DecodedFrame,
    MediaError,
    MediaFile,
    NoAudioStream,
    NoVideoStream,
    UnreadableMedia,
    WindowOutsideClip,
    probe,
    read_audio_window,
    read_frame,
    read_frames,
    write_video,
)

WIDTH, HEIGHT, FPS, SECONDS = 96, 64, 25, 4
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], dtype=np.uint8)
TONES_HZ = (440.0, 660.0, 880.0, 1100.0)
AMPLITUDE = 0.5
# container -> (video codec, audio codec, audio rate); Opus only encodes 48 kHz.
KINDS = {"mp4": ("h264", "aac", 44100), "webm": ("libvpx-vp9", "libopus", 48000)}


def _frames(fps: int = FPS, seconds: int = SECONDS) -> np.ndarray:
    """Solid frames painted COLOURS[k] during second k."""
    second = np.arange(fps * seconds) // fps
    frames = np.empty((len(second), HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames[:] = COLOURS[second][:, None, None, :]
    return frames


def _tones(rate: int, seconds: int = SECONDS) -> np.ndarray:
    """TONES_HZ[k] during second k, phase-continuous so the changes do not click."""
    hz = np.repeat(np.asarray(TONES_HZ[:seconds]), rate)
    return (AMPLITUDE * np.sin(2 * np.pi * np.cumsum(hz) / rate)).astype(np.float32)


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def _assert_colour(frame: np.ndarray, colour: np.ndarray) -> None:
    assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
    mean = frame.reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - colour).max() < 40, (mean, colour)


def _write_audio(path: Path, audio: np.ndarray, rate: int, codec: str) -> None:
    """An audio-only file: int16 (n, ch) goes in as packed s16 untouched, float as fltp."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono" if audio.shape[1] == 1 else "stereo"
        if audio.dtype == np.int16:
            frame = av.AudioFrame.from_ndarray(
                audio.reshape(1, -1), format="s16", layout=stream.layout
            )
        else:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio.T), format="fltp", layout=stream.layout
            )
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _remux(src: Path, dst, shift_s: dict[str, float] | None = None, **open_kw) -> None:
    """Copy packets into ``dst`` (a path or a file object), shifting timestamps by stream type."""
    with av.open(str(src)) as inp, av.open(dst, "w", **open_kw) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:  # the flush packets at the end
                continue
            shift = round((shift_s or {}).get(packet.stream.type, 0.0) / packet.time_base)
            packet.pts += shift
            packet.dts += shift
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


class _NonSeekable(io.RawIOBase):
    """A write-only sink, like a pipe: muxers cannot go back to fill in the duration."""

    def __init__(self):
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def _read_or_unreadable(path: Path, read):
    """``read(MediaFile)``, or None when the file is reported unreadable; nothing else passes."""
    try:
        with MediaFile(path) as m:
            return read(m)
    except UnreadableMedia as e:
        assert str(path) in str(e) and e.reason == "unreadable"
        return None


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def clips(clip_dir) -> dict[str, tuple[Path, int]]:
    """kind -> (path, audio rate) of a SECONDS-long clip with colours and tones."""
    out = {}
    for kind, (vcodec, acodec, rate) in KINDS.items():
        missing = {vcodec, acodec} - av.codecs_available
        if missing:
            print(f"skipping {kind} clips: this PyAV build has no {sorted(missing)} encoder")
            continue
        path = clip_dir / f"tones.{kind}"
        write_video(path, _frames(), FPS, _tones(rate), rate, vcodec, acodec)
        out[kind] = (path, rate)
    return out


def _clip(clips, kind: str) -> tuple[Path, int]:
    if kind not in clips:
        pytest.skip(f"no {kind} encoders in this PyAV build")
    return clips[kind]


@pytest.fixture(scope="module")
def webm(clips) -> Path:
    return _clip(clips, "webm")[0]


@pytest.fixture(scope="module")
def silent_mp4(clip_dir) -> Path:
    path = clip_dir / "silent.mp4"
    write_video(path, _frames(seconds=2), FPS)
    return path


KIND = pytest.mark.parametrize("kind", list(KINDS))


def test_error_reasons_are_distinct_codes():
    classes = [UnreadableMedia, NoVideoStream, NoAudioStream, WindowOutsideClip]
    assert all(issubclass(c, MediaError) for c in classes)
    reasons = [c.reason for c in classes]
    assert reasons == ["unreadable", "no_video_stream", "no_audio_stream", "window_outside_clip"]


@KIND
def test_probe(clips, kind):
    path, rate = _clip(clips, kind)
    info = probe(path)
    assert info.path == str(path)
    assert info.duration_s == pytest.approx(SECONDS, abs=0.15)
    assert (info.has_video, info.has_audio) == (True, True)
    assert (info.width, info.height, info.fps) == (WIDTH, HEIGHT, FPS)
    assert (info.audio_rate, info.audio_channels) == (rate, 1)


@KIND
def test_frame_at_returns_the_colour_painted_then(clips, kind):
    path, _ = _clip(clips, kind)
    with MediaFile(path) as m:
        for k, colour in enumerate(COLOURS):
            _assert_colour(m.frame_at(k + 0.5), colour)
    _assert_colour(read_frame(path, 2.5), COLOURS[2])


@KIND
def test_frame_at_picks_the_nearest_frame_in_any_order(clips, kind):
    path, _ = _clip(clips, kind)
    # Frames at 0.96 s (red) and 1.00 s (green): 0.97 is nearer the first, 0.99 the second.
    # Backwards and forwards seeks reuse the one open container, as do the ends of the clip.
    times = [0.99, 0.97, 3.5, 0.0, SECONDS, 1.5, 0.97]
    expected = [1, 0, 3, 0, 3, 1, 0]
    with MediaFile(path) as m:
        for t, k in zip(times, expected, strict=True):
            _assert_colour(m.frame_at(t), COLOURS[k])
        m.frame_at(3.5)  # the audio read next starts at the top, not where this one stopped
        w = m.audio_window(0.5, 0.5, 16000)
        assert abs(_dominant_hz(w.samples, 16000) - TONES_HZ[0]) <= 10 and not w.padded


def test_frame_at_recovers_when_a_seek_lands_late(clips, monkeypatch):
    path, _ = _clip(clips, "mp4")
    real_seek = MediaFile._seek

    def late_seek(self, stream, time_s):
        """Like a demuxer whose seek overshoots: the next frame is 2 s after the target."""
        real_seek(self, stream, time_s)
        if time_s is not None:
            for frame in self._decode(stream):
                if frame.time >= time_s + 2.0:
                    break

    monkeypatch.setattr(MediaFile, "_seek", late_seek)
    with MediaFile(path) as m:
        _assert_colour(m.frame_at(0.5), COLOURS[0])


# frames_at: several times in one pass, skipped non-reference frames, keyframes.

GOP = 10  # a keyframe every 0.4 s at FPS
TEXTURED = 60  # frames of the textured clips (2.4 s)


def _write_textured(path: Path, codec: str) -> None:
    """Every frame different (a pattern drifting a few pixels a frame), keyframes every GOP
    frames and nowhere else; H.264 with B-frames, so frames leave the decoder reordered."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = GOP
        if codec == "h264":
            stream.codec_context.options = {"x264-params": f"keyint={GOP}:scenecut=0"}
        for i in range(TEXTURED):
            image = np.stack(
                [(3 * xs + 2 * i) % 256, (4 * ys + i) % 256, (2 * (xs + ys) + 3 * i) % 256], -1
            ).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def textured(clip_dir) -> dict[str, Path]:
    out = {}
    for kind, (vcodec, _, _) in KINDS.items():
        if vcodec in av.codecs_available:
            out[kind] = clip_dir / f"textured.{kind}"
            _write_textured(out[kind], vcodec)
        else:
            print(f"skipping textured {kind} clips: this PyAV build has no {vcodec} encoder")
    return out


def _textured(textured, kind: str) -> Path:
    if kind not in textured:
        pytest.skip(f"no {kind} video encoder in this PyAV build")
    return textured[kind]


def _every_frame(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """(times, RGB images) of every frame, decoded from the start without seeking."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = float(stream.start_time * stream.time_base)
        frames = [(f.time - origin, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    frames.sort(key=lambda f: f[0])
    return [t for t, _ in frames], [image for _, image in frames]


def _nearest(times: list[float], t: float) -> int:
    """Index of the time nearest t, the earlier of two as near."""
    return min(range(len(times)), key=lambda i: (abs(times[i] - t), i))


def _keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = float(stream.start_time * stream.time_base)
        return sorted(
            float(p.pts * p.time_base) - origin
            for p in container.demux(stream)
            if p.size and p.is_keyframe
        )


def _count_decoded(monkeypatch) -> list[int]:
    """A list that grows by one for every video frame out of MediaFile._decode."""
    decoded = []
    real_decode = MediaFile._decode

    def counting_decode(self, stream, *args, **kwargs):
        for frame in real_decode(self, stream, *args, **kwargs):
            if stream.type == "video":
                decoded.append(1)
            yield frame

    monkeypatch.setattr(MediaFile, "_decode", counting_decode)
    return decoded


# Unsorted, repeated, between two frames (0.02: a tie, the earlier wins), around keyframes,
# at both ends and a little past the last frame.
EXACT_TIMES = [1.3, 0.02, 0.0, 2.36, 0.41, 0.79, 1.3, 2.39, 0.8, 0.059, 1.98]


@KIND
def test_frames_at_exact_is_the_nearest_frame_pixel_for_pixel(textured, kind):
    path = _textured(textured, kind)
    times, images = _every_frame(path)
    assert len(times) == TEXTURED
    with MediaFile(path) as m:
        frames = m.frames_at(EXACT_TIMES)
        single = [m.frame_at(t) for t in EXACT_TIMES]
    for t, frame, alone in zip(EXACT_TIMES, frames, single, strict=True):
        i = _nearest(times, t)
        assert isinstance(frame, DecodedFrame) and frame.time_s == pytest.approx(times[i], abs=1e-6)
        assert np.array_equal(frame.image, images[i]), f"t={t}: not frame {i}"
        assert np.array_equal(alone, images[i]), f"frame_at({t}): not frame {i}"
    assert [f.time_s for f in read_frames(path, [1.3, 0.02])] == [
        frames[0].time_s,
        frames[1].time_s,
    ]


def test_frames_at_skips_frames_no_other_frame_refers_to(textured, monkeypatch):
    path = _textured(textured, "mp4")
    decoded = _count_decoded(monkeypatch)
    with MediaFile(path) as m:
        m.frames_at([0.76])  # frame 19, at the end of the GOP of frames 10-19
    # A plain decode outputs frames 10..19 and the frames the decoder holds back for
    # reordering; without the B-frames that no frame refers to, fewer come out.
    assert 0 < len(decoded) < 10, decoded


def test_frames_at_serves_several_times_in_one_pass(textured, monkeypatch):
    path = _textured(textured, "mp4")
    decoded = _count_decoded(monkeypatch)
    times = [0.05, 0.15, 0.25, 0.35]  # all in the first GOP: one seek, no frame twice
    with MediaFile(path) as m:
        frames = m.frames_at(times)
    assert len(decoded) <= GOP, decoded
    every_time, images = _every_frame(path)
    for t, frame in zip(times, frames, strict=True):
        assert np.array_equal(frame.image, images[_nearest(every_time, t)])


@KIND
def test_keyframe_mode_takes_the_nearest_keyframe_and_says_when(textured, kind, monkeypatch):
    path = _textured(textured, kind)
    keys = _keyframe_times(path)
    assert len(keys) == TEXTURED // GOP  # the premise: keyframes every GOP frames only
    times, images = _every_frame(path)
    requests = [0.5, 0.62, 2.3, 0.0, 1.59, 0.5]
    decoded = _count_decoded(monkeypatch)
    frames = read_frames(path, requests, at="keyframe")
    for t, frame in zip(requests, frames, strict=True):
        key = keys[_nearest(keys, t)]
        assert frame.time_s == pytest.approx(key, abs=1e-6), (t, frame.time_s, key)
        assert np.array_equal(frame.image, images[_nearest(times, key)])
    # One decoded frame per distinct keyframe (0.4, 0.8, 2.0, 0.0, 1.6).
    assert len(decoded) == 5, decoded


@KIND
def test_frames_at_refuses_what_it_cannot_do(textured, silent_mp4, kind):
    path = _textured(textured, kind)
    with MediaFile(path) as m:
        with pytest.raises(ValueError, match="at must be one of exact, keyframe"):
            m.frames_at([0.5], at="nearest")
        for at in media.FRAME_AT:
            with pytest.raises(WindowOutsideClip):
                m.frames_at([0.5, 9.0], at=at)
            assert m.frames_at([], at=at) == []
    with MediaFile(silent_mp4) as m:
        assert len(m.frames_at([0.5, 1.5], at="keyframe")) == 2


@KIND
@pytest.mark.parametrize("same_rate", [False, True], ids=["16k", "native"])
def test_audio_window_holds_the_tone_written_there(clips, kind, same_rate):
    path, native = _clip(clips, kind)
    rate = native if same_rate else 16000
    with MediaFile(path) as m:
        for k, hz in enumerate(TONES_HZ):
            w = m.audio_window(k + 0.5, 0.5, rate)
            assert isinstance(w, AudioWindow) and w.rate == rate
            assert w.samples.shape == (round(0.5 * rate),) and w.samples.dtype == np.float32
            assert (w.start_s, w.padded_s, w.padded) == (pytest.approx(k + 0.25), 0.0, False)
            assert abs(_dominant_hz(w.samples, rate) - hz) <= 10
            assert w.samples.std() == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.1)


@KIND
def test_audio_is_mono_float32_resampled_and_cached(clips, kind):
    path, rate = _clip(clips, kind)
    with MediaFile(path) as m:
        # Exactly what was written: the encoder's priming and last-frame padding are gone.
        assert len(m.audio(rate)) == SECONDS * rate
        audio = m.audio(16000)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) - SECONDS * 16000) <= 0.025 * 16000  # at most one codec frame
        assert np.abs(audio).max() <= 1.0
        assert m.audio(16000) is audio
        assert not audio.flags.writeable  # windows share it; nobody may change it


@KIND
def test_window_hanging_off_the_ends_is_zero_padded(clips, kind):
    path, rate = _clip(clips, kind)
    overhang, n = 0.15, round(0.5 * rate)
    slack = round(0.025 * rate)  # one AAC frame (1024 samples) of codec padding, at most
    pad = round(overhang * rate)
    with MediaFile(path) as m:
        head = m.audio_window(0.25 - overhang, 0.5, rate)
        tail = m.audio_window(SECONDS - 0.25 + overhang, 0.5, rate)
    for w in (head, tail):
        assert w.samples.shape == (n,) and w.padded
        assert w.padded_s == pytest.approx(overhang, abs=0.002)
    assert head.start_s == pytest.approx(-overhang)
    tone_std = AMPLITUDE / np.sqrt(2)
    assert not head.samples[: pad - slack].any()
    assert head.samples[pad + slack :].std() == pytest.approx(tone_std, rel=0.1)
    assert not tail.samples[n - pad + slack :].any()
    assert tail.samples[: n - pad - slack].std() == pytest.approx(tone_std, rel=0.1)
    assert abs(_dominant_hz(head.samples[pad + slack :], rate) - TONES_HZ[0]) <= 10


@KIND
def test_requests_outside_the_clip_raise(clips, kind):
    path, _ = _clip(clips, kind)
    with MediaFile(path) as m:
        end = m.info.duration_s
        for center in (-1.0, end + 1.0):
            with pytest.raises(WindowOutsideClip, match="does not overlap") as e:
                m.audio_window(center, 0.5, 16000)
            assert e.value.reason == "window_outside_clip"
        for t in (-1.0, end + 5.0):
            with pytest.raises(WindowOutsideClip, match="outside"):
                m.frame_at(t)


def test_video_without_audio(silent_mp4):
    info = probe(silent_mp4)
    assert (info.has_video, info.has_audio, info.audio_rate, info.audio_channels) == (
        True,
        False,
        None,
        None,
    )
    with MediaFile(silent_mp4) as m:
        _assert_colour(m.frame_at(1.5), COLOURS[1])
        with pytest.raises(NoAudioStream):
            m.audio_window(1.0, 0.5, 16000)
        with pytest.raises(NoAudioStream):
            m.audio(16000)


AUDIO_ONLY = [  # extension, codec, rate
    ("wav", "pcm_s16le", 44100),  # packed s16
    ("wav", "pcm_u8", 22050),  # packed unsigned 8-bit
    ("wav", "pcm_s32le", 16000),  # packed s32, already at the requested rate
    ("flac", "flac", 44100),
    ("m4a", "aac", 44100),  # planar float
    ("ogg", "libopus", 48000),
    ("mp3", "libmp3lame", 44100),
]


@pytest.mark.parametrize(("ext", "codec", "rate"), AUDIO_ONLY, ids=[a[1] for a in AUDIO_ONLY])
def test_audio_only_file(tmp_path, ext, codec, rate):
    if codec not in av.codecs_available:
        pytest.skip(f"no {codec} encoder in this PyAV build")
    path = tmp_path / f"tones.{ext}"
    _write_audio(path, _tones(rate, seconds=2)[:, None], rate, codec)
    info = probe(path)
    assert (info.has_video, info.width, info.height, info.fps) == (False, None, None, None)
    assert (info.has_audio, info.audio_rate, info.audio_channels) == (True, rate, 1)
    assert info.duration_s == pytest.approx(2.0, abs=0.15)
    with MediaFile(path) as m:
        with pytest.raises(NoVideoStream):
            m.frame_at(0.5)
        for k in range(2):
            w = m.audio_window(k + 0.5, 0.5, 16000)
            assert abs(_dominant_hz(w.samples, 16000) - TONES_HZ[k]) <= 10
            assert w.samples.std() == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.1)


def test_stereo_int16_is_averaged_and_scaled_exactly(tmp_path):
    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32768, size=(4000, 2), dtype=np.int16)
    pcm[:3] = [[-32768, -32768], [32767, 32767], [32767, -32768]]  # full scale, both ways
    path = tmp_path / "stereo.wav"
    _write_audio(path, pcm, 16000, "pcm_s16le")
    assert probe(path).audio_channels == 2
    with MediaFile(path) as m:
        mono = m.audio(16000)
    np.testing.assert_allclose(mono, pcm.mean(axis=1) / 32768, atol=1e-7)
    assert mono[0] == -1.0 and mono[1] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("channels", [2, 3])
def test_write_video_multichannel_pcm_round_trip_is_exact(tmp_path, channels):
    rng = np.random.default_rng(channels)
    rate = 44100
    # An odd length, so the last chunk is partial, in a container that keeps PCM as is.
    audio = rng.uniform(-0.9, 0.9, size=(rate + 123, channels)).astype(np.float32)
    path = tmp_path / "pcm.mkv"
    write_video(path, _frames(fps=10, seconds=1), 10, audio, rate, "h264", "pcm_s16le")
    with MediaFile(path) as m:
        assert m.info.audio_channels == channels
        mono = m.audio(rate)
    np.testing.assert_allclose(mono, audio.mean(axis=1), atol=2 / 32768)


CONTAINERS = [("mkv", "h264", "aac"), ("mov", "h264", "aac"), ("avi", "mpeg4", "libmp3lame")]


@pytest.mark.parametrize(("ext", "vcodec", "acodec"), CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_write_video_other_containers(tmp_path, ext, vcodec, acodec):
    path = tmp_path / f"clip.{ext}"
    write_video(path, _frames(seconds=2), FPS, _tones(44100, seconds=2), 44100, vcodec, acodec)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
    with MediaFile(path) as m:
        assert m.info.duration_s == pytest.approx(2.0, abs=0.15)
        assert (m.info.width, m.info.height, m.info.fps) == (WIDTH, HEIGHT, FPS)
        _assert_colour(m.frame_at(1.5), COLOURS[1])
        w = m.audio_window(1.5, 0.5, 16000)
        assert abs(_dominant_hz(w.samples, 16000) - TONES_HZ[1]) <= 10


def test_write_video_rejects_bad_input(tmp_path):
    frames = np.zeros((3, 47, 64, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="64x47 must be even"):
        write_video(tmp_path / "odd.mp4", frames, FPS)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "float.mp4", np.zeros((3, 48, 64, 3)), FPS)
    with pytest.raises(ValueError, match="cannot encode 44100 Hz"):
        write_video(
            tmp_path / "a.webm", frames[:, :46], FPS, _tones(44100, 1), 44100, "vp9", "libopus"
        )
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    real_mux = media._mux

    def mux_then_fail(container, *args):
        real_mux(container, *args)  # everything is encoded, the trailer not yet written
        assert os.listdir(tmp_path)  # so the temporary file does exist now
        raise KeyboardInterrupt

    monkeypatch.setattr(media, "_mux", mux_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "clip.mp4", _frames(seconds=1), FPS, _tones(44100, 1))
    assert os.listdir(tmp_path) == []


def test_write_video_replaces_an_existing_file(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_text("old")
    write_video(path, _frames(seconds=1), FPS)
    assert os.listdir(tmp_path) == [path.name]
    _assert_colour(read_frame(path, 0.5), COLOURS[0])


@pytest.mark.parametrize("case", ["missing", "empty", "text", "directory"])
def test_unreadable_files(tmp_path, case):
    path = tmp_path / "clip.mp4"
    if case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("this is not a video\n" * 50)
    elif case == "directory":
        path.mkdir()
    for call in (probe, lambda p: read_frame(p, 0.5), lambda p: read_audio_window(p, 1, 1, 16000)):
        with pytest.raises(UnreadableMedia, match=re.escape(str(path))) as e:
            call(path)
        assert e.value.reason == "unreadable"


@pytest.fixture(scope="module")
def truncated(clips, clip_dir) -> dict[str, Path]:
    """The mp4 (index at the end) and a faststart copy (index first) and the webm, each cut."""
    mp4, _ = _clip(clips, "mp4")
    faststart = clip_dir / "faststart.mp4"
    _remux(mp4, str(faststart), options={"movflags": "faststart"})
    out = {}
    for name, src, keep in [
        ("mp4", mp4, 0.5),
        ("faststart_mp4", faststart, 0.6),
        ("webm", _clip(clips, "webm")[0], 0.6),
    ]:
        data = src.read_bytes()
        cut = round(len(data) * keep)
        if name == "faststart_mp4":
            assert data.find(b"moov") < data.find(b"mdat") < cut  # cut inside the media data
        out[name] = clip_dir / f"cut_{name}{src.suffix}"
        out[name].write_bytes(data[:cut])
    return out


@pytest.mark.parametrize("name", ["mp4", "faststart_mp4", "webm"])
def test_truncated_file_is_unreadable_or_gives_what_survived(truncated, name):
    path = truncated[name]
    early = _read_or_unreadable(path, lambda m: (m.frame_at(0.5), m.audio_window(0.5, 0.5, 16000)))
    late = _read_or_unreadable(path, lambda m: m.frame_at(3.5))
    late_audio = _read_or_unreadable(path, lambda m: m.audio_window(3.5, 0.5, 16000))
    if name == "mp4":  # the index (moov) is written last, so the cut lost it
        assert early is late is late_audio is None
        return
    # The index came first: what was written before the cut decodes.
    assert early is not None
    _assert_colour(early[0], COLOURS[0])
    assert abs(_dominant_hz(early[1].samples, 16000) - TONES_HZ[0]) <= 10
    assert late is None or np.abs(late.reshape(-1, 3).mean(0) - COLOURS[3]).max() < 40
    if late_audio is not None:  # what decodes there, the rest reported as padding
        assert abs(_dominant_hz(late_audio.samples, 16000) - TONES_HZ[3]) <= 10


def test_stream_start_times_are_honoured(webm, clip_dir):
    # Both streams starting 1.3 s in (a clip cut from a longer stream) changes nothing.
    shifted = clip_dir / "shifted.webm"
    _remux(webm, str(shifted), {"video": 1.3, "audio": 1.3})
    with MediaFile(shifted) as m:
        assert m.info.duration_s == pytest.approx(SECONDS, abs=0.15)
        _assert_colour(m.frame_at(1.5), COLOURS[1])
        w = m.audio_window(1.5, 0.5, 16000)
        assert abs(_dominant_hz(w.samples, 16000) - TONES_HZ[1]) <= 10 and not w.padded
    # Audio starting 0.5 s after the video: at 1.25 s the picture is green (second 1)
    # while the sound is what was written at 0.75 s (second 0).
    delayed = clip_dir / "audio_delayed.webm"
    _remux(webm, str(delayed), {"audio": 0.5})
    with MediaFile(delayed) as m:
        _assert_colour(m.frame_at(1.25), COLOURS[1])
        w = m.audio_window(1.25, 0.5, 16000)
        assert abs(_dominant_hz(w.samples, 16000) - TONES_HZ[0]) <= 10
        assert m.audio_window(0.5, 0.5, 16000).padded_s == pytest.approx(0.25, abs=0.01)
        with pytest.raises(WindowOutsideClip):
            m.audio_window(0.2, 0.4, 16000)


@pytest.mark.parametrize("has_audio", [True, False], ids=["audio", "video_only"])
def test_duration_falls_back_to_decoding(webm, silent_mp4, clip_dir, has_audio):
    src, seconds = (webm, SECONDS) if has_audio else (silent_mp4, 2)
    sink = _NonSeekable()
    _remux(src, sink, format="matroska")
    path = clip_dir / f"no_duration_{has_audio}.mkv"
    path.write_bytes(sink.data)
    with av.open(str(path)) as c:
        assert c.duration is None  # the premise: no duration in the file
    assert probe(path).duration_s == pytest.approx(seconds, abs=0.05)
    _assert_colour(read_frame(path, 1.5), COLOURS[1])


def test_streams_shorter_than_the_clip(tmp_path):
    # Matroska states no stream durations: only the decoded data shows where each ends.
    path = tmp_path / "short_video.mkv"
    write_video(path, _frames(seconds=2), FPS, _tones(44100, seconds=4), 44100)
    with MediaFile(path) as m:
        assert m.info.duration_s == pytest.approx(4.0, abs=0.15)
        with pytest.raises(WindowOutsideClip, match="video decodes only up to"):
            m.frame_at(3.0)
        assert abs(_dominant_hz(m.audio_window(3.5, 0.5, 16000).samples, 16000) - 1100) <= 10
    path = tmp_path / "short_audio.mkv"
    write_video(path, _frames(seconds=4), FPS, _tones(44100, seconds=2), 44100)
    with MediaFile(path) as m:
        with pytest.raises(WindowOutsideClip, match="does not overlap"):
            m.audio_window(3.0, 0.5, 16000)
        _assert_colour(m.frame_at(3.0), COLOURS[3])


def test_cover_art_is_not_video(tmp_path):
    path = tmp_path / "with_cover.mp3"
    rate = 44100
    with av.open(str(path), "w") as container:
        sound = container.add_stream("libmp3lame", rate=rate)
        sound.layout = "mono"
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 16, 16, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        frame = av.AudioFrame.from_ndarray(_tones(rate, seconds=1)[None], "fltp", "mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        container.mux(sound.encode(frame) + sound.encode(None))
        picture = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        container.mux(cover.encode(picture) + cover.encode(None))
    with av.open(str(path)) as c:
        assert len(c.streams.video) == 1  # the premise: FFmpeg lists the picture as video
    with MediaFile(path) as m:
        assert not m.info.has_video and m.info.fps is None
        with pytest.raises(NoVideoStream):
            m.frame_at(0.5)
        assert abs(_dominant_hz(m.audio_window(0.5, 0.5, 16000).samples, 16000) - 440) <= 10


# restrict_audio: a span of a long clip, decoded from a seek instead of from the start.

LONG_S = 40  # long enough for a span to lie seconds past the start
WINDOW_S = 3.75
SPAN = (21.0, 31.0)  # AudioSet segments mostly start on whole seconds
# Matroska stores times in milliseconds, so a decoder resuming after a seek knows where
# it is to about 1 ms; MP4 counts in samples.
SEEK_SLACK_S = {"mp4": 0.0, "webm": 0.001}


def _chirp(rate: int, seconds: int = LONG_S) -> np.ndarray:
    """A tone rising from 200 Hz by 20 Hz a second: any shift in time changes the samples.

    It fades in and out: the AAC encoder codes an abrupt end partly as noise, which
    decoders fill with pseudo-random numbers that differ with where decoding began.
    """
    t = np.arange(rate * seconds) / rate
    fade = np.clip(np.minimum(t, seconds - t) / 0.2, 0.0, 1.0)
    return (AMPLITUDE * fade * np.sin(2 * np.pi * (200 * t + 10 * t**2))).astype(np.float32)


@pytest.fixture(scope="module")
def long_clips(clip_dir) -> dict[str, tuple[Path, int]]:
    """kind -> (path, audio rate) of a LONG_S chirp, with tiny frames at 1 fps."""
    out = {}
    for kind, (vcodec, acodec, rate) in KINDS.items():
        if {vcodec, acodec} <= av.codecs_available:
            path = clip_dir / f"chirp.{kind}"
            frames = np.zeros((LONG_S, 32, 32, 3), dtype=np.uint8)
            write_video(path, frames, 1, _chirp(rate), rate, vcodec, acodec)
            out[kind] = (path, rate)
    return out


def _windows(path: Path, centres, rate: int, span=None) -> list[AudioWindow]:
    with MediaFile(path) as m:
        if span is not None:
            m.restrict_audio(*span)
        return [m.audio_window(c, WINDOW_S, rate) for c in centres]


def _edges_and_middle(span: tuple[float, float]) -> list[float]:
    """Centres of the first, a middle and the last window inside ``span``."""
    first, last = span
    return [first + WINDOW_S / 2, (first + last) / 2 + 0.0123, last - WINDOW_S / 2]


def _assert_same_windows(whole, restricted, slack_s: float) -> None:
    """Equal samples, the restricted ones shifted by at most ``slack_s``."""
    for w, r in zip(whole, restricted, strict=True):
        assert (r.rate, r.start_s, len(r.samples)) == (w.rate, w.start_s, len(w.samples))
        assert r.padded_s == pytest.approx(w.padded_s, abs=slack_s + 1e-9)
        lag = round(slack_s * w.rate)
        inner = slice(lag, len(w.samples) - lag)
        diffs = [
            np.abs(np.roll(w.samples, shift)[inner] - r.samples[inner]).max()
            for shift in range(-lag, lag + 1)
        ]
        assert min(diffs) < 1e-4


@KIND
@pytest.mark.parametrize("same_rate", [True, False], ids=["native", "16k"])
@pytest.mark.parametrize("span", [SPAN, (31.2, LONG_S + 0.5)], ids=["middle", "past_end"])
def test_restricted_windows_are_the_whole_track_windows(long_clips, kind, same_rate, span):
    path, native = _clip(long_clips, kind)
    rate = native if same_rate else 16000
    centres = _edges_and_middle(span)
    whole = _windows(path, centres, rate)
    restricted = _windows(path, centres, rate, span)
    _assert_same_windows(whole, restricted, SEEK_SLACK_S[kind])
    # Past the end of the file, both pad the same way.
    assert restricted[-1].padded_s == pytest.approx(max(span[1] - LONG_S, 0), abs=0.002)


@KIND
@pytest.mark.parametrize("span", [(0.5, 10.5), SPAN], ids=["start", "middle"])
def test_restricted_decode_decodes_the_span_only(long_clips, kind, span, monkeypatch):
    path, rate = _clip(long_clips, kind)
    decoded = []  # sizes of the audio frames out of the decoder
    real_decode = MediaFile._decode

    def counting_decode(self, stream):
        for frame in real_decode(self, stream):
            if stream.type == "audio":
                decoded.append(frame.samples)
            yield frame

    monkeypatch.setattr(MediaFile, "_decode", counting_decode)
    _windows(path, [sum(span) / 2], rate)
    assert sum(decoded) >= LONG_S * rate
    decoded.clear()
    _windows(path, [sum(span) / 2], rate, span)
    # The span, a second on each side, up to a second to start on a whole second, and
    # half a second for the decoder to settle after the seek.
    assert sum(decoded) < (span[1] - span[0] + 3.5) * rate + max(decoded)


def test_windows_outside_the_span_are_refused(long_clips):
    path, _ = _clip(long_clips, "mp4")
    with MediaFile(path) as m:
        m.restrict_audio(*SPAN)
        for centre in (SPAN[0] + 1.8, SPAN[1] - 1.8, 5.0, 35.0):
            with pytest.raises(ValueError, match="outside the audio span"):
                m.audio_window(centre, WINDOW_S, 16000)
        with pytest.raises(ValueError, match="whole track"):
            m.audio(16000)
        with pytest.raises(ValueError, match="empty audio span"):
            m.restrict_audio(10.0, 9.0)
        # A new span is decoded anew; the old one is not kept in place of it.
        m.restrict_audio(2.0, 8.0)
        restricted = [m.audio_window(c, WINDOW_S, 16000) for c in _edges_and_middle((2.0, 8.0))]
    _assert_same_windows(_windows(path, _edges_and_middle((2.0, 8.0)), 16000), restricted, 0.0)


@KIND
@pytest.mark.parametrize("span", [(0.0, 10.0), SPAN], ids=["start", "middle"])
def test_restricted_decode_honours_stream_start_times(long_clips, clip_dir, kind, span):
    # Clip time 0 is the video's start at 0.7 s; the audio starts 1.3 s after it, so the
    # first window of the span at 0 is mostly padding.
    path, _ = _clip(long_clips, kind)
    shifted = clip_dir / f"chirp_shifted.{kind}"
    if not shifted.exists():
        _remux(path, str(shifted), {"video": 0.7, "audio": 2.0})
    with av.open(str(shifted)) as c:  # the premise: neither stream starts at 0
        assert c.streams.video[0].start_time > 0 and c.streams.audio[0].start_time > 0
    centres = _edges_and_middle(span)
    whole = _windows(shifted, centres, 16000)
    _assert_same_windows(whole, _windows(shifted, centres, 16000, span), SEEK_SLACK_S[kind])
    assert whole[0].padded == (span[0] == 0.0)


@pytest.mark.parametrize("kind", ["mp4", "webm"])
def test_restricted_decode_of_a_truncated_file(long_clips, clip_dir, kind):
    path, _ = _clip(long_clips, kind)
    if kind == "mp4":  # with the index first, so that the cut file still opens
        path, src = clip_dir / "chirp_faststart.mp4", path
        _remux(src, str(path), options={"movflags": "faststart"})
    cut = clip_dir / f"chirp_cut.{kind}"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # about 20 s survive
    with MediaFile(cut) as m:
        m.restrict_audio(30.0, 38.0)
        with pytest.raises(UnreadableMedia, match="truncated"):
            m.audio_window(34.0, WINDOW_S, 16000)
    centres = _edges_and_middle((5.0, 12.0))
    _assert_same_windows(
        _windows(path, centres, 16000),
        _windows(cut, centres, 16000, (5.0, 12.0)),
        SEEK_SLACK_S[kind],
    )


def test_restricted_decode_recovers_when_a_seek_lands_late(long_clips, monkeypatch):
    path, _ = _clip(long_clips, "mp4")
    centres = _edges_and_middle(SPAN)
    whole = _windows(path, centres, 16000)
    real_seek = MediaFile._seek

    def late_seek(self, stream, time_s):
        """Like a demuxer whose seeks overshoot by 2 s."""
        real_seek(self, stream, None if time_s is None else time_s + 2.0)

    monkeypatch.setattr(MediaFile, "_seek", late_seek)
    _assert_same_windows(whole, _windows(path, centres, 16000, SPAN), 0.0)
