"""Per-image selection over the prediction caches of one sweep, or of several models' sweeps
of the same images (no model is run).

  python -m experiments.select --results_dir=results/r50 --selector=all
  python -m experiments.select --results_dir=results/r50 --selector=random --trials=10 --seed=0
  python -m experiments.select --results_dir=results/r50 --selector=cascade --max_drop=0.5
  python -m experiments.select --results_dir=results/r50 --selector=cascade --flops_budget=0.7
  python -m experiments.select --results_dir=results/a,results/b --output_dir=results/ab \
      --flops_budget=1.5 --max_drop=0.1@committee

Writes selection.csv, selection.md (the thesis's Table 6 layout) and pareto.png into
--output_dir; with a cascade also cascade_curve.csv, cascade_fits.json, selection_split.npz.
"""

import os

from absl import flags

from experiments import common
from reswise_tf.selection import SELECTORS
from reswise_tf.workflows import deploy_cascade, select

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "results_dir",
    None,
    "Results directories of experiments.reduce (with predictions/), comma-separated: one sweep, or several models' "
    "sweeps of the same images (each (model, resolution) a stage named DIRNAME@RESOLUTION). Default: None.",
)
flags.DEFINE_string(
    "selector", "all", f"One of {', '.join(sorted(SELECTORS))}, or all. Default: all."
)
flags.DEFINE_string("output_dir", None, "Where the reports go (required with several --results_dir). Default: --results_dir.")
flags.DEFINE_string("reference", None, "The stage drops are measured against, e.g. mobilenetv2_32@32. Default: native (one sweep), else the most accurate stage.")
flags.DEFINE_bool("bn_stages", False, "Also use each sweep's BatchNorm re-estimated cache (bn_recalibrated/) as stages. Default: False.")
flags.DEFINE_integer("topk", 5, "k of the top-k accuracy column. Default: 5.")
flags.DEFINE_string(
    "choices",
    None,
    "Random selector: comma-separated resolutions (several sweeps: stage names). Default: the reference (one sweep: native) and the four next cheaper ones.",
)
flags.DEFINE_integer("trials", 10, "Random selector: number of seeded trials. Default: 10.")
flags.DEFINE_integer("seed", 0, "Random selector: seed of the trials. Default: 0.")
flags.DEFINE_multi_string(
    "max_drop",
    [],
    "Cascade target: at most this many accuracy points below the reference on the calibration part, negative for a gain; POINTS@STAGE or POINTS@committee measures against that stage or the committee of every model's native (repeatable). Default: 0.5 when no target is given.",
)
flags.DEFINE_multi_string(
    "flops_budget",
    [],
    "Cascade target: at most this fraction of the reference's FLOPs (FRACTION@STAGE, FRACTION@committee: of theirs), or 'random' for the random selector's mean FLOPs (repeatable). Default: random with --selector=all.",
)
flags.DEFINE_string(
    "stages",
    None,
    "Cascade: fixed comma-separated stages (one sweep: resolutions ending at native; several: stage names). Default: searched.",
)
flags.DEFINE_integer("max_stages", 3, "Cascade: most stages searched (one sweep: native included). Default: 3.")
flags.DEFINE_string(
    "confidence",
    "auto",
    "Cascade: max_prob, margin, calibrated_max_prob, calibrated_margin, learned (a gate fitted on the calibration part), or auto (search all). Default: auto.",
)
flags.DEFINE_string(
    "thresholds",
    "auto",
    "Cascade: shared (one threshold per stage), per_class (one per stage and predicted class), or auto (search both). Default: auto.",
)
flags.DEFINE_string(
    "metric",
    "auto",
    "Cascade and oracle: what targets are measured in (--max_drop's points, what a --flops_budget cascade maximises): top1, top5, or for a segmentation miou, pixel_acc; auto: top1 (a segmentation: miou). Default: auto.",
)
flags.DEFINE_string("decide", "auto", "Cascade: each stage decides on its own prediction (own), on the committee of the stages so far (committee), or auto (one sweep: own; several: both). Default: auto.")
flags.DEFINE_float(
    "calibration_fraction", 0.5, "Share of the images in the calibration part. Default: 0.5."
)
flags.DEFINE_integer("split_seed", 0, "Seed of the calibration/evaluation split. Default: 0.")
flags.DEFINE_bool("stratify", True, "Split each class in the same proportion. Default: True.")
flags.DEFINE_string("deploy_dir", None, "Also save the deployable cascade (CascadeClassifier: cascade.json and one .keras per stage) of --deploy_target here, each model reopened as its sweep ran it. Default: None.")
flags.DEFINE_string("deploy_target", None, "The fitted cascade --deploy_dir saves, as cascade_fits.json names it (e.g. 'max_drop=0.5'). Default: the first.")
flags.DEFINE_string(
    "title", None, "Title of the tables and figure. Default: derived from the results directory."
)


def _stages(text, flag, several):
    """Resolutions of one sweep, or stage names of several."""
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()] if several else common.parse_resolutions(text, flag)


def main(argv):
    del argv
    if not FLAGS.results_dir:
        raise ValueError("--results_dir is required: results directories of experiments.reduce")
    for d in FLAGS.results_dir:
        if not os.path.isdir(d):
            raise FileNotFoundError(f"--results_dir {d!r} does not exist")
    several = len(FLAGS.results_dir) > 1 or FLAGS.bn_stages
    if len(FLAGS.results_dir) > 1 and not FLAGS.output_dir:
        raise ValueError("--output_dir is required with several --results_dir (the reports belong to none of them)")
    if FLAGS.deploy_dir and FLAGS.selector not in ("all", "cascade"):
        raise ValueError(f"--deploy_dir saves a fitted cascade: it needs --selector=cascade or all. "
                         f"Received --selector={FLAGS.selector}")
    output_dir = FLAGS.output_dir or FLAGS.results_dir[0]
    name = ", ".join(os.path.basename(os.path.normpath(d)) for d in FLAGS.results_dir)
    report = select(
        FLAGS.results_dir,
        (FLAGS.selector,),
        reference=FLAGS.reference,
        include_bn=FLAGS.bn_stages,
        output_dir=output_dir,
        title=FLAGS.title or f"Per-image {'stage' if several else 'resolution'} selection: {name}",
        topk=FLAGS.topk,
        choices=_stages(FLAGS.choices, "--choices", several),
        trials=FLAGS.trials,
        seed=FLAGS.seed,
        max_drops=FLAGS.max_drop,
        flops_budgets=FLAGS.flops_budget,
        stages=_stages(FLAGS.stages, "--stages", several),
        max_stages=FLAGS.max_stages,
        confidence=FLAGS.confidence,
        thresholds=FLAGS.thresholds,
        metric=FLAGS.metric,
        decide=FLAGS.decide,
        calibration_fraction=FLAGS.calibration_fraction,
        split_seed=FLAGS.split_seed,
        stratify=FLAGS.stratify,
        verbose=1,
    )
    with open(os.path.join(output_dir, "selection.md")) as f:
        print(f.read())
    print(f"Wrote {len(report.results)} rows: selection.csv, selection.md and pareto.png into {output_dir}")
    if FLAGS.deploy_dir:
        cascade = deploy_cascade(FLAGS.results_dir, output_dir, FLAGS.deploy_target)
        cascade.save(FLAGS.deploy_dir)
        print(f"Saved the cascade {cascade.config.describe()} into {FLAGS.deploy_dir} "
              "(reswise_tf.CascadeClassifier.load; python -m benchmarks.cascade_speed --cascade_dir=...)")


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError))
