"""Writing TFRecord shards so that nothing half-written ever carries a final name.

Every file is written under a temporary name in its final directory, flushed to disk and
renamed with os.replace only once complete. A run killed at any moment therefore leaves
complete files and temporaries, never a truncated file under a final name; the
temporaries (recognised by is_temporary) are swept by remove_temporaries.

Shards are assigned by a keyed hash (BLAKE2b) rather than Python's hash(), which is
salted per process: the same key lands in the same shard on every run and machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

_TEMPORARY = re.compile(r"\.tmp-\d+-[0-9a-f]{8}$")


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """A fresh name beside `path` (same filesystem, so the final rename is atomic)."""
    return Path(f"{os.fspath(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is named like a temporary_name, i.e. a file not yet committed."""
    return bool(_TEMPORARY.search(Path(path).name))


def remove_temporaries(directory: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Delete the temporaries that killed runs left behind; returns what was removed.

    Only call this when no writer is running on `directory`: a live writer's temporary
    looks exactly like a dead one's.
    """
    directory = Path(directory)
    candidates = directory.rglob("*.tmp-*") if recursive else directory.glob("*.tmp-*")
    removed = sorted(path for path in candidates if is_temporary(path) and path.is_file())
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') data from the OS cache to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a small file (a manifest, a commit marker) so that it appears complete or not
    at all: a temporary name, fsync, rename, fsync of the directory."""
    path = Path(path)
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


class _CommitOnSuccess:
    """As a context manager: commit() on a clean exit, abort() on an exception."""

    def commit(self) -> object:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class AtomicRecordWriter(_CommitOnSuccess):
    """A TFRecord file that appears under its final name only once completely written.

    As a context manager: a clean exit commits (flush, fsync, rename); an exception
    deletes the temporary and leaves any existing file at `path` untouched. Without
    `with`, call commit() or abort(); dropping the writer leaves only a temporary.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = temporary_name(self.path)
        self.count = 0
        import tensorflow as tf  # here: the hashing below serves processes without it

        self._writer = tf.io.TFRecordWriter(str(self.temporary))

    def write(self, serialized: bytes) -> None:
        self._writer.write(serialized)
        self.count += 1

    def commit(self) -> Path:
        """Make the complete file durable and give it its final name."""
        self._seal()
        self._publish()
        _fsync(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary; the final name is never touched."""
        self._writer.close()
        self.temporary.unlink(missing_ok=True)

    def _seal(self) -> None:
        self._writer.close()
        _fsync(self.temporary)

    def _publish(self) -> None:
        os.replace(self.temporary, self.path)


def shard_name(prefix: str, index: int, num_shards: int) -> str:
    """The conventional shard file name, e.g. train-00003-of-00064.tfrecord."""
    if not 0 <= index < num_shards:
        raise ValueError(f"shard {index} is not in [0, {num_shards})")
    return f"{prefix}-{index:05d}-of-{num_shards:05d}.tfrecord"


class ShardedRecordWriter(_CommitOnSuccess):
    """`num_shards` AtomicRecordWriters named shard_name(prefix, i, num_shards) in `directory`.

    All shards, including empty ones (valid 0-record files), are committed together on
    a clean exit and none on an exception. Every shard is written and fsynced before the
    first rename, so only a kill during the renames themselves can leave a partial set
    (complete files plus temporaries): publish a manifest after this writer exits if
    readers must tell a finished dataset from an interrupted one. Each shard holds one
    open file, so `num_shards` must stay below the open-files limit (ulimit -n).
    """

    def __init__(self, directory: str | os.PathLike[str], prefix: str, num_shards: int) -> None:
        if num_shards < 1:
            raise ValueError(f"num_shards must be at least 1, not {num_shards}")
        self.directory = Path(directory)
        self._shards: list[AtomicRecordWriter] = []
        try:
            for index in range(num_shards):
                name = shard_name(prefix, index, num_shards)
                self._shards.append(AtomicRecordWriter(self.directory / name))
        except BaseException:
            self.abort()
            raise

    @property
    def counts(self) -> list[int]:
        return [shard.count for shard in self._shards]

    @property
    def paths(self) -> list[Path]:
        """The final names, which exist only after commit."""
        return [shard.path for shard in self._shards]

    def write(self, shard: int, serialized: bytes) -> None:
        if not 0 <= shard < len(self._shards):
            raise IndexError(f"shard {shard} is not in [0, {len(self._shards)})")
        self._shards[shard].write(serialized)

    def commit(self) -> list[Path]:
        """Seal every shard (aborting all if any fails), then rename them all."""
        try:
            for shard in self._shards:
                shard._seal()
        except BaseException:
            self.abort()
            raise
        for shard in self._shards:
            shard._publish()
        _fsync(self.directory)
        return self.paths

    def abort(self) -> None:
        for shard in self._shards:
            shard.abort()


def _digest(key: str | bytes, salt: str, purpose: bytes) -> int:
    """64 bits of BLAKE2b over the salt (length-prefixed, so no two pairs collide) and key."""
    data = key.encode("utf-8") if isinstance(key, str) else key
    salt_bytes = salt.encode("utf-8")
    hasher = hashlib.blake2b(digest_size=8, person=purpose)
    hasher.update(len(salt_bytes).to_bytes(8, "little"))
    hasher.update(salt_bytes)
    hasher.update(data)
    return int.from_bytes(hasher.digest(), "little")


def shard_index(key: str | bytes, num_shards: int, salt: str = "") -> int:
    """The shard in [0, num_shards) for `key`, the same in every process and on every machine."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, not {num_shards}")
    return _digest(key, salt, b"shard_index") % num_shards


def unit_hash(key: str | bytes, salt: str = "") -> float:
    """A stable number in [0, 1), uniform over keys: `unit_hash(k) < 0.1` picks a 10 % split.

    Hashed apart from shard_index, so a split drawn with it is independent of the shards.
    """
    return (_digest(key, salt, b"unit_hash") >> 11) / 2.0**53


def shard_indices(keys: Iterable[str | bytes], num_shards: int, salt: str = "") -> np.ndarray:
    """shard_index of each key, as an int64 array."""
    return np.fromiter((shard_index(k, num_shards, salt) for k in keys), dtype=np.int64)


def unit_hashes(keys: Iterable[str | bytes], salt: str = "") -> np.ndarray:
    """unit_hash of each key, as a float64 array."""
    return np.fromiter((unit_hash(k, salt) for k in keys), dtype=np.float64)
