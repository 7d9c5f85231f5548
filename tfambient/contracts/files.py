"""The one way tfambient writes a file: whole, or not at all.

Every file is written under a hidden temporary name in its final directory (so the rename
is atomic), flushed to the disk, renamed, and the directory entry flushed too; a run killed
(or a machine that loses power) at any moment leaves the old file or the new one, never a
torn one. (tfrecords_tools, a separate library, commits its shards the same way.)
A path on another filesystem (:func:`is_url`) is written through Apache Beam's FileSystems.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

PARTIAL_SUFFIX = ".partial"


def is_url(path: str | os.PathLike | None) -> bool:
    """A path on a filesystem other than this machine's (``scheme://...``: gs://, s3://,
    hdfs://), which only --engine=beam reads and writes."""
    return bool(path) and "://" in str(path)


def temporary_path(path: str | os.PathLike) -> Path:
    """A fresh hidden name beside ``path`` that keeps its extension (writers such as FFmpeg
    and Keras pick their format by it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}{path.suffix}")


def temporary_name(path: str) -> str:
    """temporary_path for a file named as text on any filesystem (``gs://bucket/d/x.csv``,
    which pathlib would fold to ``gs:/``): the same hidden name, in the same directory."""
    directory, slash, name = str(path).rpartition("/")
    return f"{directory}{slash}{temporary_path(name).name}"


def is_partial(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary a killed writer left behind."""
    name = Path(path).name
    return name.startswith(".") and f"{PARTIAL_SUFFIX}" in name


def fsync(path: str | os.PathLike) -> None:
    """Flush a file's data (or a directory's entries) from the OS cache to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to, by any means (a library's save,
    an encoder); on a clean exit it is flushed and renamed to ``path``, on an exception
    deleted."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync(path.parent)


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on an open temporary file beside ``path``, then commit it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def write_bytes(path: str | os.PathLike, content: bytes) -> None:
    write_atomically(path, lambda f: f.write(content))


def write_text(path: str | os.PathLike, text: str) -> None:
    """``text`` as UTF-8."""
    write_bytes(path, text.encode("utf-8"))


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """A UTF-8 CSV with a header row; ``rows`` map column names to values."""

    def write(binary: IO[bytes]) -> None:
        with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
            out = csv.DictWriter(text, columns)
            out.writeheader()
            out.writerows(rows)

    write_atomically(path, write)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Indented JSON, one trailing newline; readers and reruns see all of it or none."""
    write_text(path, json.dumps(data, indent=1) + "\n")
