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
place of an id that starts with ``-`` or ``=``) is a row with a bad id. Files may be UTF-8
(with or without a byte order mark) or UTF-16 (as Windows tools save "Unicode text").

Rows never span lines, so each line is read on its own: a quote left open damages only its
own row. A row that cannot be trusted is skipped and kept as a :class:`RejectedRow` with its
file, line and reason, so one bad row never costs the other two million. Labels are cleaned
of the quotes and spaces that re-saving adds; what is then not a label id (``/m/...``,
``/g/...``, ``/t/...``) is dropped from its row, which is still used, and kept as a
``bad_label`` entry. A file that is not a segment list at all raises
:class:`AudioSetFormatError`.

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

import codecs
import csv
import importlib.resources
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfambient.contracts.files import is_url, write_text

logger = logging.getLogger(__name__)

REJECT_REASONS = (
    "bad_id",
    "bad_time",
    "end_not_after_start",
    "too_few_columns",
    "unbalanced_quote",
    "duplicate",
)
# The reason of a label dropped from a row that is still used.
BAD_LABEL = "bad_label"

# Reasons that mean the row is not a segment row at all; a file with nothing else is not
# a segment list.
_UNPARSEABLE_REASONS = frozenset({"bad_id", "bad_time", "too_few_columns", "unbalanced_quote"})

SEGMENT_COLUMNS = ("ytid", "start_seconds", "end_seconds", "positive_labels")
ONTOLOGY_COLUMNS = ("index", "mid", "display_name")
# AudioSet's class list (Google, CC BY 4.0), shipped as package data: the default ontology.
DEFAULT_ONTOLOGY = ("tfambient", "resources/class_labels_indices.csv")

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
# A label id (Freebase "/m/", Knowledge Graph "/g/", AudioSet's own "/t/"); what quotes and
# spaces are stripped from before it is checked.
_MID = re.compile(r"/[mgt]/[0-9a-z_]+")
_LABEL_PADDING = ' "\t'
# "num_segs=22160" in the official comment header: how many rows the file should hold.
_NUM_SEGS = re.compile(r"\bnum_segs=(\d+)")
_YT_DLP_STEM = re.compile(r"\[([A-Za-z0-9_-]{11})\]$")
# Plain decimal seconds only: rejects "-1", "nan", "inf", "1e3" and "1_0", which float()
# would take.
_TIME = re.compile(r"\d+(?:\.\d*)?")
# Comment lines start with "#" and a space; "#NAME?" and "#REF!" are spreadsheet errors
# standing in for an id, and are reported.
_COMMENT = re.compile(r"#(?:\s|$)")
# Unfinished or intermediate downloads (yt-dlp .part/.ytdl/.temp, .tmp* of other tools).
_PARTIAL_DOWNLOAD = re.compile(r"\.(?:part|ytdl|temp|tmp\w*)(?:[.-]|$)", re.IGNORECASE)
# ", " separators with quoted fields after the space. Registered once: a dialect given by
# name makes a reader per line (see _split_line) twice as fast as one given by keywords.
_DIALECT = "tfambient-audioset"
csv.register_dialect(_DIALECT, skipinitialspace=True)
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
    """A skipped row (``reason`` one of :data:`REJECT_REASONS`), or a label dropped from a
    row that is used (``reason`` :data:`BAD_LABEL`, ``detail`` the label); ``text`` is
    the line as read."""

    source: str
    line: int
    reason: str
    text: str
    detail: str = ""


@dataclass
class SegmentTable:
    """The segments of one or more CSVs, the rows skipped and the labels dropped on the
    way, and warnings about whole files (in the order the files were read)."""

    segments: list[Segment]
    rejected: list[RejectedRow]
    dropped_labels: list[RejectedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def listed(self) -> list[RejectedRow]:
        """Every skipped row and dropped label, in reading order."""
        order = {source: rank for rank, source in enumerate(self.sources)}
        return sorted(
            self.rejected + self.dropped_labels, key=lambda row: (order[row.source], row.line)
        )

    def rejected_counts(self) -> dict[str, int]:
        """Rejected rows per reason, in :data:`REJECT_REASONS` order, omitting zeros."""
        counts = Counter(row.reason for row in self.rejected)
        return {reason: counts[reason] for reason in REJECT_REASONS if counts[reason]}

    def summary_lines(self, limit: int = 10) -> list[str]:
        """A report for people: totals, counts per reason, and the first rejected rows."""
        counts = self.rejected_counts()
        lines = [f"{len(self.segments)} segments, {len(self.rejected)} rows rejected"]
        lines += [f"  {reason}: {count}" for reason, count in counts.items()]
        if self.dropped_labels:
            lines.append(f"  {BAD_LABEL}: {len(self.dropped_labels)} dropped, their rows used")
        lines += [
            f"  {row.source}:{row.line}: {row.reason}: {_shorten(row.text)}"
            for row in self.rejected[:limit]
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
    seen_files: dict[tuple[int, int], str] = {}
    for path in map(os.fspath, paths):
        first = _seen_before(path, seen_files)
        if first:
            table.warnings.append(f"{path} is {first} again: read once")
            continue
        _read_segment_file(path, table, seen_clip_ids)
    return table


def _seen_before(path: str, seen_files: dict[tuple[int, int], str]) -> str | None:
    """The earlier name of the same file (however spelled or linked), or None; a file that
    cannot be looked at is left for the reader to report."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    key = (status.st_dev, status.st_ino)
    first = seen_files.get(key)
    seen_files.setdefault(key, path)
    return first


def _read_segment_file(source: str, table: SegmentTable, seen_clip_ids: set[str]) -> None:
    """Append one file's segments, rejections and dropped labels to ``table``, or raise if
    it is no segment list (nothing in it parses as a segment row)."""
    rows = _FileRows(source)
    before_data = True
    for line, text, fields in _csv_rows(source):
        if _COMMENT.match(text.lstrip()):
            rows.note_comment(text)
            continue
        if fields is not None and not _YTID.fullmatch(fields[0]):  # a header or a bad id
            if _is_segment_header(fields):
                continue
            if before_data and _looks_like_header(fields):
                raise AudioSetFormatError(
                    f"{source}:{line}: not an AudioSet segments CSV: {_shorten(text)!r} is "
                    f"neither a header ({','.join(SEGMENT_COLUMNS)}) nor a segment row"
                )
        before_data = False
        rows.add(fields, line, text, seen_clip_ids)
    if not rows.parsed:
        raise AudioSetFormatError(f"{source}: {_why_not_segments(before_data, rows.rejected)}")
    rows.append_to(table)


@dataclass
class _FileRows:
    """One file's rows, kept apart until the file is known to be a segment list."""

    source: str
    segments: list[Segment] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    dropped_labels: list[RejectedRow] = field(default_factory=list)
    parsed: int = 0  # segment rows, used or not: a file without any is no segment list
    declared: int | None = None  # the rows its comment header promises

    def note_comment(self, text: str) -> None:
        """Count the rows a "# num_segs=N" header promises (summed over files joined by cat)."""
        match = _NUM_SEGS.search(text)
        if match:
            self.declared = (self.declared or 0) + int(match.group(1))

    def add(self, fields: list[str] | None, line: int, text: str, seen_clip_ids: set[str]) -> None:
        """Keep the row's segment and its dropped labels, or the row as rejected."""
        try:
            segment, dropped = _parse_segment(fields, self.source, line)
            if segment.clip_id in seen_clip_ids:
                raise _RowRejected("duplicate")
        except _RowRejected as rejection:
            self.rejected.append(RejectedRow(self.source, line, rejection.reason, text))
            self.parsed += rejection.reason not in _UNPARSEABLE_REASONS
            return
        seen_clip_ids.add(segment.clip_id)
        self.segments.append(segment)
        self.dropped_labels += [
            RejectedRow(self.source, line, BAD_LABEL, text, label) for label in dropped
        ]
        self.parsed += 1

    def append_to(self, table: SegmentTable) -> None:
        table.segments += self.segments
        table.rejected += self.rejected
        table.dropped_labels += self.dropped_labels
        table.sources.append(self.source)
        rows = len(self.segments) + len(self.rejected)
        if self.declared is not None and self.declared != rows:
            table.warnings.append(
                f"{self.source}: its header says num_segs={self.declared} but {rows} rows "
                "were read (a truncated download?)"
            )


def _why_not_segments(empty: bool, rejected: list[RejectedRow]) -> str:
    if empty:
        return "not an AudioSet segments CSV: no data rows"
    first = rejected[0]
    return (
        "not an AudioSet segments CSV: no row has a YouTube id, start and end seconds "
        f"(line {first.line}: {first.reason})"
    )


def _parse_segment(fields: list[str] | None, source: str, line: int) -> tuple[Segment, list[str]]:
    """The segment of one row's fields and what was dropped from its labels, or
    _RowRejected saying what is wrong with it (fields None: a quote left open)."""
    if fields is None:
        raise _RowRejected("unbalanced_quote")
    if len(fields) < 3:
        raise _RowRejected("too_few_columns")
    ytid, start_text, end_text = fields[:3]
    if not _YTID.fullmatch(ytid):
        raise _RowRejected("bad_id")
    start_s, end_s = _parse_time(start_text), _parse_time(end_text)
    if end_s <= start_s:
        raise _RowRejected("end_not_after_start")
    labels, dropped = _parse_labels(fields[3:])
    segment = Segment(
        ytid=ytid,
        start_s=start_s,
        end_s=end_s,
        labels=labels,
        source=source,
        line=line,
        start_text=start_text,
        end_text=end_text,
    )
    return segment, dropped


def _parse_time(text: str) -> float:
    if not _TIME.fullmatch(text):
        raise _RowRejected("bad_time")
    seconds = float(text)
    if not math.isfinite(seconds):  # hundreds of digits overflow to inf
        raise _RowRejected("bad_time")
    return seconds


def _parse_labels(fields: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """(labels, what is not a label) from one quoted field ("/m/a,/m/b") or, unquoted,
    spread over several; the quotes and spaces that spreadsheets add are stripped first."""
    cleaned = [text.strip(_LABEL_PADDING) for text in ",".join(fields).split(",")]
    labels = tuple(text for text in cleaned if _MID.fullmatch(text))
    return labels, [text for text in cleaned if text and not _MID.fullmatch(text)]


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


def _csv_rows(path: str) -> Iterator[tuple[int, str, list[str] | None]]:
    """(1-based line number, line text, stripped fields) of each non-blank line.

    Each line is parsed on its own (no AudioSet row spans lines), so a quote left open
    damages only its line, whose fields are then None, and not the rows after it.
    """
    encoding = _text_encoding(path)
    with open(path, encoding=encoding, newline="") as file:
        line = 0
        try:
            for line, text in enumerate(file, start=1):
                fields = _split_line(text)
                if fields is None or any(fields):
                    yield line, text.rstrip("\r\n"), fields
        except UnicodeDecodeError:
            name = "UTF-16" if encoding.startswith("utf-16") else "UTF-8"
            raise AudioSetFormatError(
                f"{path}: not {name} text (after line {line}): save it as UTF-8"
            ) from None


def _split_line(text: str) -> list[str] | None:
    """The stripped fields of one line, or None if a quote opened on it is still open at
    its end (the csv module would read on into the next line: a second line read)."""
    reader = csv.reader([text, ""], _DIALECT)
    fields = next(reader, [])
    return None if reader.line_num > 1 else [field.strip() for field in fields]


def _text_encoding(path: str) -> str:
    """The encoding to read ``path`` with: UTF-16 if it says so (a byte order mark) or looks
    it (ASCII with a zero byte beside each character), else UTF-8; AudioSetFormatError for a
    missing, unreadable or binary file."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise AudioSetFormatError(f"{path}: no such file") from None
    except OSError as error:
        raise AudioSetFormatError(f"{path}: cannot read: {error.strerror}") from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\0" not in head:
        return "utf-8-sig"
    for encoding, zeros, chars in (
        ("utf-16-le", head[1::2], head[::2]),
        ("utf-16-be", head[::2], head[1::2]),
    ):
        if not zeros.strip(b"\0") and b"\0" not in chars:
            return encoding
    raise AudioSetFormatError(f"{path}: binary file, not CSV text")


def read_ontology(path: str | os.PathLike[str]) -> dict[str, str]:
    """{mid: display name} of ``class_labels_indices.csv``, in index order.

    The file is checked (header, three columns, indices 0, 1, 2, ..., unique mids) because
    label indices in trained models are positions in this list.
    """
    source = os.fspath(path)
    rows = _csv_rows(source)
    first = next(rows, None)
    if first is None or first[2] is None or _header_names(first[2]) != ONTOLOGY_COLUMNS:
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


def default_ontology() -> dict[str, str]:
    """{mid: display name} of AudioSet's 527 classes, from the copy shipped with tfambient,
    so that reports name classes even when no class list is given."""
    package, name = DEFAULT_ONTOLOGY
    with importlib.resources.as_file(importlib.resources.files(package) / name) as path:
        return read_ontology(path)


def _ontology_row_problem(
    fields: list[str] | None, expected_index: int, known: dict[str, str]
) -> str:
    if fields is None:
        return "a quote opened on this line does not close on it"
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

    path: Path | str  # a URL on another filesystem
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
        # A URL (another filesystem's, for the Beam engine) stays a string: a Path would
        # fold its "//".
        return ClipFile(
            path if is_url(path) else Path(path), has_video=not audio_only, naming=naming
        )


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
