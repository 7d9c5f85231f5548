"""tfambient.audioset: segment CSVs as published and as re-saved, and clip files by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tfambient.audioset import (
    AudioSetFormatError,
    ClipFile,
    MediaIndex,
    RejectedRow,
    Segment,
    default_ontology,
    index_media,
    names_segment_start,
    read_ontology,
    read_segments,
    segment_span,
)

DATA = Path(__file__).parent / "data" / "audioset"
SAMPLE = DATA / "balanced_train_segments.sample.csv"
ONTOLOGY = DATA / "class_labels_indices.csv"

# Three rows of the official file, in its own layout.
OFFICIAL = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=3, num_segs=3, num_unique_labels=527, num_positive_labels=4\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
    '--ZhevVpy1s, 50.000, 60.000, "/m/012xff"\n'
    '-275_wTLm-4, 7.000, 17.000, "/m/07q6cd_"\n'
)
EXPECTED = [
    ("--PJHxphWEs", 30.0, 40.0, ("/m/09x0r", "/t/dd00088"), "--PJHxphWEs_30.000"),
    ("--ZhevVpy1s", 50.0, 60.0, ("/m/012xff",), "--ZhevVpy1s_50.000"),
    ("-275_wTLm-4", 7.0, 17.0, ("/m/07q6cd_",), "-275_wTLm-4_7.000"),
]
PLAIN_ROWS = (
    '--PJHxphWEs,30.000,40.000,"/m/09x0r,/t/dd00088"\n'
    "--ZhevVpy1s,50.000,60.000,/m/012xff\n"
    "-275_wTLm-4,7.000,17.000,/m/07q6cd_\n"
)
# The same rows as spreadsheets and pandas re-save them.
RESAVED = {
    "plain_header": "YTID,start_seconds,end_seconds,positive_labels\n" + PLAIN_ROWS,
    "odd_header_case_and_spacing": " ytid , Start Seconds,END_SECONDS, Positive-Labels,\n"
    + PLAIN_ROWS,
    "hash_header_without_space": "#YTID,start_seconds,end_seconds,positive_labels\n" + PLAIN_ROWS,
    "no_header": PLAIN_ROWS,
    "integer_times": (
        "YTID,start_seconds,end_seconds,positive_labels\n"
        '--PJHxphWEs,30,40,"/m/09x0r,/t/dd00088"\n'
        "--ZhevVpy1s,50,60,/m/012xff\n"
        "-275_wTLm-4,7,17,/m/07q6cd_\n"
    ),
    "one_decimal_times_and_spaces": (
        '--PJHxphWEs, 30.0, 40.0, "/m/09x0r, /t/dd00088"\n'
        "--ZhevVpy1s , 50.0 , 60.0 , /m/012xff \n"
        "-275_wTLm-4, 7.0, 17.0, /m/07q6cd_\n"
    ),
    "labels_spilled_over_columns": (
        "--PJHxphWEs,30,40,/m/09x0r,/t/dd00088\n"
        "--ZhevVpy1s,50,60,/m/012xff\n"
        "-275_wTLm-4,7,17,/m/07q6cd_,\n"
    ),
    "crlf": OFFICIAL.replace("\n", "\r\n"),
    "bom": "\ufeff" + OFFICIAL,
    "bom_crlf_plain_header": "\ufeffYTID,start_seconds,end_seconds,positive_labels\r\n"
    + PLAIN_ROWS.replace("\n", "\r\n"),
    "blank_lines": "\n" + OFFICIAL.replace("\n-275", "\n\n  \n,,,\n-275") + "\n\n",
}


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def _values(segments: list[Segment]) -> list[tuple]:
    return [(s.ytid, s.start_s, s.end_s, s.labels, s.clip_id) for s in segments]


def _segment(ytid: str, start_text: str, end_text: str) -> Segment:
    return Segment(
        ytid=ytid,
        start_s=float(start_text),
        end_s=float(end_text),
        labels=(),
        source="test.csv",
        line=1,
        start_text=start_text,
        end_text=end_text,
    )


# Segment CSVs.


def test_official_sample_reads_every_row():
    table = read_segments([SAMPLE])
    assert len(table.segments) == 42
    assert table.rejected == []
    assert table.rejected_counts() == {}
    first, last = table.segments[0], table.segments[-1]
    assert first == Segment(
        ytid="--PJHxphWEs",
        start_s=30.0,
        end_s=40.0,
        labels=("/m/09x0r", "/t/dd00088"),
        source=str(SAMPLE),
        line=4,
        start_text="30.000",
        end_text="40.000",
    )
    assert first.clip_id == "--PJHxphWEs_30.000"
    assert first.duration_s == 10.0
    assert (last.ytid, last.start_s, last.end_s, last.line) == ("-NNjOlPg0y0", 0.0, 5.0, 45)
    assert last.labels == ("/m/04rlf", "/m/07c52")
    by_id = {s.ytid: s for s in table.segments}
    assert by_id["-275_wTLm-4"].clip_id == "-275_wTLm-4_7.000"
    assert by_id["-275_wTLm-4"].line == 24
    assert len(by_id["-0SdAVK79lg"].labels) == 9
    assert by_id["-0SdAVK79lg"].labels[-1] == "/m/0gg8l"
    assert table.summary_lines() == ["42 segments, 0 rows rejected"]


def test_single_path_is_one_file_not_characters():
    assert len(read_segments(str(SAMPLE)).segments) == 42


@pytest.mark.parametrize("layout", RESAVED)
def test_resaved_layouts_give_the_official_segments(tmp_path, layout):
    official = read_segments([_write(tmp_path / "official.csv", OFFICIAL)])
    resaved = read_segments([_write(tmp_path / f"{layout}.csv", RESAVED[layout])])
    assert _values(official.segments) == EXPECTED
    assert _values(resaved.segments) == EXPECTED
    assert resaved.rejected == []


def test_times_keep_their_spelling_and_lines_count_blank_ones(tmp_path):
    path = _write(tmp_path / "s.csv", RESAVED["blank_lines"].replace("\n", "\r\n"))
    segments = read_segments([path]).segments
    assert [(s.line, s.start_text, s.end_text) for s in segments] == [
        (5, "30.000", "40.000"),
        (6, "50.000", "60.000"),
        (10, "7.000", "17.000"),
    ]
    integer = read_segments([_write(tmp_path / "i.csv", RESAVED["integer_times"])]).segments[0]
    assert (integer.start_text, integer.end_text, integer.line) == ("30", "40", 2)


MALFORMED = (
    "YTID,start_seconds,end_seconds,positive_labels\n"  # 1
    "--PJHxphWEs,30,40,/m/09x0r\n"  # 2 good
    "#NAME?,30,40,/m/09x0r\n"  # 3
    "=+abc,30,40,/m/09x0r\n"  # 4
    "--ZhevVpy1s,,60,/m/012xff\n"  # 5 missing start
    "--ZhevVpy1s,abc,60,/m/012xff\n"  # 6
    "--ZhevVpy1s,nan,60,/m/012xff\n"  # 7
    "--ZhevVpy1s,-5,60,/m/012xff\n"  # 8 negative
    "--aE2O5G5WE,10,10,/m/03fwl\n"  # 9
    "--aE2O5G5WE,20.000,10.000,/m/03fwl\n"  # 10
    "--aO5cdqSAg,30\n"  # 11
    "\n"  # 12
    "--PJHxphWEs,30.000,40.000,/m/other\n"  # 13 same clip as line 2
    "--ZhevVpy1s,50,60,/m/012xff\n"  # 14 good
    "-275_wTLm-4,7,inf,/m/07q6cd_\n"  # 15
    "short_id,1,2\n"  # 16
    "--PJHxphWEs,35,45\n"  # 17 good: same video, another start
    "-275_wTLm-4,7,1" + "0" * 400 + "\n"  # 18: overflows to inf
    f"=HYPERLINK(x),1,2,{'/m/x,' * 30}\n"  # 19
    "-275_wTLm-4,7,17,/m/07q6cd_\n"  # 20 good
)


def test_malformed_rows_are_reported_and_skipped(tmp_path):
    path = _write(tmp_path / "bad.csv", MALFORMED)
    table = read_segments([path])
    assert [(s.ytid, s.start_s, s.line) for s in table.segments] == [
        ("--PJHxphWEs", 30.0, 2),
        ("--ZhevVpy1s", 50.0, 14),
        ("--PJHxphWEs", 35.0, 17),
        ("-275_wTLm-4", 7.0, 20),
    ]
    assert table.segments[0].labels == ("/m/09x0r",)  # the first of the duplicates wins
    assert [(r.line, r.reason) for r in table.rejected] == [
        (3, "bad_id"),
        (4, "bad_id"),
        (5, "bad_time"),
        (6, "bad_time"),
        (7, "bad_time"),
        (8, "bad_time"),
        (9, "end_not_after_start"),
        (10, "end_not_after_start"),
        (11, "too_few_columns"),
        (13, "duplicate"),
        (15, "bad_time"),
        (16, "bad_id"),
        (18, "bad_time"),
        (19, "bad_id"),
    ]
    assert {r.source for r in table.rejected} == {str(path)}
    assert table.rejected[0].text == "#NAME?,30,40,/m/09x0r"
    long_text = table.rejected[-1].text  # the whole line, as rejected_rows.csv lists it
    assert long_text == f"=HYPERLINK(x),1,2,{'/m/x,' * 30}"
    shortened = table.summary_lines(limit=14)[-1].split(": bad_id: ")[1]  # the log's: short
    assert len(shortened) == 80 and shortened.startswith("=HYPERLINK(x),1,2,/m/x,")
    assert shortened.endswith("...")
    assert table.rejected_counts() == {
        "bad_id": 4,
        "bad_time": 6,
        "end_not_after_start": 2,
        "too_few_columns": 1,
        "duplicate": 1,
    }
    assert table.summary_lines(limit=2) == [
        "4 segments, 14 rows rejected",
        "  bad_id: 4",
        "  bad_time: 6",
        "  end_not_after_start: 2",
        "  too_few_columns: 1",
        "  duplicate: 1",
        f"  {path}:3: bad_id: #NAME?,30,40,/m/09x0r",
        f"  {path}:4: bad_id: =+abc,30,40,/m/09x0r",
        "  ... and 12 more",
    ]


def test_spreadsheet_error_as_first_row_is_a_bad_id_not_a_header(tmp_path):
    path = _write(tmp_path / "s.csv", "#NAME?,30,40,/m/a\n--ZhevVpy1s,50,60,/m/b\n")
    table = read_segments([path])
    assert [(r.line, r.reason) for r in table.rejected] == [(1, "bad_id")]
    assert [s.line for s in table.segments] == [2]


def test_concatenated_csvs_read_as_one(tmp_path):
    plain = "YTID,start_seconds,end_seconds,positive_labels\n--aE2O5G5WE,0,10,/m/03fwl\n"
    path = _write(tmp_path / "joined.csv", OFFICIAL + plain + OFFICIAL)
    table = read_segments([path])
    assert [(s.ytid, s.line) for s in table.segments] == [
        ("--PJHxphWEs", 4),
        ("--ZhevVpy1s", 5),
        ("-275_wTLm-4", 6),
        ("--aE2O5G5WE", 8),
    ]
    assert [(r.line, r.reason) for r in table.rejected] == [
        (12, "duplicate"),
        (13, "duplicate"),
        (14, "duplicate"),
    ]


def test_duplicates_across_files_keep_the_first(tmp_path):
    first = _write(tmp_path / "a.csv", OFFICIAL)
    second = _write(
        tmp_path / "b.csv",
        "YTID,start_seconds,end_seconds,positive_labels\n"
        "--aE2O5G5WE,0,10,/m/03fwl\n"
        "--ZhevVpy1s,50,60,/m/other\n",
    )
    table = read_segments([first, second])
    assert [(s.ytid, s.source, s.line) for s in table.segments] == [
        ("--PJHxphWEs", str(first), 4),
        ("--ZhevVpy1s", str(first), 5),
        ("-275_wTLm-4", str(first), 6),
        ("--aE2O5G5WE", str(second), 2),
    ]
    assert table.segments[1].labels == ("/m/012xff",)
    assert [(r.source, r.line, r.reason) for r in table.rejected] == [(str(second), 3, "duplicate")]


# Labels as spreadsheets re-save them: quotes doubled, fields added.
DAMAGED_LABELS = (
    '--PJHxphWEs, 30.000, 40.000, " ""/m/068hy,/m/0jbk"""\n'  # quoted twice over
    '--ZhevVpy1s, 50.000, 60.000, "/m/012xff", i\n'  # a stray field
    '-275_wTLm-4,7,17,"""/m/07q6cd_""", /t/dd00088 ,"Music",/g/122z_qxw,/M/X\n'
    '--aE2O5G5WE,0,10,""\n'  # nothing that could be a label: no labels, nothing dropped
)


def test_labels_are_cleaned_and_what_is_no_label_is_dropped_from_a_used_row(tmp_path):
    path = _write(tmp_path / "resaved.csv", DAMAGED_LABELS)
    table = read_segments([path])
    assert [(s.line, s.labels) for s in table.segments] == [
        (1, ("/m/068hy", "/m/0jbk")),
        (2, ("/m/012xff",)),
        (3, ("/m/07q6cd_", "/t/dd00088", "/g/122z_qxw")),
        (4, ()),
    ]
    assert table.rejected == []
    lines = DAMAGED_LABELS.splitlines()
    assert table.dropped_labels == [
        RejectedRow(str(path), 2, "bad_label", lines[1], "i"),
        RejectedRow(str(path), 3, "bad_label", lines[2], "Music"),
        RejectedRow(str(path), 3, "bad_label", lines[2], "/M/X"),
    ]
    assert table.listed() == table.dropped_labels
    assert table.summary_lines() == [
        "4 segments, 0 rows rejected",
        "  bad_label: 3 dropped, their rows used",
    ]


# The official layout, damaged: a closing quote lost on line 4, and the download cut short
# in the last row (no closing quote, no newline).
UNBALANCED = (
    OFFICIAL.replace('/t/dd00088"', "/t/dd00088")
    + '--aE2O5G5WE, 0.000, 10.000, "/m/03fwl"\n'
    + '--aO5cdqSAg, 30.000, 40.000, "/m/0'
).replace("num_segs=3", "num_segs=5")


def test_an_unbalanced_quote_costs_only_its_own_row(tmp_path):
    path = _write(tmp_path / "unbalanced.csv", UNBALANCED)
    table = read_segments([path])
    assert [(s.ytid, s.line, s.labels) for s in table.segments] == [
        ("--ZhevVpy1s", 5, ("/m/012xff",)),
        ("-275_wTLm-4", 6, ("/m/07q6cd_",)),
        ("--aE2O5G5WE", 7, ("/m/03fwl",)),
    ]
    lines = UNBALANCED.splitlines()
    assert table.rejected == [
        RejectedRow(str(path), 4, "unbalanced_quote", lines[3]),
        RejectedRow(str(path), 8, "unbalanced_quote", '--aO5cdqSAg, 30.000, 40.000, "/m/0'),
    ]
    assert table.warnings == []  # 5 rows promised, 5 read (2 of them rejected)
    assert f"  {path}:4: unbalanced_quote: {lines[3]}" in table.summary_lines()


@pytest.mark.parametrize(
    ("content", "promised_and_read"),
    [
        (OFFICIAL.replace("num_segs=3", "num_segs=22160"), "num_segs=22160 but 3 rows"),
        (OFFICIAL + "--aE2O5G5WE, 30.000, 4", "num_segs=3 but 4 rows"),  # truncated last row
        (OFFICIAL[: OFFICIAL.index("-275")], "num_segs=3 but 2 rows"),  # a truncated download
        (OFFICIAL + "\n" + OFFICIAL, None),  # joined by cat: 6 promised, 6 read
        (PLAIN_ROWS, None),  # no such header
    ],
)
def test_a_header_promising_other_rows_than_read_is_warned_about(
    tmp_path, content, promised_and_read
):
    path = _write(tmp_path / "s.csv", content)
    warnings = read_segments([path]).warnings
    if promised_and_read is None:
        assert warnings == []
    else:
        assert warnings == [
            f"{path}: its header says {promised_and_read} were read (a truncated download?)"
        ]


def test_a_truncated_last_row_is_rejected_and_counted(tmp_path):
    path = _write(tmp_path / "s.csv", OFFICIAL + "--aE2O5G5WE, 30.000, 4")
    table = read_segments([path])
    assert _values(table.segments) == EXPECTED
    assert table.rejected == [
        RejectedRow(str(path), 7, "end_not_after_start", "--aE2O5G5WE, 30.000, 4")
    ]
    assert table.warnings == [
        f"{path}: its header says num_segs=3 but 4 rows were read (a truncated download?)"
    ]


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-16", b""),  # with the byte order mark Python writes
        ("utf-16-le", b"\xff\xfe"),  # Windows' "Unicode text"
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),  # no byte order mark: told by the zero bytes
        ("utf-16-be", b""),
        ("utf-8-sig", b""),
    ],
)
def test_utf16_and_byte_order_marks_are_read(tmp_path, encoding, prefix):
    path = _write(tmp_path / "s.csv", prefix + OFFICIAL.replace("\n", "\r\n").encode(encoding))
    table = read_segments([path])
    assert _values(table.segments) == EXPECTED
    assert table.rejected == [] and table.warnings == []


def test_damaged_utf16_is_refused_with_what_to_do(tmp_path):
    path = _write(tmp_path / "s.csv", OFFICIAL.encode("utf-16")[:-1] + b"\x00\xd8")
    with pytest.raises(AudioSetFormatError) as raised:
        read_segments([path])
    assert str(raised.value).startswith(f"{path}: not UTF-16 text")
    assert str(raised.value).endswith("save it as UTF-8")


def test_the_same_file_given_twice_is_read_once_and_named(tmp_path):
    path = _write(tmp_path / "a.csv", OFFICIAL)
    (tmp_path / "link.csv").symlink_to(path)
    (tmp_path / "sub").mkdir()
    again = [f"{tmp_path}/sub/../a.csv", str(tmp_path / "link.csv")]
    table = read_segments([path, *again])
    assert _values(table.segments) == EXPECTED
    assert table.rejected == []  # not 3 duplicates per copy
    assert table.warnings == [f"{name} is {path} again: read once" for name in again]


def test_listed_rows_follow_the_reading_order_of_files(tmp_path):
    second = _write(tmp_path / "a.csv", "-0SdAVK79lg,0,10,/m/a,i\n=x,0,10\n-0SdAVK79lg,0,10\n")
    first = _write(tmp_path / "b.csv", UNBALANCED)
    table = read_segments([first, second])
    assert [(r.source, r.line, r.reason) for r in table.listed()] == [
        (str(first), 4, "unbalanced_quote"),
        (str(first), 8, "unbalanced_quote"),
        (str(second), 1, "bad_label"),
        (str(second), 2, "bad_id"),
        (str(second), 3, "duplicate"),
    ]


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"", "no data rows"),
        (b"\n\n  \n", "no data rows"),
        (OFFICIAL.split("--PJ")[0].encode(), "no data rows"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03binary", "binary"),
        (b"\xff\xd8\xff\xe0 JFIF, 1, 2\n", "not UTF-8"),
        (b"Dear reader,\nthis is not a list of clips.\n", "neither a header"),
        (b"video_id,start,end,labels\n--PJHxphWEs,30,40,/m/a\n", "neither a header"),
        (b"#NAME?,30,40\n=x,1,2\n", "no row has a YouTube id"),
        (b"--PJHxphWEs\n--ZhevVpy1s\n", "no row has a YouTube id"),
        (b'--PJHxphWEs,30,40,"/m/a\n"--ZhevVpy1s,50,60\n', "line 1: unbalanced_quote"),
    ],
)
def test_files_that_are_not_segment_lists_raise(tmp_path, content, complaint):
    path = _write(tmp_path / "not_segments.csv", content)
    with pytest.raises(AudioSetFormatError) as raised:
        read_segments([_write(tmp_path / "good.csv", OFFICIAL), path])
    message = str(raised.value)
    assert message.startswith(str(path))
    assert complaint in message
    assert "\n" not in message


def test_missing_or_unreadable_files_raise_with_the_path(tmp_path):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(AudioSetFormatError, match="no such file") as raised:
        read_segments([missing])
    assert str(raised.value).startswith(str(missing))
    with pytest.raises(AudioSetFormatError, match="cannot read") as raised:
        read_segments([tmp_path])
    assert str(raised.value).startswith(str(tmp_path))
    assert isinstance(raised.value, ValueError)


# The ontology.


def test_ontology_reads_all_classes_in_index_order():
    names = read_ontology(ONTOLOGY)
    assert len(names) == 527
    mids = list(names)
    assert (mids[0], names[mids[0]]) == ("/m/09x0r", "Speech")
    assert names["/m/05zppz"] == "Male speech, man speaking"
    assert names["/m/07qfr4h"] == "Hubbub, speech noise, speech babble"
    assert mids.index("/m/07qfr4h") == 70
    assert (mids[-1], names[mids[-1]]) == ("/m/07hvw1", "Field recording")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("", "expected a header index,mid,display_name"),
        ("mid,display_name\n/m/09x0r,Speech\n", "expected a header"),
        ("index,mid,display_name\n", "no classes"),
        ("index,mid,display_name\n0,/m/a,A\n2,/m/b,B\n", ":3: expected index 1, got '2'"),
        ("index,mid,display_name\n0,/m/a\n", ":2: expected 3 columns"),
        ("index,mid,display_name\n0,/m/a,Male speech, man\n", ":2: expected 3 columns"),
        ("index,mid,display_name\n0,/m/a,A\n1,/m/a,B\n", ":3: mid /m/a listed twice"),
        ("index,mid,display_name\n0,,A\n", ":2: empty mid"),
    ],
)
def test_malformed_ontology_raises(tmp_path, content, complaint):
    path = _write(tmp_path / "labels.csv", content)
    with pytest.raises(AudioSetFormatError) as raised:
        read_ontology(path)
    assert str(raised.value).startswith(str(path))
    assert complaint in str(raised.value)


def test_audiosets_class_list_ships_as_the_default_ontology():
    assert default_ontology() == read_ontology(ONTOLOGY)


def test_missing_ontology_raises(tmp_path):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(AudioSetFormatError) as raised:
        read_ontology(missing)
    assert str(raised.value) == f"{missing}: no such file"


# Finding clips by name.

MEDIA_FILES = [
    # --PJHxphWEs 30-40: two segment names and the whole video; mp4 is first in line.
    "a/--PJHxphWEs_30.000.mkv",
    "a/deeper/--PJHxphWEs_30.000.mp4",
    "a/--PJHxphWEs.mp4",
    # --ZhevVpy1s 50-60: Y prefix, start_end in integers; the audio file loses to video.
    "b/Y--ZhevVpy1s_50_60.webm",
    "b/--ZhevVpy1s_50.m4a",
    # -275_wTLm-4 7-17: milliseconds, audio only; a yt-dlp whole video wins by having video.
    "c/-275_wTLm-4_7000_17000.wav",
    "c/Cat [not an id] plays piano (2017) [-275_wTLm-4].webm",
    # whole videos only
    "d/-0DLPzsiXXE.MOV",
    "d/Y-0FHUc78Gqo.mkv",
    # segment-only audio
    "e/--aO5cdqSAg_30.flac",
    # 1-decimal pair
    "e/Y--aE2O5G5WE_0.0_10.0.avi",
    # 7.5-17.5: the integer spelling "7" would be another segment
    "f/-24dqQM_rDk_7.mp4",
    "f/-24dqQM_rDk_7.5.ogg",
    # ignored: unfinished downloads, hidden files and directories, other extensions
    "g/--aaILOrkII_200.000.mp4.part",
    "g/--aaILOrkII_200.000.f137.mp4.part-Frag12",
    "g/--aaILOrkII_200.000.temp.mp4",
    "g/--aaILOrkII_200.000.mp4.ytdl",
    "g/--aaILOrkII.tmp123.mkv",
    "g/.--aaILOrkII_200.000.mp4",
    "g/.cache/--aaILOrkII.mp4",
    "g/--aaILOrkII_200.000.json",
    "g/--aaILOrkII_200.000.mp4.tmp",
]
IGNORED = sum(name.startswith("g/") for name in MEDIA_FILES)


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    for name in MEDIA_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    return root


@pytest.mark.parametrize(
    ("ytid", "start", "end", "name", "has_video", "naming"),
    [
        ("--PJHxphWEs", "30.000", "40.000", "a/deeper/--PJHxphWEs_30.000.mp4", True, "ytid_start"),
        ("--ZhevVpy1s", "50.000", "60.000", "b/Y--ZhevVpy1s_50_60.webm", True, "ytid_start_end"),
        (
            "-275_wTLm-4",
            "7.000",
            "17.000",
            "c/Cat [not an id] plays piano (2017) [-275_wTLm-4].webm",
            True,
            "yt-dlp",
        ),
        ("-0DLPzsiXXE", "30.000", "40.000", "d/-0DLPzsiXXE.MOV", True, "ytid"),
        ("-0FHUc78Gqo", "30", "40", "d/Y-0FHUc78Gqo.mkv", True, "ytid"),
        ("--aO5cdqSAg", "30.000", "40.000", "e/--aO5cdqSAg_30.flac", False, "ytid_start"),
        ("--aE2O5G5WE", "0", "10", "e/Y--aE2O5G5WE_0.0_10.0.avi", True, "ytid_start_end"),
        ("-24dqQM_rDk", "7.500", "17.500", "f/-24dqQM_rDk_7.5.ogg", False, "ytid_start"),
        ("-24dqQM_rDk", "7", "17", "f/-24dqQM_rDk_7.mp4", True, "ytid_start"),
    ],
)
def test_find_picks_the_preferred_file(media_dir, ytid, start, end, name, has_video, naming):
    index = index_media(media_dir)
    found = index.find(_segment(ytid, start, end))
    assert found == ClipFile(path=media_dir / name, has_video=has_video, naming=naming)


def test_find_counts_media_and_misses(media_dir):
    index = index_media(media_dir)
    assert len(index) == len(MEDIA_FILES) - IGNORED
    assert index.find(_segment("--aaILOrkII", "200.000", "210.000")) is None
    assert index.find(_segment("--PJHxphWEs", "31.000", "41.000")).naming == "ytid"
    assert index.find(_segment("-5Jlimvsuwo", "90.000", "100.000")) is None


@pytest.mark.parametrize(
    ("file_stem", "start", "end", "naming"),
    [
        ("-275_wTLm-4_7.000", "7.000", "17.000", "ytid_start"),
        ("-275_wTLm-4_7.0", "7.000", "17.000", "ytid_start"),
        ("-275_wTLm-4_7", "7.000", "17.000", "ytid_start"),
        ("Y-275_wTLm-4_7", "7.000", "17.000", "ytid_start"),
        ("-275_wTLm-4_7.00", "7.00", "17.00", "ytid_start"),  # as written in the CSV
        ("-275_wTLm-4_7.000_17.000", "7", "17", "ytid_start_end"),
        ("-275_wTLm-4_7_17", "7.000", "17.000", "ytid_start_end"),
        ("-275_wTLm-4_7000_17000", "7.000", "17.000", "ytid_ms"),
        ("Y-275_wTLm-4_7250_17250", "7.250", "17.250", "ytid_ms"),
        ("-275_wTLm-4", "7.000", "17.000", "ytid"),
        ("Y-275_wTLm-4", "7.000", "17.000", "ytid"),
        ("[-275_wTLm-4]", "7.000", "17.000", "yt-dlp"),
        ("Yes I know [x] [Y0123456789]", "0", "10", "yt-dlp"),
        ("Y0123456789_0", "0", "10", "ytid_start"),  # an id that starts with Y
        ("YY0123456789", "0", "10", "ytid"),
    ],
)
def test_every_naming_scheme(file_stem, start, end, naming):
    ytid = "Y0123456789" if "Y0123456789" in file_stem else "-275_wTLm-4"
    path = f"/media/{file_stem}.mp4"
    found = MediaIndex([path]).find(_segment(ytid, start, end))
    assert found == ClipFile(Path(path), has_video=True, naming=naming)
    # Every name but the whole video's carries the segment's start: the file is the cut.
    assert names_segment_start(path, _segment(ytid, start, end)) == (
        naming not in {"ytid", "yt-dlp"}
    )


@pytest.mark.parametrize(
    ("file_stem", "start", "end"),
    [
        ("-275_wTLm-4_7", "7.500", "17.500"),  # 7 is not 7.5
        ("-275_wTLm-4_7.000_17", "7.000", "17.000"),  # mixed spellings
        ("-275_wTLm-4_7.0_18.0", "7.000", "17.000"),
        ("-275_wTLm-4_7_17_extra", "7.000", "17.000"),
        ("-275_wTLm-4.x", "7.000", "17.000"),
        ("-275_wTLm-4 [-275_wTLm-4] copy", "7.000", "17.000"),
        ("X-275_wTLm-4_7", "7.000", "17.000"),
        ("-275_wTLm-", "7.000", "17.000"),
    ],
)
def test_names_of_other_segments_do_not_match(file_stem, start, end):
    index = MediaIndex([f"/media/{file_stem}.mp4"])
    assert index.find(_segment("-275_wTLm-4", start, end)) is None
    assert not names_segment_start(f"/media/{file_stem}.mp4", _segment("-275_wTLm-4", start, end))


def test_index_follows_directory_links_once(tmp_path, media_dir):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "-5Jlimvsuwo_90.000.mp4").touch()
    os.symlink(elsewhere, media_dir / "linked")
    os.symlink(media_dir, media_dir / "a" / "loop")
    index = index_media(media_dir)
    assert len(index) == len(MEDIA_FILES) - IGNORED + 1
    found = index.find(_segment("-5Jlimvsuwo", "90.000", "100.000"))
    assert found is not None and found.path == media_dir / "linked" / "-5Jlimvsuwo_90.000.mp4"


def test_index_media_needs_a_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as raised:
        index_media(missing)
    assert str(raised.value) == f"{missing}: media directory not found"
    clip = _write(tmp_path / "clip.mp4", b"")
    with pytest.raises(NotADirectoryError) as raised:
        index_media(clip)
    assert str(raised.value).startswith(f"{clip}: not a directory")


# Where the segment lies in a file.


@pytest.mark.parametrize(
    ("duration_s", "span"),
    [
        (10.0, (0.0, 10.0)),  # the segment itself
        (10.9, (0.0, 10.9)),  # cut a little long, within tolerance
        (8.0, (0.0, 8.0)),  # cut short: the caller judges whether that is enough
        (300.0, (30.0, 40.0)),  # the whole video
        (35.0, (30.0, 35.0)),  # a whole video that ends inside the segment
        # Shorter than the segment's start, so not the whole video: a long cut, read for
        # the segment's length and the tolerance.
        (20.0, (0.0, 11.0)),
        (29.9, (0.0, 11.0)),
    ],
)
def test_segment_span(duration_s, span):
    assert segment_span(duration_s, _segment("--PJHxphWEs", "30.000", "40.000")) == span


def test_segment_span_tolerance():
    segment = _segment("--PJHxphWEs", "0.000", "10.000")
    assert segment_span(10.9, segment, tolerance_s=0.5) == (0.0, 10.0)  # the whole video
    assert segment_span(12.0, segment, tolerance_s=2.0) == (0.0, 12.0)  # the segment


@pytest.mark.parametrize(
    ("duration_s", "span"),
    [
        (9.1, (0.0, 9.0)),  # cut 1.1 s long: the segment and the 1 s tolerance
        (8.5, (0.0, 8.5)),
        (40.0, (0.0, 9.0)),  # longer than the segment's end, and still the cut
        (6.0, (0.0, 6.0)),  # cut short: the caller judges whether that is enough
    ],
)
def test_a_file_named_for_the_segment_start_is_the_cut_whatever_its_length(duration_s, span):
    segment = _segment("--PJHxphWEs", "16.000", "24.000")
    assert segment_span(duration_s, segment, named_cut=True) == span
