"""Flags shared by tfambient-prepare and tfambient-cluster: which engine does the work
(configs.EngineConfig, one flag per field)."""

from __future__ import annotations

import contextlib

from tfambient.cli.common import UserError, dataclass_from_flags, define_dataclass_flags
from tfambient.configs import EngineConfig

define_dataclass_flags(EngineConfig, __name__)


def engine_config(*paths: str | None) -> EngineConfig:
    """The engine the flags choose, able to reach ``paths``; a mistake is one line."""
    try:
        config = dataclass_from_flags(EngineConfig)
        config.check_reaches(paths)
    except ValueError as error:
        raise UserError(str(error)) from None
    return config


def make_engine(num_workers: int = 0, mirror=None, **local):
    """The engine the flags choose; a missing Apache Beam or unreadable options raise
    ValueError (one line for the user)."""
    config = engine_config()
    if config.engine == "local":
        from tfambient.prepare import LocalEngine

        return LocalEngine(num_workers, **local)
    beam_engine = import_beam_engine()
    return beam_engine.BeamEngine(
        beam_engine.pipeline_options(config.beam_pipeline_options, num_workers), mirror
    )


def import_beam_engine():
    """tfambient.beam_engine, with the FileSystems that --beam_pipeline_options'
    beam_plugins register; ValueError naming the extra to install if Beam is missing."""
    try:
        from tfambient import beam_engine
    except ImportError as error:
        raise ValueError(str(error).split("; ")[0]) from None
    beam_engine.pipeline_options(engine_config().beam_pipeline_options)  # imports beam_plugins
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
