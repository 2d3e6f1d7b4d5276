"""The default run: the thesis's low-resolution study of 32-px models, offline, on real data.

  python -m experiments.study                 # the shipped checkpoints: ~5 minutes on 2 CPU cores
  python -m experiments.study --retrain       # train the three models here first (their recipes)

For NASNetMobile and MobileNetV2 trained at 32 px and a small ResNet-18 trained at 64 px on
Fashion-MNIST (Debian's files; `--dataset=cifar10` with TFDS): the shipped checkpoints in
--pretrained_dir (else those in --checkpoint_dir, trained there when missing), reduced to lower
resolutions with BatchNorm re-estimated beside, per-image resolution selection on each cache,
and the tables (study.md) and figures under --output_dir.
"""

from absl import flags

from experiments import common
from reswise_tf import data
from reswise_tf.models import registry
from reswise_tf.training.checkpoint import PRETRAINED_DIR
from reswise_tf.workflows import study

FLAGS = flags.FLAGS
_D = study.StudySettings
flags.DEFINE_string("dataset", _D.dataset, "fashion_mnist (offline, Debian's files) or cifar10 (TFDS). Default: fashion_mnist.")
flags.DEFINE_string("output_dir", "results/study", "Where sweeps, study.md and figures go. Default: results/study.")
flags.DEFINE_string("pretrained_dir", PRETRAINED_DIR, "The shipped checkpoints (used unless --retrain). Default: the project's pretrained/.")
flags.DEFINE_string("checkpoint_dir", "checkpoints", "Where models trained here are kept (and reused). Default: checkpoints.")
flags.DEFINE_bool("retrain", _D.retrain, "Train every model from scratch into --checkpoint_dir by its recipe, ignoring the shipped checkpoints. Default: False.")
flags.DEFINE_integer("epochs", 0, "Override the recipes' training epochs (0: each recipe's). Default: 0.")
flags.DEFINE_integer("num_train_examples", 0, "Training images per epoch (0: all). Default: 0.")
flags.DEFINE_integer("num_eval_examples", 0, "Test images per resolution (0: all). Default: 0.")
flags.DEFINE_integer("batch_size", _D.batch_size, f"Training batch size. Default: {_D.batch_size}.")
flags.DEFINE_integer("recalibrate_bn", _D.recalibrate_bn, f"Also evaluate with BatchNorm re-estimated on N training images (0: off). Default: {_D.recalibrate_bn}.")
flags.DEFINE_bool("select", _D.select, "Run the per-image selectors on every cache, and across the models. Default: True.")
flags.DEFINE_bool("segmentation", _D.segmentation, "Also the U-Net on fashion_mnist_scenes (the thesis's future work: segmentation at lower resolutions). Default: False.")
flags.DEFINE_list("models", [m.arch for m in study.DEFAULT_MODELS], f"Models of the study. Default: {','.join(m.arch for m in study.DEFAULT_MODELS)}.")
flags.DEFINE_string("data_dir", None, "TFDS data directory. Default: ~/tensorflow_datasets.")
flags.DEFINE_bool("download", False, "Let TFDS download the dataset. Default: False.")
flags.DEFINE_integer("verbose", 1, "1 progress, 0 nothing. Default: 1.")


def main(argv):
    del argv
    known = {m.arch: m for m in study.DEFAULT_MODELS}
    names = [registry.ALIASES.get(m, m) for m in FLAGS.models]
    unknown = [m for m, name in zip(FLAGS.models, names) if name not in known]
    if unknown:
        raise ValueError(f"Unknown study model(s) {', '.join(unknown)}. Available: {', '.join(known)}")
    for name in ("epochs", "num_train_examples", "num_eval_examples", "batch_size", "recalibrate_bn"):
        if getattr(FLAGS, name) < 0:
            raise ValueError(f"--{name} should be >= 0. Received {getattr(FLAGS, name)}")
    settings = study.StudySettings(
        dataset=FLAGS.dataset,
        num_eval_examples=FLAGS.num_eval_examples or None,
        recalibrate_bn=FLAGS.recalibrate_bn,
        select=FLAGS.select,
        retrain=FLAGS.retrain,
        epochs=FLAGS.epochs or None,
        num_train_examples=FLAGS.num_train_examples or None,
        batch_size=FLAGS.batch_size,
        data_dir=FLAGS.data_dir,
        download=FLAGS.download,
        segmentation=FLAGS.segmentation,
    )
    study.run_study(FLAGS.output_dir, FLAGS.checkpoint_dir, settings, [known[name] for name in names],
                    verbose=FLAGS.verbose, pretrained_dir=FLAGS.pretrained_dir)
    with open(f"{FLAGS.output_dir}/study.md") as f:
        print(f.read())
    print(f"Wrote {FLAGS.output_dir}/study.md and per-model results and figures under {FLAGS.output_dir}/.")


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError, data.DataError))
