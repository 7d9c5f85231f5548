"""tfrecords-inspect DIR: record counts, schema and a decoded example of a TFRecord dataset.

DIR is a directory of *.tfrecord shards, or a dataset directory holding shards/ and
dataset.json. Prints the records per split (train, val, ...: the shard name before
-NNNNN-of-NNNNN) and in total, the first example's features (key, kind, length) and
decoded examples with long values shortened, and dataset.json's counts and schema.

Every shard is read to its end with its CRCs checked (unless --noverify) and compared
with dataset.json's shard list when there is one. Each bad shard or disagreement gets a
line "tfrecords-inspect: bad shard: PATH: detail" on stderr and the exit status is 1;
it is 0 when everything agrees, and 2 for a missing DIR or one without shards.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from absl import flags

from tfambient.cli.common import UserError, define_dataclass_flags, load_tensorflow_for_records
from tfambient.cli.common import run as run_app
from tfambient.configs import option

PROGRAM = "tfrecords-inspect"

FLAGS = flags.FLAGS


@dataclass(frozen=True)
class InspectConfig:
    examples: int = option(1, "How many decoded examples to show.", lower=0)
    verify: bool = option(
        True,
        "Read every shard to its end to count and check it. --noverify takes the counts "
        "from dataset.json and reads only the examples shown.",
    )


define_dataclass_flags(InspectConfig, __name__)


def _import_inspect():
    """tfrecords_tools.inspect, imported only once DIR is known to exist: importing it
    loads TensorFlow, which takes seconds, so --help and usage errors answer without it."""
    load_tensorflow_for_records()
    from tfrecords_tools import inspect

    return inspect


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise UserError(f"name one directory of shards, e.g. {PROGRAM} data/my_dataset")
    directory = Path(argv[1])
    if not directory.is_dir():
        raise UserError(f"{directory}: no such directory")
    inspect = _import_inspect()
    try:
        report = inspect.summarize(
            directory, examples=FLAGS.examples, verify=FLAGS.verify, progress=sys.stderr.isatty()
        )
    except inspect.ManifestError as error:
        raise UserError(str(error)) from None
    if not report.shards:
        raise UserError(f"{directory}: no *.tfrecord shards here or in {directory / 'shards'}")
    print(inspect.format_report(report))
    for problem in report.problems:
        print(f"{PROGRAM}: bad shard: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
