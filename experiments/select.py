"""Per-image resolution selection over the prediction cache of a sweep (no model is run).

  python -m experiments.select --results_dir=results/r50 --selector=all
  python -m experiments.select --results_dir=results/r50 --selector=random --trials=10 --seed=0
  python -m experiments.select --results_dir=results/r50 --selector=cascade --max_drop=0.5
  python -m experiments.select --results_dir=results/r50 --selector=cascade --flops_budget=0.7

Writes selection.csv, selection.md (the thesis's Table 6 layout) and pareto.png into
--output_dir; with a cascade also cascade_curve.csv, cascade_fits.json, selection_split.npz.
"""

import os

from absl import flags

from experiments import common
from reswise_tf.evaluation import load_tables
from reswise_tf.report import selection_report as report_lib
from reswise_tf.selection import SELECTORS, run_selection

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "results_dir",
    None,
    "A results directory of experiments.reduce (with predictions/). Default: None.",
)
flags.DEFINE_string(
    "selector", "all", f"One of {', '.join(sorted(SELECTORS))}, or all. Default: all."
)
flags.DEFINE_string("output_dir", None, "Where the reports go. Default: --results_dir.")
flags.DEFINE_integer("topk", 5, "k of the top-k accuracy column. Default: 5.")
flags.DEFINE_string(
    "choices",
    None,
    "Random selector: comma-separated resolutions. Default: native and the four next sizes of the sweep.",
)
flags.DEFINE_integer("trials", 10, "Random selector: number of seeded trials. Default: 10.")
flags.DEFINE_integer("seed", 0, "Random selector: seed of the trials. Default: 0.")
flags.DEFINE_multi_string(
    "max_drop",
    [],
    "Cascade target: at most this many accuracy points below native on the calibration part (repeatable). Default: 0.5 when no target is given.",
)
flags.DEFINE_multi_string(
    "flops_budget",
    [],
    "Cascade target: at most this fraction of the native FLOPs, or 'random' for the random selector's mean FLOPs (repeatable). Default: random with --selector=all.",
)
flags.DEFINE_string(
    "stages",
    None,
    "Cascade: fixed comma-separated stages ending at native (thresholds still fitted). Default: searched.",
)
flags.DEFINE_integer("max_stages", 3, "Cascade: most stages searched, native included. Default: 3.")
flags.DEFINE_string(
    "confidence",
    "auto",
    "Cascade: max_prob, margin, calibrated_max_prob, calibrated_margin, or auto (search all). Default: auto.",
)
flags.DEFINE_string(
    "thresholds",
    "auto",
    "Cascade: shared (one threshold per stage), per_class (one per stage and predicted class), or auto (search both). Default: auto.",
)
flags.DEFINE_string(
    "metric",
    "top1",
    "Cascade: the accuracy --max_drop is measured in: top1 or top5. Default: top1.",
)
flags.DEFINE_float(
    "calibration_fraction", 0.5, "Share of the images in the calibration part. Default: 0.5."
)
flags.DEFINE_integer("split_seed", 0, "Seed of the calibration/evaluation split. Default: 0.")
flags.DEFINE_bool("stratify", True, "Split each class in the same proportion. Default: True.")
flags.DEFINE_string(
    "title", None, "Title of the tables and figure. Default: derived from the results directory."
)


def _floats(values, flag):
    out = []
    for v in values:
        try:
            out.append(float(v))
        except ValueError:
            raise ValueError(f"{flag} should be a number. Received {v!r}") from None
    return out


def main(argv):
    del argv
    if not FLAGS.results_dir:
        raise ValueError("--results_dir is required: a results directory of experiments.reduce")
    if not os.path.isdir(FLAGS.results_dir):
        raise FileNotFoundError(f"--results_dir {FLAGS.results_dir!r} does not exist")
    tables = load_tables(FLAGS.results_dir)
    report = run_selection(
        tables,
        (FLAGS.selector,),
        topk=FLAGS.topk,
        choices=common.parse_resolutions(FLAGS.choices, "--choices") if FLAGS.choices else None,
        trials=FLAGS.trials,
        seed=FLAGS.seed,
        max_drops=_floats(FLAGS.max_drop, "--max_drop"),
        flops_budgets=FLAGS.flops_budget,
        stages=common.parse_resolutions(FLAGS.stages, "--stages") if FLAGS.stages else None,
        max_stages=FLAGS.max_stages,
        confidence=FLAGS.confidence,
        thresholds=FLAGS.thresholds,
        metric=FLAGS.metric,
        calibration_fraction=FLAGS.calibration_fraction,
        split_seed=FLAGS.split_seed,
        stratify=FLAGS.stratify,
        verbose=1,
    )
    output_dir = FLAGS.output_dir or FLAGS.results_dir
    title = (
        FLAGS.title
        or f"Per-image resolution selection: {os.path.basename(os.path.normpath(FLAGS.results_dir))}"
    )
    written = report_lib.write_reports(report, output_dir, title)
    with open(os.path.join(output_dir, "selection.md")) as f:
        print(f.read())
    print(f"Wrote {', '.join(written)} into {output_dir}")


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError))
