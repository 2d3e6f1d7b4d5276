"""The default run: the thesis's low-resolution study of 32-px models, offline, on real data.

  python -m experiments.study                       # ~20 minutes on 2 CPU cores
  python -m experiments.study --epochs=30 --num_train_examples=0 --num_eval_examples=0   # full

Trains NASNetMobile and MobileNetV2 at 32 px and a small ResNet-18 at 64 px on Fashion-MNIST
(Debian's files; `--dataset=cifar10` with TFDS) when their checkpoints are missing, reduces them
to lower resolutions, and writes the tables (study.md) and figures under --output_dir.
"""

from absl import flags

from experiments import common
from reswise_tf import data
from reswise_tf.workflows import study

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "fashion_mnist", "fashion_mnist (offline, Debian's files) or cifar10 (TFDS). Default: fashion_mnist.")
flags.DEFINE_string("output_dir", "results/study", "Where sweeps, study.md and figures go. Default: results/study.")
flags.DEFINE_string("checkpoint_dir", "checkpoints", "Where trained models are kept (and reused). Default: checkpoints.")
flags.DEFINE_integer("epochs", study.StudySettings.epochs, f"Training epochs per model. Default: {study.StudySettings.epochs}.")
flags.DEFINE_integer("num_train_examples", study.StudySettings.num_train_examples, f"Training images per epoch (0: all). Default: {study.StudySettings.num_train_examples}.")
flags.DEFINE_integer("num_eval_examples", study.StudySettings.num_eval_examples, f"Test images per resolution (0: all). Default: {study.StudySettings.num_eval_examples}.")
flags.DEFINE_integer("batch_size", study.StudySettings.batch_size, f"Training batch size. Default: {study.StudySettings.batch_size}.")
flags.DEFINE_integer("recalibrate_bn", 0, "Also evaluate with BatchNorm re-estimated on N training images (0: off). Default: 0.")
flags.DEFINE_list("models", [m.arch for m in study.DEFAULT_MODELS], f"Models of the study. Default: {','.join(m.arch for m in study.DEFAULT_MODELS)}.")
flags.DEFINE_string("data_dir", None, "TFDS data directory. Default: ~/tensorflow_datasets.")
flags.DEFINE_bool("download", False, "Let TFDS download the dataset. Default: False.")
flags.DEFINE_integer("verbose", 1, "1 progress bars, 0 nothing. Default: 1.")


def main(argv):
    del argv
    known = {m.arch: m for m in study.DEFAULT_MODELS}
    unknown = [m for m in FLAGS.models if m not in known]
    if unknown:
        raise ValueError(f"Unknown study model(s) {', '.join(unknown)}. Available: {', '.join(known)}")
    for name in ("epochs", "batch_size"):
        if getattr(FLAGS, name) < 1:
            raise ValueError(f"--{name} should be a positive integer. Received {getattr(FLAGS, name)}")
    settings = study.StudySettings(
        dataset=FLAGS.dataset,
        epochs=FLAGS.epochs,
        num_train_examples=FLAGS.num_train_examples or None,
        num_eval_examples=FLAGS.num_eval_examples or None,
        batch_size=FLAGS.batch_size,
        recalibrate_bn=FLAGS.recalibrate_bn,
        data_dir=FLAGS.data_dir,
        download=FLAGS.download,
    )
    study.run_study(FLAGS.output_dir, FLAGS.checkpoint_dir, settings, [known[m] for m in FLAGS.models],
                    verbose=FLAGS.verbose)
    with open(f"{FLAGS.output_dir}/study.md") as f:
        print(f.read())
    print(f"Wrote {FLAGS.output_dir}/study.md and per-model results and figures under {FLAGS.output_dir}/.")


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError, data.DataError))
