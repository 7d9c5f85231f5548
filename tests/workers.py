"""Worker processes of one MultiWorkerMirroredStrategy on 127.0.0.1, through the installed
commands: each its own TF_CONFIG index, as the docs start them on several hosts."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
WORKER_TIMEOUT_S = 600


def free_ports(count: int) -> list[int]:
    """``count`` different ports that are free now, below the kernel's ephemeral range: a
    port the kernel handed out for a moment could be given to an outgoing connection (of
    any process) before the worker binds it."""
    lowest_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports: list[int] = []
    # Unseeded: test runs side by side on one machine must not pick the same ports.
    for port in random.Random().sample(range(10_000, lowest_ephemeral), 200):
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("", port))
            ports.append(port)
        if len(ports) == count:
            return ports
    raise AssertionError(f"no {count} free ports below {lowest_ephemeral}")


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def command_env(tf_config_text: str) -> dict[str, str]:
    # Both workers share this host: no GPU (TensorFlow would give the first all its memory).
    return os.environ | {"TF_CONFIG": tf_config_text, "CUDA_VISIBLE_DEVICES": ""}


def run_command(name: str, *args: str, tf_config_text: str, timeout: float = 300):
    return subprocess.run(
        [str(BIN / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=command_env(tf_config_text),
    )


def run_workers(name: str, args_of_worker) -> list[subprocess.CompletedProcess]:
    """The command ``name`` as workers 0 and 1 of one cluster, at once; ``args_of_worker(i)``
    gives worker i's flags."""
    ports = free_ports(2)
    commands = [[str(BIN / name), *args_of_worker(i)] for i in range(2)]
    workers = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=command_env(tf_config(ports, i)),
        )
        for i, command in enumerate(commands)
    ]
    try:
        outputs = [worker.communicate(timeout=WORKER_TIMEOUT_S) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    return [
        subprocess.CompletedProcess(command, worker.returncode, out, err)
        for command, worker, (out, err) in zip(commands, workers, outputs, strict=True)
    ]
