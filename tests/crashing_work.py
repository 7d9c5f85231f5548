"""Extraction work that kills its worker process on one file, as a decoder crash would."""

from __future__ import annotations

import os

from tfambient import extract


def extract_or_die(jobs, settings):
    if any("crash" in os.path.basename(path) for _, path in jobs):
        os._exit(1)
    return extract.extract_clips(jobs, settings)
