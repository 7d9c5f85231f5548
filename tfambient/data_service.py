"""tf.data service: training input made on other hosts' CPUs (see docs/train.md).

A training host has a few CPU cores per accelerator, and decoding and cropping JPEGs may not
keep up with the step. The input pipeline of :mod:`tfambient.data` is graph-only (no Python
in it), so tf.data service can run it elsewhere: a dispatcher (one process) hands the
pipeline to workers (one process per host with spare cores, ``tfambient-data-service``),
which read the shards, decode and crop, and stream the uint8 batches to the trainer
(``tfambient-train --data_service=grpc://HOST:PORT``).

Mode: ``parallel_epochs``, each worker running the whole pipeline of a trainer's input
pipeline (its share of the shards) on its own: the workers' streams are interleaved, each
in its own random order and augmentation (the pipeline is then unseeded, or every worker
would make the same batches), so "an epoch" means little and the stream is not reproducible.
Workers read the shards at the paths the trainer names: a shared file system, or an object
store (gs://...) with the same URLs everywhere.
"""

from __future__ import annotations

import tensorflow as tf

from tfambient.hosts import DATA_SERVICE_PROTOCOL


def distribute(dataset: tf.data.Dataset, service: str) -> tf.data.Dataset:
    """``dataset`` made by the workers of the dispatcher at ``service`` (grpc://HOST:PORT).

    Each call is a job of its own, read from every worker: one per input pipeline.
    """
    return dataset.apply(
        tf.data.experimental.service.distribute(processing_mode="parallel_epochs", service=service)
    )


def start_dispatcher(port: int) -> tf.data.experimental.service.DispatchServer:
    """A dispatcher listening on ``port`` (0: any free port)."""
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, protocol=DATA_SERVICE_PROTOCOL
    )
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(
    port: int, dispatcher: str, worker_address: str
) -> tf.data.experimental.service.WorkerServer:
    """A worker on ``port`` (0: any free port) registered with ``dispatcher`` (HOST:PORT),
    telling trainers to reach it at ``worker_address`` ("%port%" stands for its port)."""
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher,
        worker_address=worker_address,
        port=port,
        protocol=DATA_SERVICE_PROTOCOL,
    )
    return tf.data.experimental.service.WorkerServer(config)


def bound_port(server) -> int:
    """The port a dispatcher or worker listens on (the one picked, when asked for 0)."""
    return int(server._address.rsplit(":", 1)[1])  # no public accessor in TF 2.21
