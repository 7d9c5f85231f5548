"""A Beam FileSystem for tests: ``tfambient-test://PATH`` is the file PATH under the
directory $TFAMBIENT_TEST_FS_ROOT. Code that reaches a file other than through Beam's
FileSystems (open(), pathlib, tf.data, PyAV) cannot open these URLs, as it could not open
gs:// ones. Registered by importing this module: the Beam option beam_plugins=beam_test_fs
(with this directory on PYTHONPATH) does so on the launcher and every worker."""

from __future__ import annotations

import os

from apache_beam.io.filesystem import CompressionTypes, FileMetadata, FileSystem
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "tfambient-test"
PREFIX = f"{SCHEME}://"
ROOT_VARIABLE = "TFAMBIENT_TEST_FS_ROOT"


def url(relative: str) -> str:
    return PREFIX + relative


class RootedFileSystem(FileSystem):
    def __init__(self, pipeline_options):
        super().__init__(pipeline_options)
        self._disk = LocalFileSystem(pipeline_options)
        self._root = os.environ[ROOT_VARIABLE]

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def _local(self, path: str) -> str:
        if not path.startswith(PREFIX):
            raise ValueError(f"{path} is not a {SCHEME} URL")
        return os.path.join(self._root, path[len(PREFIX) :])

    def _url(self, local: str) -> str:
        return PREFIX + os.path.relpath(local, self._root)

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def has_dirs(self):
        return True

    def mkdirs(self, path):
        self._disk.mkdirs(self._local(path))

    def _list(self, dir_or_prefix):
        for found in self._disk._list(self._local(dir_or_prefix)):
            yield FileMetadata(
                self._url(found.path), found.size_in_bytes, found.last_updated_in_seconds
            )

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        compression = compression_type or CompressionTypes.AUTO
        return self._disk.create(self._local(path), mime_type, compression)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        compression = compression_type or CompressionTypes.AUTO
        return self._disk.open(self._local(path), mime_type, compression)

    def copy(self, source_file_names, destination_file_names):
        self._disk.copy(
            [self._local(p) for p in source_file_names],
            [self._local(p) for p in destination_file_names],
        )

    def rename(self, source_file_names, destination_file_names):
        self._disk.rename(
            [self._local(p) for p in source_file_names],
            [self._local(p) for p in destination_file_names],
        )

    def exists(self, path):
        return self._disk.exists(self._local(path))

    def size(self, path):
        return self._disk.size(self._local(path))

    def last_updated(self, path):
        return self._disk.last_updated(self._local(path))

    def checksum(self, path):
        return self._disk.checksum(self._local(path))

    def metadata(self, path):
        found = self._disk.metadata(self._local(path))
        return FileMetadata(path, found.size_in_bytes, found.last_updated_in_seconds)

    def delete(self, paths):
        self._disk.delete([self._local(p) for p in paths])
