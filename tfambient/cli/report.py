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

from absl import flags

from tfambient.cli.common import UserError, load_tensorflow
from tfambient.cli.common import run as run_app

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "report", "Directory for index.html, report.md and figures/.")
flags.DEFINE_string(
    "data_dir", None, "Prepared data directory; default: the one each run's config.json names."
)
flags.DEFINE_integer("units", 6, "Most selective units shown per layer.", lower_bound=1)
flags.DEFINE_integer("top_k", 8, "Top-activating frames shown per unit.", lower_bound=1)
flags.DEFINE_integer(
    "max_images", 2000, "Frames (val first, then train) run through each backbone.", lower_bound=1
)
flags.DEFINE_multi_string(
    "maximize",
    [],
    "Units to maximize, LAYER:UNIT[,UNIT...] (e.g. conv5:3,17); repeat for more layers. "
    "Default: the three most selective units of each studied layer.",
)
flags.DEFINE_integer(
    "maximize_steps", 100, "Gradient-ascent steps of activation maximization.", lower_bound=1
)


def main(argv: list[str]) -> None:
    from tfambient import report

    if len(argv) < 2:
        raise UserError(
            "give at least one run directory (tfambient-train, tfambient-voc or tfambient-probe)"
        )
    try:
        runs = [report.load_run(path) for path in argv[1:]]
        maximize = tuple(report.parse_units(spec) for spec in FLAGS.maximize)
    except ValueError as error:
        raise UserError(str(error)) from None
    options = report.Options(
        data_dir=FLAGS.data_dir,
        units=FLAGS.units,
        top_k=FLAGS.top_k,
        max_images=FLAGS.max_images,
        maximize=maximize,
        maximize_steps=FLAGS.maximize_steps,
    )
    if any(isinstance(run, report.PretextRun) for run in runs):
        load_tensorflow()
    try:
        sections = report.build_sections(runs, options)
    except ValueError as error:
        raise UserError(str(error)) from None
    index = report.write_report(sections, FLAGS.output)
    omitted = [s.title for s in sections if not (s.pictures or s.tables)]
    print(report.markdown_table(sections[0].tables[0]))  # the runs and their headline figures
    print(f"\nreport: {index}")
    if omitted:
        print(f"omitted (see the notes on the page): {'; '.join(omitted)}")


def run() -> None:
    run_app(main)


if __name__ == "__main__":
    run()
