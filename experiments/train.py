"""Trains a registered architecture from scratch at one resolution, for a resolution study.

  python -m experiments.train --arch=mobilenet_v2 --dataset=fashion_mnist --resolution=32 \
      --epochs=3 --output=checkpoints/mobilenet_v2_fmnist32.keras
  python -m experiments.reduce --arch=mobilenet_v2 --dataset=fashion_mnist \
      --weights=checkpoints/mobilenet_v2_fmnist32.keras

Running the same command again after an interruption resumes after the last finished epoch
(checkpoints, log.csv and result.json are in OUTPUT.ckpt/ unless --work_dir is given).
Fashion-MNIST is read from Debian's dataset-fashion-mnist files when present (else TFDS); its
28-px grayscale images are repeated to 3 channels and resized to --resolution, as the sweep
does. See reswise_tf/training/ for the pipeline, optimiser and loop, and
reswise_tf/training/recipes.py for the recipes of the study's models.
"""

import os

from absl import flags

from experiments import common
from reswise_tf import data, training
from reswise_tf.models import registry
from reswise_tf.runtime import distribute
from reswise_tf.runtime.precision import PRECISIONS

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "arch",
    None,
    "Registered architecture: a keras.applications constructor in lower case (mobilenetv2, nasnetmobile, ...), resnet18_small, or unet_small (a segmentation). Default: None.",
)
flags.DEFINE_string(
    "dataset",
    None,
    "TFDS name (cifar10, fashion_mnist, oxford_iiit_pet, ...), fashion_mnist_scenes, or folder:PATH (class subfolders, or images/ and masks/ of a segmentation). Default: None.",
)
flags.DEFINE_integer(
    "resolution", 32, "Training input size in pixels (the model's native resolution). Default: 32."
)
flags.DEFINE_integer(
    "epochs", 10, "Total epochs (a resumed run counts the finished ones). Default: 10."
)
flags.DEFINE_string(
    "output",
    None,
    "Model file written at the end (.keras or .h5). Default: checkpoints/ARCH_DATASET_RESOLUTION.keras.",
)
flags.DEFINE_string(
    "work_dir",
    None,
    "Checkpoints, log.csv and result.json of the run. Default: OUTPUT without extension + .ckpt.",
)
flags.DEFINE_string("train_split", "train", "Split trained on (TFDS datasets). Default: train.")
flags.DEFINE_string(
    "val_split",
    None,
    "Split validated on, per epoch and at the end. Default: the one experiments.reduce evaluates (validation if the dataset has one, else test).",
)
flags.DEFINE_string(
    "val_dataset",
    None,
    "Validation dataset when it is not a split of --dataset (e.g. folder:PATH). Default: --dataset, or no validation for folders.",
)
flags.DEFINE_integer(
    "num_train_examples", None, "Train on the first N training examples. Default: all."
)
flags.DEFINE_integer(
    "num_validation_examples",
    None,
    "Validate on the first N validation examples (reduce --num_examples=N reproduces the accuracy). Default: all.",
)
flags.DEFINE_integer(
    "validation_freq",
    1,
    "Validate every N epochs; --validation_freq=EPOCHS validates only at the end (one pass over the validation data instead of one per epoch). Default: 1.",
)
flags.DEFINE_string("data_dir", None, "TFDS data directory. Default: ~/tensorflow_datasets.")
flags.DEFINE_bool("download", False, "Let TFDS download and prepare the dataset. Default: False.")
flags.DEFINE_integer("batch_size", 128, "Global batch size. Default: 128.")
flags.DEFINE_enum(
    "optimizer",
    "sgd",
    training.OPTIMIZERS,
    "sgd (Nesterov momentum 0.9) or adamw; warm-up then cosine decay. Default: sgd.",
)
flags.DEFINE_float(
    "learning_rate", None, "Peak learning rate. Default: 0.1 for sgd, 0.001 for adamw."
)
flags.DEFINE_float(
    "weight_decay", None, "Decoupled weight decay. Default: 5e-4 for sgd, 0.05 for adamw."
)
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing of the cross-entropy. Default: 0.0.")
flags.DEFINE_float(
    "bn_momentum",
    training.DEFAULT_BN_MOMENTUM,
    "BatchNormalization momentum while training (the ImageNet recipes' 0.99-0.9997 barely move in a short run). Default: 0.9.",
)
flags.DEFINE_enum(
    "augment",
    "crop_flip",
    training.AUGMENTATIONS,
    "crop: random crop after zero padding of resolution/8; scale: the image shown at a random smaller size on a "
    "black canvas (what a lower input resolution shows the model); rrc: ImageNet's random-resized-crop; _flip adds "
    "a random horizontal flip. Default: crop_flip.",
)
flags.DEFINE_float(
    "min_scale",
    None,
    "Smallest scale of --augment=scale (side fraction) or rrc (area fraction). Default: 0.75 for scale, 0.25 for rrc.",
)
flags.DEFINE_integer("seed", 0, "Seed of the weights, shuffle and augmentation. Default: 0.")
flags.DEFINE_enum("precision", "float32", PRECISIONS, "What the model computes in while training: float32, or mixed bfloat16/float16 (float32 weights; the saved model is float32). Default: float32.")
flags.DEFINE_enum(
    "strategy", "default", distribute.STRATEGIES, "tf.distribute strategy. Default: default."
)
flags.DEFINE_string("tpu", "", "TPU address or name for --strategy=tpu. Default: local.")
flags.DEFINE_integer("verbose", 1, "1 progress bar, 2 one line per epoch, 0 nothing. Default: 1.")


def main(argv):
    del argv
    if FLAGS.arch is None or FLAGS.dataset is None:
        raise ValueError(
            "--arch and --dataset are required. "
            f"Received arch={FLAGS.arch!r}, dataset={FLAGS.dataset!r}"
        )
    spec = registry.get_arch(FLAGS.arch)  # bad input fails before any data is read
    spec.check(FLAGS.resolution)  # its smallest size, and a multiple of its total stride (a U-Net)
    if FLAGS.epochs < 1:
        raise ValueError(f"--epochs should be a positive integer. Received epochs={FLAGS.epochs}")
    output = FLAGS.output or os.path.join(
        training.CHECKPOINTS_DIR, training.checkpoint_name(spec.name, FLAGS.dataset, FLAGS.resolution))
    if not output.endswith((".keras", ".h5")):
        raise ValueError(f"--output should be a .keras or .h5 file. Received output={output!r}")
    strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)  # before any other TF op
    load = dict(data_dir=FLAGS.data_dir, download=FLAGS.download)
    train_source = data.load_source(FLAGS.dataset, split=FLAGS.train_split, **load)
    val_source = None
    if FLAGS.val_dataset or not FLAGS.dataset.startswith("folder:"):
        val_source = data.load_source(
            FLAGS.val_dataset or FLAGS.dataset, split=FLAGS.val_split, **load
        )
    if FLAGS.verbose:
        n = min(train_source.num_examples, FLAGS.num_train_examples or train_source.num_examples)
        val = f"{val_source.name} ({val_source.split})" if val_source else "nothing"
        print(
            f"Training {spec.name} at {FLAGS.resolution}px on {n} images of {train_source.name} "
            f"({train_source.split}) for {FLAGS.epochs} epoch(s) of batch {FLAGS.batch_size}; "
            f"validating on {val}."
        )
    result = training.train_arch(
        spec.name,
        train_source,
        val_source,
        resolution=FLAGS.resolution,
        epochs=FLAGS.epochs,
        output=output,
        batch_size=FLAGS.batch_size,
        augment=FLAGS.augment,
        min_scale=FLAGS.min_scale,
        seed=FLAGS.seed,
        num_train_examples=FLAGS.num_train_examples,
        num_validation_examples=FLAGS.num_validation_examples,
        bn_momentum=FLAGS.bn_momentum,
        precision=FLAGS.precision,
        strategy=strategy,
        work_dir=FLAGS.work_dir,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        weight_decay=FLAGS.weight_decay,
        label_smoothing=FLAGS.label_smoothing,
        validation_freq=FLAGS.validation_freq,
        verbose=FLAGS.verbose,
    )
    if not distribute.is_chief(strategy):
        print("Trained as a worker; the chief writes the model and the log.")
        return
    print(f"Saved {result.output} (log: {os.path.join(result.work_dir, training.LOG_NAME)}).")
    if result.metrics:
        print(reproduce_message(spec, val_source, result, FLAGS.resolution))


def reproduce_message(spec, val_source, result, resolution):
    """The final accuracy and the experiments.reduce commands that reproduce it."""
    args = f"--dataset={val_source.name}"
    if val_source.split:
        args += f" --split={val_source.split}"
    if FLAGS.num_validation_examples:
        args += f" --num_examples={FLAGS.num_validation_examples}"
    return (
        f"Final {'mIoU' if 'miou' in result.metrics else 'accuracy'} on {val_source.name} {val_source.split or ''} at "
        f"{resolution}px: {100 * result.metrics.get('miou', result.metrics.get('accuracy')):.2f}% "
        f"(loss {result.metrics['loss']:.4f}). "
        "experiments.reduce reproduces it at the native resolution:\n"
        f"  python -m experiments.reduce --arch={spec.name} --weights={result.output} {args}\n"
        f"  python -m experiments.reduce --model_path={result.output} "
        f"--preprocess={spec.preprocess} {args}"
    )


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError, data.DataError))
