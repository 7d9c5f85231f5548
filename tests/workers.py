"""Two worker processes of a MultiWorkerMirroredStrategy on 127.0.0.1, for the tests of
training on several hosts: each runs a script (multiworker.py, probe_multiworker.py) with
the test's arguments, then its index and both workers' ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def join_cluster(argv: list[str]) -> list[str]:
    """In a worker script: set TF_CONFIG (before TensorFlow starts) from the worker's index
    and the ports that end ``argv`` (as run_two_workers passes them); returns the script's
    own arguments."""
    *own, index, first, second = argv
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in (first, second)]},
            "task": {"type": "worker", "index": int(index)},
        }
    )
    return own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_workers(script: Path, *args: str, timeout: int = 600) -> list[tuple[str, str]]:
    """Each worker's (stdout, stderr), once both have exited 0 (else the assertion names the
    worker's error)."""
    ports = [str(free_port()), str(free_port())]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), *args, str(i), *ports],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=timeout) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    return outputs
