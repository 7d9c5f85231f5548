"""docs/cli.md is what `python -m tfambient.cli.reference` writes from the commands' --help:
a flag added, renamed or re-explained without regenerating it fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfambient.cli import reference

pytestmark = pytest.mark.slow

CLI_MD = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_every_console_script_has_a_section():
    names = reference.commands()
    assert {"tfambient-prepare", "tfambient-train", "tfambient-voc", "tfambient-report"} <= set(
        names
    )
    text = CLI_MD.read_text()
    assert all(f"\n## {name}\n" in text for name in names)


def test_the_committed_reference_is_up_to_date():
    assert CLI_MD.read_text() == reference.reference(), (
        "docs/cli.md is stale: run .venv/bin/python -m tfambient.cli.reference --output=docs/cli.md"
    )
