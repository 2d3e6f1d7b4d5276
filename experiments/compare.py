"""The thesis's Table 7: published ResNet50 pruning results beside our fixed, random and cascade
rows (from the selection.csv that experiments.select wrote into a results directory).

  python -m experiments.select --results_dir=results/r50 --selector=all
  python -m experiments.compare --results_dir=results/r50

Writes comparison.csv and comparison.md into --output_dir.
"""

from absl import flags

from experiments import common
from reswise_tf.report import literature

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "results_dir",
    None,
    "A results directory with selection.csv (experiments.select). Default: None.",
)
flags.DEFINE_string(
    "output_dir", None, "Where comparison.csv and comparison.md go. Default: --results_dir."
)
flags.DEFINE_string("title", literature.TITLE, f"Table title. Default: {literature.TITLE}.")


def main(argv):
    del argv
    if not FLAGS.results_dir:
        raise ValueError("--results_dir is required: a results directory with selection.csv")
    print(literature.write_comparison(FLAGS.results_dir, FLAGS.output_dir, FLAGS.title))
    print(f"Wrote comparison.csv and comparison.md into {FLAGS.output_dir or FLAGS.results_dir}")


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError))
