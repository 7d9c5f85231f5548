"""Flags shared by tfambient-prepare and tfambient-cluster: which engine does the work."""

from __future__ import annotations

import contextlib

from absl import flags

from tfambient.cli.common import UserError

flags.DEFINE_enum(
    "engine",
    "local",
    ["local", "beam"],
    "'local': worker processes on this machine (resumable, kill -9 safe). 'beam': Apache "
    "Beam pipelines on the runner --beam_pipeline_options names (needs "
    "pip install 'tfambient[beam]'); the CSV, media and output may then be on any filesystem "
    "Beam reads (gs://, s3://, hdfs://). Both give the same records, labels and failures.",
)
flags.DEFINE_string(
    "beam_pipeline_options",
    "",
    "Apache Beam options, comma-separated key=value, e.g. runner=DirectRunner,"
    "direct_num_workers=2,direct_running_mode=multi_processing, or runner=DataflowRunner,"
    "project=P,region=R,temp_location=gs://B/tmp,setup_file=./setup.py. With no runner "
    "named: Beam's Python DirectRunner in worker processes (one per core, or --num_workers), "
    "never the Prism runner it would download. beam_plugins=MODULE imports a module that "
    "registers a FileSystem, on this machine and the workers.",
)


def make_engine(num_workers: int = 0, mirror=None, **local):
    """The engine the flags choose; a missing Apache Beam or unreadable options raise
    ValueError (one line for the user)."""
    values = flags.FLAGS
    if values.engine == "local":
        if values["beam_pipeline_options"].present:
            raise ValueError("--beam_pipeline_options needs --engine=beam")
        from tfambient.prepare import LocalEngine

        return LocalEngine(num_workers, **local)
    beam_engine = import_beam_engine()
    return beam_engine.BeamEngine(
        beam_engine.pipeline_options(values.beam_pipeline_options, num_workers), mirror
    )


def import_beam_engine():
    """tfambient.beam_engine, with the FileSystems that --beam_pipeline_options'
    beam_plugins register; ValueError naming the extra to install if Beam is missing."""
    try:
        from tfambient import beam_engine
    except ImportError as error:
        raise ValueError(str(error).split("; ")[0]) from None
    beam_engine.pipeline_options(flags.FLAGS.beam_pipeline_options)  # imports beam_plugins
    return beam_engine


@contextlib.contextmanager
def mirrored(url: str):
    """A data directory on another filesystem (``scheme://...``), as the launcher works
    on it: a local mirror of its small files (beam_engine.Mirror), pushed back at the end."""
    try:
        beam_engine = import_beam_engine()
    except ValueError as error:
        raise UserError(str(error)) from None
    with beam_engine.mirrored(url) as mirror:
        yield mirror
