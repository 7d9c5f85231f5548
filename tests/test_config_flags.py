"""Flags generated from config dataclasses (cli/common.define_dataclass_flags): a field's
name, type, default, help and limits make its flag, and the parsed flags make the config."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from absl import flags

from tfambient.cli.common import dataclass_from_flags, define_dataclass_flags
from tfambient.configs import option, required

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Example:
    where: str = required("A required path.")
    sizes: tuple[int, ...] = option((30,), "Some sizes.")
    names: tuple[str, ...] | None = option(None, "Some names.")
    rate: float | None = option(None, "A rate.", lower=1.0)
    count: int = option(3, "A count.", lower=0, upper=9, flag="example_count")
    mode: str = option("a", "A mode.", choices=("a", "b"))
    loud: bool = option(False, "Be loud.")
    specs: tuple[str, ...] = option((), "Repeatable.", multi=True)
    derived: frozenset[str] = frozenset()


def parsed(*args: str) -> flags.FlagValues:
    values = flags.FlagValues()
    define_dataclass_flags(Example, "example_module", values)
    values(["prog", "--where=w", *args])
    return values


def test_fields_become_typed_flags_with_their_defaults():
    config = dataclass_from_flags(Example, parsed())
    assert config == Example(where="w")


def test_given_flags_become_the_fields_and_derived_fields_are_passed_through():
    values = parsed("--sizes=2,5", "--names=x,y", "--rate=2.5", "--example_count=7", "--mode=b")
    config = dataclass_from_flags(Example, parsed("--loud"), derived=frozenset({"d"}))
    assert config.loud and config.derived == {"d"}
    config = dataclass_from_flags(Example, values)
    expected = Example(where="w", sizes=(2, 5), names=("x", "y"), rate=2.5, count=7, mode="b")
    assert config == expected


def test_a_multi_field_is_a_repeatable_flag():
    config = dataclass_from_flags(Example, parsed("--specs=a:1,2", "--specs=b:3"))
    assert config.specs == ("a:1,2", "b:3")


def test_only_described_fields_are_flags_and_help_lists_them_under_the_module():
    values = parsed()
    listed = {flag.name for flag in values.get_key_flags_for_module("example_module")}
    assert listed == {"where", "sizes", "names", "rate", "example_count", "mode", "loud", "specs"}
    assert "derived" not in values
    assert "A count." in values.module_help("example_module")


@pytest.mark.parametrize(
    "arg", ["--example_count=10", "--example_count=-1", "--rate=0.5", "--mode=c"]
)
def test_limits_and_choices_are_enforced_by_the_flag(arg):
    with pytest.raises(flags.IllegalFlagValueError):
        parsed(arg)


@pytest.mark.parametrize("given", [(), ("--where=",)])
def test_a_required_field_left_out_or_empty_is_named(given):
    values = flags.FlagValues()
    define_dataclass_flags(Example, "example_module", values)
    values(["prog", *given])
    with pytest.raises(ValueError, match=r"^--where is required$"):
        dataclass_from_flags(Example, values)


def test_a_list_of_the_wrong_type_is_one_clear_error():
    with pytest.raises(ValueError, match=r"--sizes must be integers: 2,x"):
        dataclass_from_flags(Example, parsed("--sizes=2,x"))


def test_renamed_label_flags_reach_their_fields_through_tfambient_cluster(tmp_path):
    """--kmeans_n_init is LabelSettings.n_init: a bad value is refused by the flag's bound."""
    command = [str(BIN / "tfambient-cluster"), f"--data_dir={tmp_path}", "--kmeans_n_init=0"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "kmeans_n_init" in out.stderr
