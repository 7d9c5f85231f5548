"""The hosts of a multi-worker run: TF_CONFIG read and checked, and the other workers met.

MultiWorkerMirroredStrategy reads TF_CONFIG itself, but a mistake in it (not JSON, an index
out of range, a port already taken) ends in a traceback, and a worker whose peers never come,
or whose TF_CONFIG differs from theirs, waits without end and without a word. Here each
mistake is one sentence, and a worker meets the others (:class:`Meeting`) within a bounded
time or names those it could not meet, and why. No TensorFlow: all this happens before it
starts. tfambient runs one job, "worker"; worker 0 is the chief.

The addresses of a tf.data service (tfambient.data_service) are checked here too, for the
same reasons: before TensorFlow, and one sentence instead of a wait without end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading
import time
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
        host_port(address)
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


def host_port(address, what: str = "TF_CONFIG's worker address") -> tuple[str, int]:
    """("host", port) of "host:port" (or "[v6]:port"); a ValueError naming ``what`` if not."""
    host, _, port = str(address).rpartition(":")
    if not isinstance(address, str) or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{what} {address!r} is not host:port")
    return host.strip("[]"), int(port)


DATA_SERVICE_PROTOCOL = "grpc"


def data_service_address(service: str) -> tuple[str, int]:
    """(host, port) of --data_service=grpc://HOST:PORT (a tf.data service dispatcher)."""
    prefix = f"{DATA_SERVICE_PROTOCOL}://"
    if service.startswith(prefix):
        with contextlib.suppress(ValueError):
            return host_port(service.removeprefix(prefix))
    raise ValueError(f"--data_service must look like {prefix}HOST:PORT, got {service!r}")


def check_dispatcher(address: tuple[str, int], timeout_s: float = 10.0) -> None:
    """Fail now, with the reason, if no tf.data service dispatcher can be at ``address``
    (nothing accepts a connection there): its clients and workers would retry without end."""
    try:
        with socket.create_connection(address, timeout=timeout_s):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        host, port = address
        message = f"cannot reach the tf.data service dispatcher at {host}:{port}: {reason}"
        raise ValueError(message) from None


class Meeting:
    """This worker's side of meeting the others before TensorFlow starts.

    Each worker holds its port (failing now if another program has it) and, while it waits,
    answers every knock there with who it is; it knocks on the others' ports in turn. A
    knock says "tfambient-worker/1 KEY INDEX" (KEY: a digest of TF_CONFIG's worker list),
    the answer says the same of the worker knocked on, and the knocker acknowledges an
    answer it accepts. A worker goes on when it has accepted every other worker and every
    other has accepted it: only then can it hand its port to TensorFlow, and a worker list
    or an index that differs between hosts, or another program on a port, is named instead
    of TensorFlow waiting forever for a worker that will never join.
    """

    def __init__(self, cluster: Cluster | None):
        self.cluster, self.server = cluster, None
        self.met: set[int] = set()  # the workers that accepted this one
        self.heard: dict[int, str] = {}  # what is wrong with a worker that answered wrongly
        self.stop = threading.Event()
        self.answering = threading.Thread(target=self._answer, daemon=True)
        if cluster is None:
            return
        _, port = host_port(cluster.address)
        try:
            self.server = socket.create_server(("", port))
        except OSError as error:
            raise ValueError(
                f"port {port} of this worker ({cluster.address}, index {cluster.index} of "
                f"TF_CONFIG) is not free on this host: {error.strerror or error}; is another "
                f"run using it, or is the task index wrong?"
            ) from None
        self.greeting = f"{PROTOCOL} {_key(cluster.workers)} {cluster.index}\n".encode()
        if len(cluster.workers) > 1:
            self.answering.start()  # at once: the others may be knocking already

    def __enter__(self) -> Meeting:
        return self

    def __exit__(self, *exc) -> None:
        """Free the port for TensorFlow's server (the answering thread stops first: a socket
        still in its accept() would keep the port)."""
        self.stop.set()
        if self.answering.is_alive():
            self.answering.join()
        if self.server:
            self.server.close()

    def wait(self, timeout_s: float) -> None:
        """Return when this worker and every other have accepted each other; fail after
        ``timeout_s`` naming the workers that did not, and why."""
        cluster = self.cluster
        if cluster is None or len(cluster.workers) < 2:
            return
        peers = cluster.peers()
        logger.info(
            "worker %d of %d: waiting up to %g s for %s",
            cluster.index,
            len(cluster.workers),
            timeout_s,
            ", ".join(peers.values()),
        )
        deadline = time.monotonic() + timeout_s
        accepted: set[int] = set()
        while True:
            why = {i: self._knock(i) for i in peers if i not in accepted}
            accepted |= {i for i, reason in why.items() if not reason}
            if accepted == set(peers) and self.met >= accepted:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(self._missing(timeout_s, why))
            time.sleep(POLL_S)

    def _missing(self, timeout_s: float, why: dict[int, str]) -> str:
        cluster = self.cluster
        unanswered = {i: reason for i, reason in why.items() if reason}
        problems = [f"worker {i} at {cluster.workers[i]} ({why[i]})" for i in unanswered]
        problems += [
            f"worker {i} at {cluster.workers[i]} (it answers, but has not reached this worker "
            f"at {cluster.address}: does its TF_CONFIG give this address?)"
            for i in sorted(set(cluster.peers()) - self.met - set(unanswered))
        ]
        return (
            f"worker {cluster.index} of {len(cluster.workers)}: after {timeout_s:g} s, still "
            f"waiting for {'; '.join(problems)}: start the same command there with the same "
            f"TF_CONFIG and its own index, or raise --cluster_timeout"
        )

    def _knock(self, index: int) -> str:
        """'' when worker ``index`` answers as itself, with our worker list; else why not."""
        try:
            connection = socket.create_connection(
                host_port(self.cluster.workers[index]), timeout=2.0
            )
        except OSError as error:  # gone, perhaps: what it said while it answered, if anything
            return self.heard.get(index) or error.strerror or str(error) or type(error).__name__
        with connection:
            try:
                connection.settimeout(READ_TIMEOUT_S)
                connection.sendall(self.greeting)
                line = connection.makefile("rb").readline(MAX_LINE)
            except OSError:
                line = b""
            if not line:  # silent, or closing: what it said before, if it said anything
                return self.heard.get(index, NOT_A_WORKER)
            problem = _mismatch(_identity(line), _key(self.cluster.workers), index)
            if problem:  # kept: it may stop answering (its own wait over) before we give up
                self.heard[index] = problem
                return problem
            with contextlib.suppress(OSError):
                connection.sendall(b"ok\n")  # lost, the other side asks again
            return ""

    def _answer(self) -> None:
        """Tell whoever knocks who this worker is; note the workers that accept it."""
        self.server.settimeout(POLL_S)
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:  # a timeout, or the server closed
                continue
            with connection:
                try:
                    connection.settimeout(READ_TIMEOUT_S)
                    lines = connection.makefile("rb")
                    knock = _identity(lines.readline(MAX_LINE))
                    connection.sendall(self.greeting)
                    if knock and lines.readline(MAX_LINE) == b"ok\n":
                        self.met.add(knock[1])
                except OSError:
                    continue


PROTOCOL = "tfambient-worker/1"
NOT_A_WORKER = "something listens there, but does not answer as a tfambient worker"
READ_TIMEOUT_S = 5.0
MAX_LINE = 200


def _key(workers: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(list(workers)).encode()).hexdigest()[:16]


def _identity(line: bytes) -> tuple[str, int] | None:
    """(key, index) of a knock or an answer; None when it is something else."""
    parts = line.decode(errors="replace").split()
    if len(parts) == 3 and parts[0] == PROTOCOL and parts[2].isdigit():
        return parts[1], int(parts[2])
    return None


def _mismatch(answer: tuple[str, int] | None, key: str, index: int) -> str:
    if answer is None:
        return NOT_A_WORKER
    if answer[0] != key:
        return "a tfambient worker whose TF_CONFIG lists other workers"
    if answer[1] != index:
        return f"it is worker {answer[1]} in its TF_CONFIG, not {index}: check its task index"
    return ""
