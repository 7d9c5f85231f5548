"""Writing files so that nothing is ever half-written under its final name.

Every file a command produces is written under a hidden temporary name in the same directory
(so the rename is atomic) and renamed when complete; a run killed at any moment leaves the old
file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """``text`` (UTF-8) to ``path`` through a temporary file."""
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def write_bytes_atomically(path: str | os.PathLike, content: bytes) -> None:
    """``content`` to ``path`` through a temporary file."""
    write_atomically(path, lambda f: f.write(content))
