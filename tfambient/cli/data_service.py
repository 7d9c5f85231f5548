"""tfambient-data-service: run a tf.data service dispatcher or worker for tfambient-train.

  tfambient-data-service --role=dispatcher --port=5050
  tfambient-data-service --role=worker --port=5051 --dispatcher_address=HOST:5050
  tfambient-train ... --data_service=grpc://HOST:5050

One dispatcher per training job; one worker per host with spare CPU cores (a worker runs
the pipeline in parallel on all of its host's cores). Workers read the shards at the paths
the trainer names, so they need the same file system (or gs:// URLs). Each process serves
until it is stopped (Ctrl-C, SIGTERM). See docs/train.md for when this helps and how many
workers a GPU needs.
"""

from __future__ import annotations

import os
import socket

from absl import flags

from tfambient.cli.common import UserError, load_tensorflow_for_records
from tfambient.cli.common import run as run_app

ROLES = ("dispatcher", "worker")

flags.DEFINE_enum("role", None, ROLES, "What this process runs: the dispatcher or a worker.")
flags.DEFINE_integer("port", 0, "Port to listen on; 0: any free port (the one chosen is printed).")
flags.DEFINE_string(
    "dispatcher_address", "", "worker: the dispatcher's HOST:PORT (required for a worker)."
)
flags.DEFINE_string(
    "worker_address",
    "",
    "worker: the HOST:PORT trainers reach this worker at ('%port%' stands for --port); "
    "default: this host's name and port.",
)

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.role is None:
        raise UserError(f"--role is required: {' or '.join(ROLES)}")
    if not 0 <= FLAGS.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {FLAGS.port}")
    if FLAGS.role == "dispatcher" and (FLAGS.dispatcher_address or FLAGS.worker_address):
        raise UserError("--dispatcher_address and --worker_address are for --role=worker")
    load_tensorflow_for_records()  # a worker on a training host must leave its GPUs alone
    from tfambient import data_service

    start = _dispatcher if FLAGS.role == "dispatcher" else _worker
    try:
        server = start(data_service)
    except ValueError as error:
        raise UserError(str(error)) from None
    server.join()


def _listening(start, *args):
    """The server ``start(--port, *args)`` starts, or the one line saying why it could not."""
    try:
        return start(FLAGS.port, *args)
    except RuntimeError as error:  # gRPC could not bind
        raise UserError(f"cannot listen on port {FLAGS.port}: {error}") from None


def _dispatcher(data_service):
    server = _listening(data_service.start_dispatcher)
    port = data_service.bound_port(server)
    print(
        f"dispatcher listening on port {port} (pid {os.getpid()}): train with "
        f"--data_service=grpc://{socket.gethostname()}:{port}",
        flush=True,
    )
    return server


def _worker(data_service):
    if not FLAGS.dispatcher_address:
        raise UserError("--dispatcher_address=HOST:PORT is required for a worker")
    host, port = data_service.host_and_port(FLAGS.dispatcher_address, "--dispatcher_address")
    data_service.check_reachable(host, port)
    address = FLAGS.worker_address or f"{socket.gethostname()}:%port%"
    data_service.host_and_port(address.replace("%port%", "0"), "--worker_address")
    server = _listening(data_service.start_worker, FLAGS.dispatcher_address, address)
    bound = data_service.bound_port(server)
    print(
        f"worker listening on port {bound} (pid {os.getpid()}), registered with "
        f"{FLAGS.dispatcher_address} as {address.replace('%port%', str(bound))}",
        flush=True,
    )
    return server


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
