"""The parity scripts (tests/*_parity.py): each trains the same thing on one device and
mirrored over two logical CPUs in a fresh process (the logical devices must be made before
TensorFlow starts, which this test process has done) and prints the results as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_parity_script(name: str, *args: Path | str) -> dict:
    """The JSON the script tests/``name`` prints last."""
    script = Path(__file__).with_name(name)
    out = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
