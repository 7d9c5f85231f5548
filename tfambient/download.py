"""Fetch the AudioSet clips missing from a media directory, with yt-dlp.

``tfambient-prepare --download`` calls :func:`download_segments` with the segments whose
files are absent. Each clip is saved as ``{clip_id}.{ext}`` in the media directory, the
name the frame and audio extractor looks for. Videos vanish from YouTube all the time, so
a failed clip is reported in its :class:`DownloadResult` rather than raised: the caller
writes it to the failures list and carries on with the rest.

yt-dlp cuts sections, and fixes or merges some formats, with ffmpeg. Which ffmpeg that is
is decided here, never by whatever the PATH holds: the one named, else the one that
imageio-ffmpeg ships inside its wheel. So a download gives the same file on every machine.

yt-dlp and imageio-ffmpeg are optional dependencies (the ``download`` extra), imported only
when a download starts, so that the rest of the package works (and imports fast) without
them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from time import sleep
from types import ModuleType
from typing import Any, Protocol

from tqdm import tqdm

logger = logging.getLogger(__name__)

DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={ytid}"

# Prefer one mp4 file holding both video and audio: merging separate streams needs ffmpeg.
_FORMAT = "best[ext=mp4]/best"

# Seconds without a byte from the server before yt-dlp gives up on a connection.
_SOCKET_TIMEOUT_S = 30.0

# Errors that no retry can fix. YouTube's rate limiting also says "Video unavailable" but
# adds "try again later", so that phrase wins.
_PERMANENT_ERROR = re.compile(
    r"Video unavailable|Private video|This video has been removed"
    r"|account associated with this video has been terminated"
    r"|HTTP Error (?:403|404|410)\b|Unsupported URL",
    re.IGNORECASE,
)
_TRANSIENT_HINT = re.compile(r"try again later", re.IGNORECASE)

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# yt-dlp appends a long bug-report request to unexpected errors; it would fill the line.
_BUG_REPORT_TAIL = re.compile(r";?\s*please report this issue on .*$", re.IGNORECASE)
_MAX_ERROR_CHARS = 199


class DownloaderMissing(RuntimeError):
    """A tool that downloading needs (yt-dlp, ffmpeg) is not installed or does not work."""


class SegmentLike(Protocol):
    """What downloading needs of an ``tfambient.audioset.Segment``."""

    @property
    def ytid(self) -> str: ...

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...

    @property
    def clip_id(self) -> str: ...


@dataclass(frozen=True)
class DownloadResult:
    """Outcome of one segment: ``path`` on success, else a one-line ``error``.

    ``attempts`` is 0 when a finished file was already there.
    """

    segment: SegmentLike
    path: Path | None
    error: str | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class _Plan:
    """Settings shared by every download of one call."""

    yt_dlp: ModuleType
    media_dir: Path
    url_template: str
    retries: int
    backoff_s: float
    cut_sections: bool
    ffmpeg: str


class _YtDlpLog:
    """Logger handed to yt-dlp: keeps its errors for the result's error text and sends
    the rest to debug logging instead of stdout."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, message: str) -> None:
        logger.debug("yt-dlp: %s", message)

    info = debug

    def warning(self, message: str) -> None:
        logger.debug("yt-dlp warning: %s", message)

    def error(self, message: str) -> None:
        self.errors.append(message)


class _NoFileWritten(Exception):
    """yt-dlp finished without error but left no file under the expected name."""


def download_segments(
    segments: Iterable[SegmentLike],
    media_dir: str | os.PathLike[str],
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    workers: int = 4,
    retries: int = 3,
    backoff_s: float = 2.0,
    cut_sections: bool = True,
    ffmpeg: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[DownloadResult]:
    """Download each segment's video into ``media_dir`` as ``{clip_id}.{ext}``.

    ``url_template`` may use ``{ytid}``, ``{start}`` and ``{end}`` (seconds). Each clip
    gets up to ``retries`` attempts, ``backoff_s * 2**i`` seconds apart, unless its error
    cannot go away (video removed, private, HTTP 403/404). ``cut_sections`` keeps only
    [start, end] of each video, else whole videos are fetched. yt-dlp uses ``ffmpeg`` (a
    path, or a command on PATH), by default the one imageio-ffmpeg ships. Returns one result
    per segment, in input order.
    """
    segments = list(segments)
    _check_arguments(url_template, workers, retries, backoff_s)
    plan = _Plan(
        yt_dlp=_import_yt_dlp(),
        media_dir=Path(media_dir),
        url_template=url_template,
        retries=retries,
        backoff_s=backoff_s,
        cut_sections=cut_sections,
        ffmpeg=_resolve_ffmpeg(ffmpeg),
    )
    plan.media_dir.mkdir(parents=True, exist_ok=True)
    finished = _finished_files(plan.media_dir)
    # One download per clip id: two threads writing the same file would corrupt it.
    unique = {segment.clip_id: segment for segment in segments}
    by_clip: dict[str, DownloadResult] = {
        clip_id: DownloadResult(segment, finished[clip_id], None, 0)
        for clip_id, segment in unique.items()
        if clip_id in finished
    }
    pending = [segment for clip_id, segment in unique.items() if clip_id not in by_clip]
    by_clip.update(_download_all(pending, plan, workers, progress, skipped=len(by_clip)))
    return [dataclasses.replace(by_clip[s.clip_id], segment=s) for s in segments]


def _check_arguments(url_template: str, workers: int, retries: int, backoff_s: float) -> None:
    """Fail before any download rather than once per clip."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if retries < 1:
        raise ValueError(f"retries (attempts per clip) must be at least 1, got {retries}")
    if backoff_s < 0:
        raise ValueError(f"backoff_s must not be negative, got {backoff_s}")
    try:
        url_template.format(ytid="ID", start=0.0, end=10.0)
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"url_template {url_template!r} is not valid: it may only use the placeholders "
            f"{{ytid}}, {{start}} and {{end}} ({error!r})"
        ) from None


def _import_yt_dlp() -> ModuleType:
    try:
        import yt_dlp
    except ImportError:
        raise DownloaderMissing(
            "downloading needs yt-dlp, which is not installed: pip install 'tfambient[download]'"
        ) from None
    return yt_dlp


def _resolve_ffmpeg(ffmpeg: str | os.PathLike[str] | None) -> str:
    """The absolute path of the ffmpeg to hand yt-dlp, checked to run, and logged."""
    name = _bundled_ffmpeg() if ffmpeg is None else os.fspath(ffmpeg)
    path = shutil.which(name)
    if path is None:
        raise DownloaderMissing(
            f"ffmpeg {name!r} is neither an executable file nor a command on PATH"
        )
    path = os.path.abspath(path)
    logger.info("downloading with %s (%s)", path, _ffmpeg_version(path))
    return path


def _bundled_ffmpeg() -> str:
    """The ffmpeg inside the imageio-ffmpeg wheel (or the one IMAGEIO_FFMPEG_EXE names)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise DownloaderMissing(
            "downloading needs imageio-ffmpeg, which brings an ffmpeg and is not installed: "
            "pip install 'tfambient[download]' (or name an ffmpeg executable)"
        ) from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:  # no binary in the wheel for this platform, none elsewhere
        raise DownloaderMissing(f"imageio-ffmpeg found no ffmpeg: {error}") from None


def _ffmpeg_version(path: str) -> str:
    """First line of ``ffmpeg -version``: checked once here rather than failing every clip."""
    try:
        done = subprocess.run(
            [path, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise DownloaderMissing(f"ffmpeg {path} does not run: {error}") from None
    first_line = done.stdout.partition("\n")[0].strip()
    if done.returncode != 0 or not first_line.startswith("ffmpeg version"):
        said = first_line or done.stderr.strip().partition("\n")[0]
        raise DownloaderMissing(
            f"{path} is not a working ffmpeg: -version gave status {done.returncode}, {said!r}"
        )
    return first_line


def _finished_files(media_dir: Path) -> dict[str, Path]:
    """Final files in ``media_dir`` by stem, listed once for the whole call.

    yt-dlp's temporary names (``X.mp4.part``, ``X.mp4.ytdl``) keep the final extension in
    their stem, so they never match a clip id.
    """
    finished = {}
    with os.scandir(media_dir) as entries:
        for entry in entries:
            if entry.is_file():
                finished[entry.name.rpartition(".")[0]] = Path(entry.path)
    return finished


def _download_all(
    segments: Sequence[SegmentLike], plan: _Plan, workers: int, progress: bool, skipped: int
) -> dict[str, DownloadResult]:
    """Download concurrently, counting successes and failures on a progress bar."""
    results: dict[str, DownloadResult] = {}
    failed = 0
    with (
        tqdm(
            total=len(segments) + skipped, initial=skipped, unit="clip", disable=not progress
        ) as bar,
        ThreadPoolExecutor(workers, thread_name_prefix="download") as pool,
    ):
        futures = [pool.submit(_download_with_retries, segment, plan) for segment in segments]
        try:
            for future in as_completed(futures):
                result = future.result()
                results[result.segment.clip_id] = result
                if not result.ok:
                    failed += 1
                bar.set_postfix(ok=skipped + len(results) - failed, failed=failed, refresh=False)
                bar.update()
        except BaseException:
            # Ctrl-C or a bug: finish only the downloads in flight, start no more.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results


def _download_with_retries(segment: SegmentLike, plan: _Plan) -> DownloadResult:
    """Try up to ``plan.retries`` times, backing off exponentially, unless hopeless."""
    url = plan.url_template.format(ytid=segment.ytid, start=segment.start_s, end=segment.end_s)
    for attempt in range(1, plan.retries + 1):
        if attempt > 1:
            sleep(plan.backoff_s * 2 ** (attempt - 2))
        log = _YtDlpLog()
        try:
            return DownloadResult(segment, _download_once(url, segment, plan, log), None, attempt)
        except (plan.yt_dlp.utils.YoutubeDLError, _NoFileWritten, OSError) as failure:
            # yt-dlp logs an error before raising it; other failures only have themselves.
            error = _one_line(log.errors[-1] if log.errors else str(failure) or repr(failure))
            logger.debug("attempt %d for %s failed: %s", attempt, segment.clip_id, error)
            if _is_permanent(error):
                break
    return DownloadResult(segment, None, error, attempt)


def _download_once(url: str, segment: SegmentLike, plan: _Plan, log: _YtDlpLog) -> Path:
    """One yt-dlp run with its own YoutubeDL: instances are not safe to share."""
    # yt-dlp chooses ffmpeg as the downloader of a section without seeing the options, by a
    # context variable that its command line sets from --ffmpeg-location (yt-dlp issue 2191).
    location = plan.yt_dlp.postprocessor.ffmpeg.FFmpegPostProcessor._ffmpeg_location
    token = location.set(plan.ffmpeg)
    try:
        with plan.yt_dlp.YoutubeDL(_ydl_options(segment, plan, log)) as ydl:
            info = ydl.extract_info(url, download=True)
    finally:
        location.reset(token)
    return _written_file(info)


def _ydl_options(segment: SegmentLike, plan: _Plan, log: _YtDlpLog) -> dict[str, Any]:
    # "%" starts a yt-dlp template field, so one in a clip id must be doubled.
    stem = segment.clip_id.replace("%", "%%")
    options: dict[str, Any] = {
        "outtmpl": str(plan.media_dir / f"{stem}.%(ext)s"),
        "format": _FORMAT,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "color": "no_color",
        "logger": log,
        "ffmpeg_location": plan.ffmpeg,
        "socket_timeout": _SOCKET_TIMEOUT_S,
        "retries": plan.retries,
        "fragment_retries": plan.retries,
        # Nothing written outside media_dir, and no server mtime stamped on files.
        "cachedir": False,
        "updatetime": False,
        # Write "X.mp4.part" and rename it when complete; restart rather than resume a
        # stale .part (it may hold another format or cut); never replace a finished file.
        "nopart": False,
        "continuedl": False,
        "overwrites": False,
    }
    if plan.cut_sections:
        options["download_ranges"] = plan.yt_dlp.utils.download_range_func(
            None, [(segment.start_s, segment.end_s)]
        )
    return options


def _written_file(info: dict[str, Any] | None) -> Path:
    for download in (info or {}).get("requested_downloads") or []:
        path = download.get("filepath")
        if path and os.path.isfile(path):
            return Path(path)
    raise _NoFileWritten("yt-dlp reported success but wrote no file")


def _one_line(message: str) -> str:
    """yt-dlp's message as a short plain line for a failures list."""
    text = " ".join(_ANSI_ESCAPE.sub("", message).split())
    text = _BUG_REPORT_TAIL.sub("", text).removeprefix("ERROR: ")
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 3] + "..."
    return text


def _is_permanent(error: str) -> bool:
    return bool(_PERMANENT_ERROR.search(error)) and not _TRANSIENT_HINT.search(error)
