"""tfambient-report: the paper's figures and tables for your own runs, as one HTML page.

  tfambient-report runs/texture_k30 runs/voc_texture_k30_head runs/voc_random_head ...
      --output report/

Give any mix of tfambient-train workdirs (pretext runs), tfambient-voc workdirs (VOC
transfer runs) and tfambient-probe workdirs (linear probes). Writes OUTPUT/index.html
(self-contained: the figures are embedded), OUTPUT/report.md and OUTPUT/figures/*.png:
sound-cluster montages, the frames that excite the most selective units, VOC mAP against the
number of clusters, texture against MFCC per class, the per-class AP table, training curves,
activation maximization and the linear probes' accuracy layer by layer. A section whose runs are
missing says so instead. See docs/report.md for how to read each figure.
"""

from __future__ import annotations

from tfambient.cli.common import (
    UserError,
    dataclass_from_flags,
    define_dataclass_flags,
    load_tensorflow,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import ReportConfig

define_dataclass_flags(ReportConfig, __name__)


def main(argv: list[str]) -> None:
    from tfambient import report

    if len(argv) < 2:
        raise UserError(
            "give at least one run directory (tfambient-train, tfambient-voc or tfambient-probe)"
        )
    try:
        options = dataclass_from_flags(ReportConfig)
        runs = [report.load_run(path) for path in argv[1:]]
    except ValueError as error:
        raise UserError(str(error)) from None
    if any(isinstance(run, report.PretextRun) for run in runs):
        load_tensorflow()
    try:
        sections = report.build_sections(runs, options)
    except ValueError as error:
        raise UserError(str(error)) from None
    index = report.write_report(sections, options.output)
    omitted = [s.title for s in sections if not (s.pictures or s.tables)]
    print(report.markdown_table(sections[0].tables[0]))  # the runs and their headline figures
    print(f"\nreport: {index}")
    if omitted:
        print(f"omitted (see the notes on the page): {'; '.join(omitted)}")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
