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

from tfambient.cli.common import (
    UserError,
    dataclass_from_flags,
    define_dataclass_flags,
    load_tensorflow_for_records,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import DataServiceConfig
from tfambient.hosts import check_dispatcher

FLAGS = flags.FLAGS

define_dataclass_flags(DataServiceConfig, __name__)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = dataclass_from_flags(DataServiceConfig)
        if config.role == "worker":
            check_dispatcher(config.dispatcher())
    except ValueError as error:
        raise UserError(str(error)) from None
    load_tensorflow_for_records()  # a worker on a training host must leave its GPUs alone
    from tfambient import data_service

    start = _dispatcher if config.role == "dispatcher" else _worker
    start(data_service, config).join()


def _listening(start, port: int, *args):
    """The server ``start(port, *args)`` starts, or the one line saying why it could not."""
    try:
        return start(port, *args)
    except RuntimeError as error:  # gRPC could not bind
        raise UserError(f"cannot listen on port {port}: {error}") from None


def _dispatcher(data_service, config: DataServiceConfig):
    server = _listening(data_service.start_dispatcher, config.port)
    port = data_service.bound_port(server)
    print(
        f"dispatcher listening on port {port} (pid {os.getpid()}): train with "
        f"--data_service=grpc://{socket.gethostname()}:{port}",
        flush=True,
    )
    return server


def _worker(data_service, config: DataServiceConfig):
    address = config.worker_address or f"{socket.gethostname()}:%port%"
    dispatcher = config.dispatcher_address
    server = _listening(data_service.start_worker, config.port, dispatcher, address)
    bound = data_service.bound_port(server)
    print(
        f"worker listening on port {bound} (pid {os.getpid()}), registered with "
        f"{dispatcher} as {address.replace('%port%', str(bound))}",
        flush=True,
    )
    return server


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
