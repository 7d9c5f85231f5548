"""AudioSet segment lists, and the downloaded clips on disk that hold them.

Segment CSVs (``balanced_train_segments.csv`` and friends) list one 10-second clip per row:
a YouTube id, start and end seconds, and the clip's label ids (mids). Accepted layouts:

* the official one: comment lines starting with ``# `` (the third names the columns
  ``# YTID, start_seconds, end_seconds, positive_labels``), ``", "`` separators and the
  labels as one quoted comma-joined field;
* the same data re-saved by a spreadsheet or pandas: a plain header row (any
  capitalisation and spacing), or none; no spaces after commas; unquoted labels, including
  several labels spilling into extra columns; times written ``30``, ``30.0`` or
  ``30.000``; CRLF line endings, a UTF-8 byte order mark, blank lines.

Lines starting with ``#`` and a space are comments, and header rows are skipped wherever
they are, so CSVs joined with ``cat`` read as one; ``#NAME?`` (a spreadsheet's error in
place of an id that starts with ``-`` or ``=``) is a row with a bad id.

A row that cannot be trusted is skipped and kept as a :class:`RejectedRow` with its file,
line and reason, so one bad row never costs the other two million. A file that is not a
segment list at all raises :class:`AudioSetFormatError`.

Clips are found by file name (:class:`MediaIndex`), with or without a ``Y`` before the id
as some AudioSet downloaders write it, and with any video or audio extension in
:data:`VIDEO_EXTENSIONS` or :data:`AUDIO_EXTENSIONS`:

* ``{YTID}_{start}``: start as written in the CSV, as an integer, with 1 or 3 decimals;
* ``{YTID}_{start}_{end}``: both in one of those forms;
* ``{YTID}_{start_ms}_{end_ms}``: integer milliseconds;
* ``{YTID}``: the whole video;
* ``{title} [{YTID}]``: yt-dlp's default name for the whole video.

Hidden files and unfinished downloads (``.part``, ``.ytdl``, ``.temp``, ``.tmp*``) are
left out. A file holds either just the segment or the whole video; :func:`segment_span`
tells which part of it is the segment, from its name (:func:`names_segment_start`) and
its duration.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfambient.contracts.files import write_text

logger = logging.getLogger(__name__)

REJECT_REASONS = ("bad_id", "bad_time", "end_not_after_start", "too_few_columns", "duplicate")

# Reasons that mean the row is not a segment row at all; a file with nothing else is not
# a segment list.
_UNPARSEABLE_REASONS = frozenset({"bad_id", "bad_time", "too_few_columns"})

SEGMENT_COLUMNS = ("ytid", "start_seconds", "end_seconds", "positive_labels")
ONTOLOGY_COLUMNS = ("index", "mid", "display_name")

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi")
AUDIO_EXTENSIONS = (".m4a", ".wav", ".flac", ".mp3", ".ogg", ".opus", ".aac")
# Preference among files that name the same segment: video first, then this order.
_EXTENSION_RANK = {ext: rank for rank, ext in enumerate(VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)}
# File name schemes (ClipFile.naming), most specific first.
_NAMINGS = ("ytid_start", "ytid_start_end", "ytid_ms", "ytid", "yt-dlp")
_WHOLE_VIDEO_NAMINGS = frozenset({"ytid", "yt-dlp"})
# Names that carry the segment's start: the file was cut there.
_CUT_NAMINGS = frozenset(_NAMINGS) - _WHOLE_VIDEO_NAMINGS

_YTID = re.compile(r"[A-Za-z0-9_-]{11}")
_YT_DLP_STEM = re.compile(r"\[([A-Za-z0-9_-]{11})\]$")
# Plain decimal seconds only: rejects "-1", "nan", "inf", "1e3" and "1_0", which float()
# would take.
_TIME = re.compile(r"\d+(?:\.\d*)?")
# Comment lines start with "#" and a space; "#NAME?" and "#REF!" are spreadsheet errors
# standing in for an id, and are reported.
_COMMENT = re.compile(r"#(?:\s|$)")
# Unfinished or intermediate downloads (yt-dlp .part/.ytdl/.temp, .tmp* of other tools).
_PARTIAL_DOWNLOAD = re.compile(r"\.(?:part|ytdl|temp|tmp\w*)(?:[.-]|$)", re.IGNORECASE)
# Enough of a file to tell text from binary.
_SNIFF_BYTES = 8192
_MAX_REJECTED_TEXT = 80


class AudioSetFormatError(ValueError):
    """A file that is not an AudioSet CSV; the message is one line starting with its path."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One clip of a segment list; ``start_text``/``end_text`` keep the CSV's spelling,
    which downloaders copy into file names."""

    ytid: str
    start_s: float
    end_s: float
    labels: tuple[str, ...]
    source: str
    line: int
    start_text: str
    end_text: str

    @property
    def clip_id(self) -> str:
        """The clip's name: one per video and start time, to the millisecond."""
        return f"{self.ytid}_{self.start_s:.3f}"

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A skipped row; ``reason`` is one of :data:`REJECT_REASONS`."""

    source: str
    line: int
    reason: str
    text: str


@dataclass
class SegmentTable:
    """The segments of one or more CSVs, and the rows skipped on the way."""

    segments: list[Segment]
    rejected: list[RejectedRow]

    def rejected_counts(self) -> dict[str, int]:
        """Rejected rows per reason, in :data:`REJECT_REASONS` order, omitting zeros."""
        counts = Counter(row.reason for row in self.rejected)
        return {reason: counts[reason] for reason in REJECT_REASONS if counts[reason]}

    def summary_lines(self, limit: int = 10) -> list[str]:
        """A report for people: totals, counts per reason, and the first rejected rows."""
        counts = self.rejected_counts()
        lines = [f"{len(self.segments)} segments, {len(self.rejected)} rows rejected"]
        lines += [f"  {reason}: {count}" for reason, count in counts.items()]
        lines += [
            f"  {row.source}:{row.line}: {row.reason}: {row.text}" for row in self.rejected[:limit]
        ]
        if len(self.rejected) > limit:
            lines.append(f"  ... and {len(self.rejected) - limit} more")
        return lines


class _RowRejected(Exception):
    """Raised by the row parsers with a reason from REJECT_REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_segments(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> SegmentTable:
    """Segments of the CSVs in order; a clip listed twice is kept where it first appears.

    A single path is read as a list of one, not as a sequence of characters.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    table = SegmentTable(segments=[], rejected=[])
    seen_clip_ids: set[str] = set()
    for path in paths:
        _read_segment_file(os.fspath(path), table, seen_clip_ids)
    return table


def _read_segment_file(source: str, table: SegmentTable, seen_clip_ids: set[str]) -> None:
    """Append one file's segments and rejections to ``table``, or raise if it is no
    segment list (nothing in it parses as a segment row)."""
    segments: list[Segment] = []
    rejected: list[RejectedRow] = []
    parsed_rows = 0
    before_data = True
    for line, text, fields in _csv_rows(source):
        if not _YTID.fullmatch(fields[0]):  # a comment, a header or a row with a bad id
            if _COMMENT.match(fields[0]) or _is_segment_header(fields):
                continue
            if before_data and _looks_like_header(fields):
                raise AudioSetFormatError(
                    f"{source}:{line}: not an AudioSet segments CSV: {_shorten(text)!r} is "
                    f"neither a header ({','.join(SEGMENT_COLUMNS)}) nor a segment row"
                )
        before_data = False
        try:
            segment = _parse_segment(fields, source, line)
            clip_id = segment.clip_id
            if clip_id in seen_clip_ids:
                raise _RowRejected("duplicate")
        except _RowRejected as rejection:
            rejected.append(RejectedRow(source, line, rejection.reason, _shorten(text)))
            parsed_rows += rejection.reason not in _UNPARSEABLE_REASONS
            continue
        seen_clip_ids.add(clip_id)
        segments.append(segment)
        parsed_rows += 1
    if not parsed_rows:
        raise AudioSetFormatError(f"{source}: {_why_not_segments(before_data, rejected)}")
    table.segments += segments
    table.rejected += rejected


def _why_not_segments(empty: bool, rejected: list[RejectedRow]) -> str:
    if empty:
        return "not an AudioSet segments CSV: no data rows"
    first = rejected[0]
    return (
        "not an AudioSet segments CSV: no row has a YouTube id, start and end seconds "
        f"(line {first.line}: {first.reason})"
    )


def _parse_segment(fields: list[str], source: str, line: int) -> Segment:
    """The segment of one row's fields, or _RowRejected saying what is wrong with it."""
    if len(fields) < 3:
        raise _RowRejected("too_few_columns")
    ytid, start_text, end_text = fields[:3]
    if not _YTID.fullmatch(ytid):
        raise _RowRejected("bad_id")
    start_s, end_s = _parse_time(start_text), _parse_time(end_text)
    if end_s <= start_s:
        raise _RowRejected("end_not_after_start")
    return Segment(
        ytid=ytid,
        start_s=start_s,
        end_s=end_s,
        labels=_parse_labels(fields[3:]),
        source=source,
        line=line,
        start_text=start_text,
        end_text=end_text,
    )


def _parse_time(text: str) -> float:
    if not _TIME.fullmatch(text):
        raise _RowRejected("bad_time")
    seconds = float(text)
    if not math.isfinite(seconds):  # hundreds of digits overflow to inf
        raise _RowRejected("bad_time")
    return seconds


def _parse_labels(fields: list[str]) -> tuple[str, ...]:
    """Labels from one quoted field ("/m/a,/m/b") or, unquoted, spread over several."""
    return tuple(filter(None, map(str.strip, ",".join(fields).split(","))))


def _is_segment_header(fields: list[str]) -> bool:
    names = _header_names(fields)
    return names in (SEGMENT_COLUMNS[:3], SEGMENT_COLUMNS)


def _looks_like_header(fields: list[str]) -> bool:
    """Whether a row that does not start with an id has names, not times, where the
    times go: a header, if it is the first row."""
    return not any(_TIME.fullmatch(field) for field in fields[1:3])


def _header_names(fields: list[str]) -> tuple[str, ...]:
    """Column names normalised: "# YTID", "Start Seconds " -> "ytid", "start_seconds"."""
    names = [fields[0].lstrip("#"), *fields[1:]]
    normalised = ["_".join(name.lower().replace("-", " ").split()) for name in names]
    while normalised and not normalised[-1]:  # a trailing comma adds an empty column
        normalised.pop()
    return tuple(normalised)


def _shorten(text: str) -> str:
    if len(text) <= _MAX_REJECTED_TEXT:
        return text
    return text[: _MAX_REJECTED_TEXT - 3] + "..."


def _csv_rows(path: str) -> Iterator[tuple[int, str, list[str]]]:
    """(1-based line number, line text, stripped fields) of each non-blank row.

    A quote left open makes the csv module read on into the next lines and swallow their
    rows; that is reported as a broken file rather than guessed around.
    """
    _check_is_text(path)
    with open(path, encoding="utf-8-sig", newline="") as file:
        lines = _RememberingLines(file)
        reader = csv.reader(lines, skipinitialspace=True)
        line = 0
        try:
            for row in reader:
                line += 1
                if reader.line_num != line:
                    raise AudioSetFormatError(
                        f"{path}:{line}: a quote opened here closes on line {reader.line_num}"
                    )
                fields = [field.strip() for field in row]
                if any(fields):
                    yield line, lines.last.rstrip("\r\n"), fields
        except UnicodeDecodeError:
            raise AudioSetFormatError(f"{path}: not UTF-8 text (after line {line})") from None


class _RememberingLines:
    """A file's lines for csv.reader, keeping the latest one to quote in reports."""

    def __init__(self, file: Iterator[str]) -> None:
        self._file = file
        self.last = ""

    def __iter__(self) -> _RememberingLines:
        return self

    def __next__(self) -> str:
        self.last = next(self._file)
        return self.last


def _check_is_text(path: str) -> None:
    """Raise AudioSetFormatError for a missing, unreadable or binary file."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise AudioSetFormatError(f"{path}: no such file") from None
    except OSError as error:
        raise AudioSetFormatError(f"{path}: cannot read: {error.strerror}") from None
    if b"\0" in head:
        raise AudioSetFormatError(f"{path}: binary file, not CSV text")


def read_ontology(path: str | os.PathLike[str]) -> dict[str, str]:
    """{mid: display name} of ``class_labels_indices.csv``, in index order.

    The file is checked (header, three columns, indices 0, 1, 2, ..., unique mids) because
    label indices in trained models are positions in this list.
    """
    source = os.fspath(path)
    rows = _csv_rows(source)
    first = next(rows, None)
    if first is None or _header_names(first[2]) != ONTOLOGY_COLUMNS:
        raise AudioSetFormatError(
            f"{source}: not an AudioSet class list: expected a header {','.join(ONTOLOGY_COLUMNS)}"
        )
    names: dict[str, str] = {}
    for line, _, fields in rows:
        problem = _ontology_row_problem(fields, expected_index=len(names), known=names)
        if problem:
            raise AudioSetFormatError(f"{source}:{line}: {problem}")
        names[fields[1]] = fields[2]
    if not names:
        raise AudioSetFormatError(f"{source}: not an AudioSet class list: no classes")
    return names


def _ontology_row_problem(fields: list[str], expected_index: int, known: dict[str, str]) -> str:
    if len(fields) != 3:
        return f"expected 3 columns (index,mid,display_name), got {len(fields)}"
    index, mid, name = fields
    if index != str(expected_index):
        return f"expected index {expected_index}, got {index!r}"
    if not mid or not name:
        return "empty mid or display_name"
    if mid in known:
        return f"mid {mid} listed twice"
    return ""


@dataclass(frozen=True, slots=True)
class ClipFile:
    """A file on disk holding a segment; ``naming`` says which file name scheme matched."""

    path: Path
    has_video: bool
    naming: str


class MediaIndex:
    """Media files by the YouTube id in their names, built once, so that finding each of
    millions of segments is one dictionary look-up rather than a directory scan."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        # ytid -> (name tail, path): tail "" for {YTID}, "_30.000" for {YTID}_30.000,
        # None for a yt-dlp title.
        self._by_ytid: dict[str, list[tuple[str | None, str]]] = {}
        self._count = 0
        for path in paths:
            self._add(os.fspath(path))

    def _add(self, path: str) -> None:
        name = os.path.basename(path)
        stem, extension = os.path.splitext(name)
        if not _is_media_name(name, extension):
            return
        self._count += 1
        for ytid, tail in _read_stem(stem):
            self._by_ytid.setdefault(ytid, []).append((tail, path))

    def __len__(self) -> int:
        return self._count

    def find(self, segment: Segment) -> ClipFile | None:
        """The best file for ``segment``, or None.

        Preference: video over audio-only (frames are what the model learns from; a
        video file has the sound too), then a name made for this segment over a whole
        video (less to decode), then the extension order of VIDEO_EXTENSIONS +
        AUDIO_EXTENSIONS, then the naming scheme in _NAMINGS order, then the path (so the
        choice never depends on the order of directory listings).
        """
        files = self._by_ytid.get(segment.ytid)
        if not files:
            return None
        namings = _tail_namings(segment)
        matches = []
        for tail, path in files:
            naming = _naming(tail, namings)
            if naming:
                extension = _extension(path)
                audio_only = extension not in VIDEO_EXTENSIONS
                whole_video = naming in _WHOLE_VIDEO_NAMINGS
                rank = (_EXTENSION_RANK[extension], _NAMINGS.index(naming))
                matches.append((audio_only, whole_video, rank, naming, path))
        if not matches:
            return None
        audio_only, _, _, naming, path = min(matches)
        return ClipFile(Path(path), has_video=not audio_only, naming=naming)


def _naming(tail: str | None, namings: dict[str, str]) -> str | None:
    """The naming scheme of a name tail (None: a yt-dlp title) among a segment's."""
    return "yt-dlp" if tail is None else namings.get(tail)


def names_segment_start(path: str | os.PathLike[str], segment: Segment) -> bool:
    """Whether the file name carries ``segment``'s start (``{YTID}_{start}...``, any
    scheme of the module docstring), which says that the file was cut there."""
    stem = os.path.splitext(os.path.basename(path))[0]
    namings = _tail_namings(segment)
    return any(
        ytid == segment.ytid and _naming(tail, namings) in _CUT_NAMINGS
        for ytid, tail in _read_stem(stem)
    )


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _is_media_name(name: str, extension: str) -> bool:
    return (
        extension.lower() in _EXTENSION_RANK
        and not name.startswith(".")
        and not _PARTIAL_DOWNLOAD.search(name)
    )


def _read_stem(stem: str) -> list[tuple[str, str | None]]:
    """(ytid, tail) readings of a file stem, tail None for a yt-dlp title.

    A leading "Y" may be a downloader's prefix or the id's own first letter, so such a
    stem is filed under both ids; segments then pick the reading whose tail they match.
    """
    readings: list[tuple[str, str | None]] = []
    for offset in (0, 1) if stem.startswith("Y") else (0,):
        ytid, tail = stem[offset : offset + 11], stem[offset + 11 :]
        if _YTID.fullmatch(ytid) and (not tail or tail.startswith("_")):
            readings.append((ytid, tail))
    yt_dlp = _YT_DLP_STEM.search(stem)
    if yt_dlp:
        readings.append((yt_dlp.group(1), None))
    return readings


def _tail_namings(segment: Segment) -> dict[str, str]:
    """{name tail after the id: naming scheme} of every name ``segment`` may have on disk."""
    starts = _time_spellings(segment.start_text, segment.start_s)
    ends = _time_spellings(segment.end_text, segment.end_s)
    namings = dict.fromkeys((f"_{start}" for start in starts.values()), "ytid_start")
    for form in starts.keys() & ends.keys():
        namings[f"_{starts[form]}_{ends[form]}"] = "ytid_start_end"
    namings[f"_{round(segment.start_s * 1000)}_{round(segment.end_s * 1000)}"] = "ytid_ms"
    namings[""] = "ytid"
    return namings


def _time_spellings(text: str, seconds: float) -> dict[str, str]:
    """How a time may appear in a file name: as written in the CSV, as an integer (only
    when it is one), with 1 and with 3 decimals."""
    spellings = {"written": text}
    if seconds.is_integer():
        spellings["integer"] = str(int(seconds))
    spellings["1dp"] = f"{seconds:.1f}"
    spellings["3dp"] = f"{seconds:.3f}"
    return spellings


def index_media(media_dir: str | os.PathLike[str]) -> MediaIndex:
    """Index every media file under ``media_dir``, following symbolic links to
    directories (each real directory once, so link loops end) and skipping hidden
    entries and unfinished downloads."""
    root = Path(media_dir)
    if not root.exists():
        raise FileNotFoundError(f"{root}: media directory not found")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory (expected the media directory)")
    return MediaIndex(_walk_files(root))


def _walk_files(root: Path) -> Iterator[str]:
    """Paths of the files under ``root``; a directory reached twice (through links) is
    listed once, and one that cannot be listed is logged and skipped."""
    visited: set[tuple[int, int]] = set()
    pending = [os.fspath(root)]
    while pending:
        directory = pending.pop()
        try:
            status = os.stat(directory)
            if (status.st_dev, status.st_ino) in visited:
                continue
            visited.add((status.st_dev, status.st_ino))
            subdirectories, files = _list_directory(directory)
        except OSError as error:
            logger.warning("skipping %s: %s", directory, error.strerror)
            continue
        pending += subdirectories
        yield from files


def _list_directory(directory: str) -> tuple[list[str], list[str]]:
    """(subdirectories, files) of one directory, leaving out hidden entries."""
    subdirectories: list[str] = []
    files: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                subdirectories.append(entry.path)
            elif entry.is_file():
                files.append(entry.path)
    return subdirectories, files


def segment_span(
    duration_s: float, segment: Segment, tolerance_s: float = 1.0, *, named_cut: bool = False
) -> tuple[float, float]:
    """(first_s, last_s): where ``segment`` lies in a file of ``duration_s`` seconds.

    Downloaders either cut the segment out of the video or keep the whole video, and cut
    files are often longer than the segment (a fixed 10 s, or padded to keyframes). The
    file is the cut when its name carries the segment's start (``named_cut``), when it is
    shorter than the segment's start (so it cannot be the whole video), or when it is no
    longer than the segment plus ``tolerance_s``; a cut is read from its start for the
    segment's length (plus ``tolerance_s``), or all of it when shorter. Any other file is
    the whole video: the segment's own times, ended early if the video is shorter than
    the CSV says.
    """
    if named_cut or duration_s < segment.start_s or duration_s <= segment.duration_s + tolerance_s:
        return 0.0, min(duration_s, segment.duration_s + tolerance_s)
    return segment.start_s, min(segment.end_s, duration_s)


def write_segments_csv(
    path: Path, rows: Sequence[tuple[str, float, float, str]], written_by: str = "tfambient"
) -> Path:
    """Write a segment list in the official layout (three ``# `` lines, ``", "`` separators,
    the labels quoted), as :func:`read_segments` reads it: one row per (YTID, start seconds,
    end seconds, comma-joined label mids). The first line names ``written_by``."""
    lines = [
        f"# Segments csv written by {written_by}",
        f"# num_ytids={len(rows)}, num_segs={len(rows)}",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    lines += [f'{y}, {s:.3f}, {e:.3f}, "{labels}"' for y, s, e, labels in rows]
    write_text(path, "\n".join(lines) + "\n")
    return path
