"""What the download tests need of the world, made locally: video files served over HTTP on
127.0.0.1 (no internet), and PATHs with no ffmpeg, or a wrong one, on them."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from RangeHTTPServer import RangeRequestHandler

FFMPEG_NAMES = ("ffmpeg", "ffprobe")


class _Handler(RangeRequestHandler):
    """Serves files, answering Range requests as YouTube does (ffmpeg seeks to cut a
    section), after answering each path with the statuses queued in
    ``server.failures[path]``; records every requested path in ``server.requests``."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        self.server.requests.append(self.path)
        queued = self.server.failures.get(self.path.split("?")[0])
        if queued:
            self.send_error(queued.pop(0))
            return None
        return super().send_head()


@dataclass
class Server:
    http: ThreadingHTTPServer
    root: Path

    @property
    def template(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host}:{port}/{{ytid}}.mp4"

    @property
    def requests(self) -> list[str]:
        return self.http.requests

    def fail(self, ytid: str, *statuses: int) -> None:
        self.http.failures[f"/{ytid}.mp4"] = list(statuses)


@contextmanager
def serve(root: Path) -> Iterator[Server]:
    """Serve the files in ``root`` as ``{template}`` URLs until the block ends."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    http.requests, http.failures = [], {}
    thread = threading.Thread(target=http.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield Server(http, root)
    finally:
        http.shutdown()
        http.server_close()
        thread.join()


def path_without_ffmpeg() -> str:
    """This machine's PATH less every directory that holds an ffmpeg or ffprobe."""
    return os.pathsep.join(
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and not any(shutil.which(name, path=folder) for name in FFMPEG_NAMES)
    )


def failing_ffmpeg_dir(root: Path) -> Path:
    """A folder whose ffmpeg and ffprobe append their arguments to ``calls.log`` and fail:
    a download that ran either would fail, and the log would say so."""
    folder = root / "wrong-ffmpeg"
    folder.mkdir()
    for name in FFMPEG_NAMES:
        script = folder / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{folder}/calls.log"\nexit 1\n')
        script.chmod(0o755)
    return folder


def download_env(*first_on_path: Path) -> dict[str, str]:
    """This process's environment with ``first_on_path`` and then the PATH without its
    ffmpeg, and no IMAGEIO_FFMPEG_EXE: only the ffmpeg the code chooses can be found."""
    env = {key: value for key, value in os.environ.items() if key != "IMAGEIO_FFMPEG_EXE"}
    env["PATH"] = os.pathsep.join([*map(str, first_on_path), path_without_ffmpeg()])
    return env
