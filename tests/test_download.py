"""tfambient.download against tiny mp4s served over HTTP on 127.0.0.1 (no internet)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from served import Server, failing_ffmpeg_dir, path_without_ffmpeg, serve

from tfambient import download
from tfambient.download import DownloaderMissing, download_segments
from tfambient.media import probe, write_video

yt_dlp = pytest.importorskip("yt_dlp")
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

SERVED_IDS = ("vidA", "vid-B", "vid_C")
FRAMES, FPS, AUDIO_RATE = 30, 10.0, 44100
_CUT_SLACK_S = 0.25  # a section is cut at the first frame; the last may run 2 frames over


@dataclass(frozen=True)
class Segment:
    """Stand-in for tfambient.audioset.Segment with the attributes downloading uses."""

    ytid: str
    start_s: float
    end_s: float
    labels: tuple[str, ...] = ()

    @property
    def clip_id(self) -> str:
        return f"{self.ytid}_{self.start_s:.3f}"


@pytest.fixture(scope="module")
def served_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    for ytid in SERVED_IDS:
        frames = rng.integers(0, 256, (FRAMES, 32, 48, 3), dtype=np.uint8)
        audio = (0.1 * rng.standard_normal(int(AUDIO_RATE * FRAMES / FPS))).astype(np.float32)
        write_video(root / f"{ytid}.mp4", frames, FPS, audio=audio, audio_rate=AUDIO_RATE)
    return root


@pytest.fixture
def server(served_dir: Path) -> Iterator[Server]:
    with serve(served_dir) as server:
        yield server


@pytest.fixture(autouse=True)
def no_ffmpeg_on_path(monkeypatch) -> None:
    """Every test runs as on a machine without ffmpeg: none may pass only where one is."""
    monkeypatch.setenv("PATH", path_without_ffmpeg())
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)


def _fetch(segments: list[Segment], media_dir: Path, server: Server, **kwargs):
    """Whole videos unless a test cuts sections: most segments lie past the served 3 s."""
    kwargs = {"workers": 2, "backoff_s": 0.0, "progress": False, "cut_sections": False, **kwargs}
    return download_segments(segments, media_dir, url_template=server.template, **kwargs)


def _decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_downloads_each_clip_under_its_clip_id(tmp_path, server, capsys):
    segments = [Segment(ytid, 30.0 + i, 40.0 + i) for i, ytid in enumerate(SERVED_IDS)]

    results = _fetch(segments, tmp_path / "clips", server, progress=True)

    assert [r.segment for r in results] == segments
    for segment, result in zip(segments, results, strict=True):
        assert (result.path, result.error, result.attempts) == (
            tmp_path / "clips" / f"{segment.clip_id}.mp4",
            None,
            1,
        )
        info = probe(result.path)
        assert info.has_video and info.has_audio
        assert info.duration_s == pytest.approx(FRAMES / FPS, abs=0.1)
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == sorted(
        f"{s.clip_id}.mp4" for s in segments
    )
    assert capsys.readouterr().out == ""


def test_url_template_gets_start_and_end(tmp_path, server):
    template = server.template + "?from={start}&to={end}"

    [result] = download_segments(
        [Segment("vidA", 1.5, 11.5)], tmp_path, url_template=template, progress=False
    )

    assert result.ok
    assert "/vidA.mp4?from=1.5&to=11.5" in server.requests


def test_unknown_url_placeholder_is_refused_before_downloading(tmp_path, server):
    with pytest.raises(ValueError, match="placeholders"):
        download_segments([Segment("vidA", 0, 10)], tmp_path, url_template="http://x/{id}")
    assert server.requests == []


def test_missing_video_fails_on_first_attempt(tmp_path, server):
    [result] = _fetch([Segment("gone", 0, 10)], tmp_path, server, retries=3)

    assert result.path is None and result.attempts == 1
    assert "404" in result.error
    assert "\n" not in result.error and len(result.error) < 200
    assert not result.error.startswith("ERROR")
    assert list(tmp_path.iterdir()) == []


def test_server_error_is_retried(tmp_path, server):
    server.fail("vidA", 500)

    [result] = _fetch([Segment("vidA", 0, 10)], tmp_path, server, retries=3)

    assert (result.path, result.error, result.attempts) == (tmp_path / "vidA_0.000.mp4", None, 2)


def test_retries_are_bounded_and_back_off_exponentially(tmp_path, server, monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(download, "sleep", delays.append)
    server.fail("vidA", *[500] * 20)

    [result] = _fetch([Segment("vidA", 0, 10)], tmp_path, server, retries=3, backoff_s=0.5)

    assert result.path is None and result.attempts == 3
    assert "500" in result.error
    assert delays == [0.5, 1.0]


def test_finished_file_is_skipped_and_partial_file_replaced(tmp_path, server, served_dir):
    done, partial = Segment("vidA", 0, 10), Segment("vid-B", 5, 15)
    (tmp_path / f"{done.clip_id}.webm").write_bytes(b"finished earlier")
    (tmp_path / f"{partial.clip_id}.mp4.part").write_bytes(b"killed mid-download")

    skipped, fetched = _fetch([done, partial], tmp_path, server)

    assert (skipped.path, skipped.attempts) == (tmp_path / f"{done.clip_id}.webm", 0)
    assert fetched.attempts == 1
    assert fetched.path.read_bytes() == (served_dir / "vid-B.mp4").read_bytes()
    assert not any(p.suffix == ".part" for p in tmp_path.iterdir())
    assert server.requests == ["/vid-B.mp4", "/vid-B.mp4"]  # extractor probe, then download


def test_duplicate_clip_ids_download_once(tmp_path, server):
    first, again = Segment("vidA", 0, 10, ("dog",)), Segment("vidA", 0, 10, ("bark",))

    results = _fetch([first, again], tmp_path, server, workers=4)

    assert [r.segment for r in results] == [first, again]
    assert results[0].path == results[1].path == tmp_path / "vidA_0.000.mp4"
    assert len(server.requests) == 2


def test_missing_yt_dlp_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yt_dlp", None)
    with pytest.raises(DownloaderMissing, match=r"pip install 'tfambient\[download\]'"):
        download_segments([Segment("vidA", 0, 10)], tmp_path, progress=False)


def test_import_does_not_import_yt_dlp():
    code = "import sys, tfambient.download; sys.exit('yt_dlp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


class _RecordingYoutubeDL:
    """Fake YoutubeDL that records its options in ``seen`` and writes a dummy file."""

    def __init__(self, params: dict, seen: list[dict]) -> None:
        self.params = params
        seen.append(params)

    def __enter__(self) -> _RecordingYoutubeDL:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def extract_info(self, url: str, download: bool) -> dict:
        path = Path(self.params["outtmpl"].replace("%(ext)s", "mp4"))
        path.write_bytes(b"clip")
        return {"requested_downloads": [{"filepath": str(path)}]}


@pytest.fixture
def recorded_options(monkeypatch) -> list[dict]:
    seen: list[dict] = []
    monkeypatch.setattr(yt_dlp, "YoutubeDL", lambda params: _RecordingYoutubeDL(params, seen))
    return seen


def test_sections_are_cut_with_the_ffmpeg_imageio_ffmpeg_ships(tmp_path, recorded_options, caplog):
    with caplog.at_level(logging.INFO, logger="tfambient.download"):
        download_segments([Segment("vidA", 30.0, 40.0)], tmp_path, progress=False)

    [options] = recorded_options
    ranges = options["download_ranges"]({"id": "vidA"}, None)
    assert list(ranges) == [{"start_time": 30.0, "end_time": 40.0}]
    bundled = imageio_ffmpeg.get_ffmpeg_exe()
    assert Path(bundled).is_relative_to(Path(imageio_ffmpeg.__file__).parent)
    assert options["ffmpeg_location"] == bundled
    assert options["quiet"] and options["noprogress"] and options["cachedir"] is False
    assert (options["nopart"], options["continuedl"], options["overwrites"]) == (
        False,
        False,
        False,
    )
    [line] = [r.message for r in caplog.records if r.message.startswith("downloading with")]
    assert line.startswith(f"downloading with {bundled} (ffmpeg version ")


def test_whole_videos_are_not_cut(tmp_path, recorded_options):
    segments = [Segment("vidA", 0, 10), Segment("vidA", 10, 20)]

    results = download_segments(segments, tmp_path, workers=2, cut_sections=False, progress=False)

    assert all(r.ok for r in results)
    assert len(recorded_options) == 2
    assert not any("download_ranges" in options for options in recorded_options)
    assert recorded_options[0] is not recorded_options[1]
    assert {o["ffmpeg_location"] for o in recorded_options} == {imageio_ffmpeg.get_ffmpeg_exe()}


@pytest.fixture
def own_ffmpeg(tmp_path) -> Path:
    """An ffmpeg of the user's own, in a folder of its own."""
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    return folder / "ffmpeg"


def test_ffmpeg_named_by_path_is_used(tmp_path, own_ffmpeg, recorded_options):
    download_segments(
        [Segment("vidA", 0, 10)], tmp_path / "clips", ffmpeg=own_ffmpeg, progress=False
    )

    assert recorded_options[0]["ffmpeg_location"] == str(own_ffmpeg)


def test_ffmpeg_named_as_a_command_is_found_on_path(
    tmp_path, own_ffmpeg, recorded_options, monkeypatch
):
    monkeypatch.setenv("PATH", f"{own_ffmpeg.parent}{os.pathsep}{os.environ['PATH']}")

    download_segments([Segment("vidA", 0, 10)], tmp_path / "clips", ffmpeg="ffmpeg", progress=False)

    assert recorded_options[0]["ffmpeg_location"] == str(own_ffmpeg)


@pytest.mark.parametrize("kind", ["missing", "not ffmpeg"])
def test_unusable_ffmpeg_is_refused_before_downloading(tmp_path, server, kind):
    ffmpeg = tmp_path / "nowhere" / "ffmpeg"
    if kind == "not ffmpeg":
        ffmpeg = failing_ffmpeg_dir(tmp_path) / "ffmpeg"

    with pytest.raises(DownloaderMissing, match=str(ffmpeg)):
        _fetch([Segment("vidA", 0, 10)], tmp_path / "clips", server, ffmpeg=ffmpeg)

    assert server.requests == []


def test_missing_imageio_ffmpeg_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(DownloaderMissing, match=r"pip install 'tfambient\[download\]'"):
        download_segments([Segment("vidA", 0, 10)], tmp_path, progress=False)


def test_section_holds_exactly_start_to_end(tmp_path, server, served_dir):
    [result] = _fetch([Segment("vidA", 1.0, 2.0)], tmp_path, server, cut_sections=True)

    assert result.ok, result.error
    info = probe(result.path)
    assert info.has_video and info.has_audio
    # Cut without re-encoding, so the video may run a frame or two past the end.
    assert 1.0 <= info.duration_s <= 1.0 + _CUT_SLACK_S
    cut, source = _decoded_frames(result.path), _decoded_frames(served_dir / "vidA.mp4")
    first = round(1.0 * FPS)
    assert FPS <= len(cut) <= FPS + 2
    for i, frame in enumerate(cut):  # the very frames the source shows from 1 s on
        np.testing.assert_array_equal(frame, source[first + i])


@pytest.mark.parametrize("cut_sections", [True, False], ids=["sections", "whole"])
def test_an_ffmpeg_on_path_is_never_used(tmp_path, server, served_dir, monkeypatch, cut_sections):
    wrong = failing_ffmpeg_dir(tmp_path)
    monkeypatch.setenv("PATH", f"{wrong}{os.pathsep}{os.environ['PATH']}")

    [result] = _fetch(
        [Segment("vidA", 1.0, 2.0)], tmp_path / "clips", server, cut_sections=cut_sections
    )

    assert result.ok, result.error
    assert not (wrong / "calls.log").exists()
    expected_s = 1.0 if cut_sections else FRAMES / FPS
    assert expected_s <= probe(result.path).duration_s <= expected_s + _CUT_SLACK_S
    if not cut_sections:  # stored as served, not remuxed
        assert result.path.read_bytes() == (served_dir / "vidA.mp4").read_bytes()


def test_success_without_a_file_is_a_failure(tmp_path, monkeypatch):
    class WritesNothing(_RecordingYoutubeDL):
        def extract_info(self, url: str, download: bool) -> dict:
            return {"requested_downloads": [{"filepath": str(tmp_path / "elsewhere.mp4")}]}

    monkeypatch.setattr(yt_dlp, "YoutubeDL", lambda params: WritesNothing(params, []))

    [result] = download_segments(
        [Segment("vidA", 0, 10)], tmp_path, retries=2, backoff_s=0, progress=False
    )

    assert (result.path, result.attempts) == (None, 2)
    assert result.error == "yt-dlp reported success but wrote no file"


@pytest.mark.parametrize(
    ("message", "permanent"),
    [
        ("ERROR: [youtube] abc: Video unavailable", True),
        ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", True),
        ("ERROR: [youtube] abc: This video has been removed by the uploader", True),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", True),
        ("ERROR: [generic] abc: Unable to download webpage: HTTP Error 404: Not Found", True),
        (
            "ERROR: [youtube] abc: Video unavailable. "
            "This content isn't available, try again later.",
            False,
        ),
        ("ERROR: unable to download video data: HTTP Error 500: Internal Server Error", False),
        ("ERROR: [youtube] abc: Read timed out.", False),
    ],
)
def test_only_hopeless_errors_are_not_retried(message, permanent):
    assert download._is_permanent(download._one_line(message)) is permanent


def test_error_text_is_one_short_plain_line():
    message = (
        "\x1b[0;31mERROR:\x1b[0m [generic] abc: Unable to\n  download webpage: "
        + "x" * 300
        + "; please report this issue on  https://github.com/yt-dlp/yt-dlp/issues?q= , ..."
    )

    line = download._one_line(message)

    assert line.startswith("[generic] abc: Unable to download webpage: xxx")
    assert line.endswith("...") and len(line) < 200
    assert "\x1b" not in line and "please report" not in line
