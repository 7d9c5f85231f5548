"""Flags shared by tfambient-prepare and tfambient-cluster: how sounds become labels
(cluster.LabelSettings' fields)."""

from __future__ import annotations

from absl import flags

from tfambient.cli.common import dataclass_from_flags, define_dataclass_flags
from tfambient.cluster import REDUCIBLE_SETTINGS, LabelSettings

define_dataclass_flags(LabelSettings, __name__)


def label_settings() -> LabelSettings:
    """The parsed flags as settings; a bad K is a user error (ValueError). A K or a number
    of bits not given (on the command line or in a flagfile) is a default, which the fit
    lowers where the sample cannot support it."""
    given = frozenset(name for name in REDUCIBLE_SETTINGS if flags.FLAGS[name].present)
    return dataclass_from_flags(LabelSettings, reducible=frozenset(REDUCIBLE_SETTINGS) - given)
