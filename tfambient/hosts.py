"""The hosts of a multi-worker run: TF_CONFIG read and checked, and the other workers met.

MultiWorkerMirroredStrategy reads TF_CONFIG itself, but a mistake in it (not JSON, an index
out of range, a port already taken) ends in a traceback, and a worker whose peers never come
waits without end. Here each mistake is one sentence, and a worker waits a bounded time for the
others, naming the addresses that did not answer. No TensorFlow: all this happens before it
starts. tfambient runs one job, "worker"; worker 0 is the chief.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

EXAMPLE = (
    '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)
POLL_S = 0.5  # between two rounds of knocking on the peers' ports


@dataclass(frozen=True)
class Cluster:
    """The workers' addresses ("host:port"), in TF_CONFIG's order, and this one's index."""

    workers: tuple[str, ...]
    index: int

    @property
    def address(self) -> str:
        return self.workers[self.index]

    def peers(self) -> dict[int, str]:
        """The other workers' addresses, by index."""
        return {i: address for i, address in enumerate(self.workers) if i != self.index}


def cluster_to_join(strategy: str, tf_config: str | None) -> Cluster | None:
    """The cluster a run under --strategy=``strategy`` joins: TF_CONFIG's, when the strategy
    is multiworker, or auto and TF_CONFIG names several workers; else None."""
    if strategy not in ("auto", "multiworker"):
        return None
    cluster = read_tf_config(tf_config)
    if strategy == "auto" and cluster and len(cluster.workers) < 2:
        return None
    return cluster


def read_tf_config(text: str | None) -> Cluster | None:
    """The cluster TF_CONFIG describes; None when it is unset or empty (a one-host run)."""
    if not text or not text.strip():
        return None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}); it looks like {EXAMPLE}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object like {EXAMPLE}")
    workers = _workers(spec.get("cluster"))
    index = _task_index(spec.get("task"), len(workers))
    return Cluster(workers, index)


def _workers(cluster) -> tuple[str, ...]:
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(f'TF_CONFIG names no "cluster"; it looks like {EXAMPLE}')
    others = sorted(set(cluster) - {"worker"})
    if others:
        raise ValueError(
            f"TF_CONFIG's cluster has job(s) {', '.join(others)}: tfambient runs one job, "
            f'"worker" (worker 0 is the chief), as in {EXAMPLE}'
        )
    workers = cluster.get("worker")
    if not isinstance(workers, list) or not workers:
        raise ValueError(f"TF_CONFIG's cluster must list the workers' addresses, as in {EXAMPLE}")
    for address in workers:
        _host_port(address)
    if len(set(workers)) < len(workers):
        raise ValueError(f"TF_CONFIG names a worker address twice: {', '.join(workers)}")
    return tuple(workers)


def _task_index(task, num_workers: int) -> int:
    if not isinstance(task, dict):
        raise ValueError(f'TF_CONFIG has no "task" saying which worker this is, as in {EXAMPLE}')
    if task.get("type") != "worker":
        raise ValueError(f'TF_CONFIG\'s task type must be "worker", got {task.get("type")!r}')
    index = task.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < num_workers:
        raise ValueError(
            f"TF_CONFIG's task index must be 0 to {num_workers - 1} "
            f"(the cluster names {num_workers} workers), got {index!r}"
        )
    return index


def _host_port(address) -> tuple[str, int]:
    """("host", port) of "host:port" (or "[v6]:port")."""
    host, _, port = str(address).rpartition(":")
    if not isinstance(address, str) or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"TF_CONFIG's worker address {address!r} is not host:port")
    return host.strip("[]"), int(port)


@contextlib.contextmanager
def listening(cluster: Cluster | None) -> Iterator[None]:
    """Hold this worker's port while the others look for it (they find it open whether or
    not TensorFlow's server has started), and fail now if another program has it."""
    if cluster is None:
        yield
        return
    _, port = _host_port(cluster.address)
    try:
        server = socket.create_server(("", port))
    except OSError as error:
        raise ValueError(
            f"port {port} of this worker ({cluster.address}, index {cluster.index} of "
            f"TF_CONFIG) is not free on this host: {error.strerror or error}; is another run "
            f"using it, or is the task index wrong?"
        ) from None
    with server:
        yield


def wait_for_peers(cluster: Cluster | None, timeout_s: float) -> None:
    """Return when every other worker's port answers; fail after ``timeout_s`` naming the
    addresses that never did (and why the last knock failed)."""
    waiting = cluster.peers() if cluster else {}
    if not waiting:
        return
    logger.info(
        "worker %d of %d: waiting up to %g s for %s",
        cluster.index,
        len(cluster.workers),
        timeout_s,
        ", ".join(waiting.values()),
    )
    deadline = time.monotonic() + timeout_s
    while True:
        why = {i: _knock(address) for i, address in waiting.items()}
        waiting = {i: waiting[i] for i, reason in why.items() if reason}
        if not waiting:
            return
        if time.monotonic() >= deadline:
            missing = "; ".join(f"worker {i} at {a} ({why[i]})" for i, a in waiting.items())
            raise TimeoutError(
                f"worker {cluster.index} of {len(cluster.workers)}: no answer within "
                f"{timeout_s:g} s from {missing}: start the same command there with its "
                f"TF_CONFIG index, or raise --cluster_timeout"
            )
        time.sleep(POLL_S)


def _knock(address: str) -> str:
    """'' when something listens at ``address``, else why not."""
    try:
        with socket.create_connection(_host_port(address), timeout=1.0):
            return ""
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__
