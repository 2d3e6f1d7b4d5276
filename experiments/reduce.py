"""Evaluates a trained classifier at lower input resolutions: accuracy, FLOPs, speed.

  python -m experiments.reduce --arch=nasnet --dataset=cifar10          # the thesis's Table 1
  python -m experiments.reduce --arch=nasnet --dataset=fashion_mnist    # its offline twin
  python -m experiments.reduce --arch=resnet50 --dataset=imagenet2012 --output_dir=results/r50
  python -m experiments.reduce --model_path=my_model.keras --dataset=folder:/data/val \
      --resolutions=224,192,160
"""

from absl import flags

from experiments import common
from reswise_tf import data
from reswise_tf.evaluation import SweepConfig, SweepMismatchError
from reswise_tf.models import RescaleError, registry
from reswise_tf.runtime import distribute
from reswise_tf.runtime.precision import PRECISIONS
from reswise_tf.workflows import model_choice, run_reduce

FLAGS = flags.FLAGS
flags.DEFINE_string("arch", None, "Registered architecture: a keras.applications constructor in lower case (resnet50, mobilenetv2, efficientnetb0, convnexttiny, ...; `python -m experiments.flops --arch=all` lists them) or resnet18_small. Default: None.")
flags.DEFINE_string("weights", "auto", "With --arch: auto (ImageNet weights where the dataset has ImageNet's labels, else the checkpoint trained on the dataset by the architecture's recipe, from --checkpoint_dir or checkpoints/), imagenet, none, or a checkpoint (.keras, .h5, .weights.h5). Default: auto.")
flags.DEFINE_string("checkpoint_dir", None, "Where --weights=auto looks first for ARCH_DATASET_RESOLUTION.keras (then in checkpoints/, experiments.train's default). Default: the project's pretrained/.")
flags.DEFINE_bool("train_missing", False, "With --weights=auto, train a missing checkpoint first by the architecture's recipe (into checkpoints/). Default: False.")
flags.DEFINE_string("model_path", None, "Any Keras classifier or segmenter file (.keras or .h5) instead of --arch. Default: None.")
flags.DEFINE_string("hub_preset", None, "A keras-hub image classifier preset (e.g. resnet_50_imagenet; downloaded on first use) instead of --arch: normalised by its own image converter, native at its image size. Default: None.")
flags.DEFINE_integer("native_resolution", None, "Resolution the model was trained at. Default: the model's input size.")
flags.DEFINE_string("preprocess", None, "preprocess_input mode: caffe, tf, torch, none. Default: the architecture's (none for --model_path).")
flags.DEFINE_float("crop_pct", None, "Centre-crop fraction for ImageNet-size images. Default: the architecture's (0.875).")
flags.DEFINE_string("dataset", None, "TFDS name (cifar10, imagenet2012, fashion_mnist, oxford_iiit_pet, ...), fashion_mnist_scenes, or folder:PATH (class folders, or images/ and masks/ of a segmentation). Default: None.")
flags.DEFINE_string("split", None, "Split to evaluate. Default: validation if the dataset has one, else test.")
flags.DEFINE_string("data_dir", None, "TFDS data directory. Default: ~/tensorflow_datasets.")
flags.DEFINE_bool("download", False, "Let TFDS download and prepare the dataset. Default: False.")
flags.DEFINE_bool("skip_bad_images", False, "Skip (and count) unreadable images of a folder. Default: False.")
flags.DEFINE_string("resolutions", None, "Comma-separated resolutions. Default: 224,210,...,140 for 224-px models, 32,28,...,12 for 32-px models, else the native one with 7/8, 3/4, 5/8, 1/2 of it.")
flags.DEFINE_string("output_dir", "results/reduce", "Where the prediction cache, results.csv/.md and figures go. Default: results/reduce.")
flags.DEFINE_integer("num_examples", None, "Evaluate only the first N examples. Default: all.")
flags.DEFINE_integer("batch_size", 32, "Global batch size. Default: 32.")
flags.DEFINE_integer("topk", 5, "k of the top-k accuracy column. Default: 5.")
flags.DEFINE_enum("strategy", "default", distribute.STRATEGIES, "tf.distribute strategy. Default: default.")
flags.DEFINE_string("tpu", "", "TPU address or name for --strategy=tpu. Default: local.")
flags.DEFINE_integer("recalibrate_bn", 0, "Also evaluate every resolution with BatchNorm statistics re-estimated on this many training images (0: off). Default: 0.")
flags.DEFINE_string("bn_dataset", None, "Dataset of the BatchNorm images (TFDS name or folder:PATH). Default: --dataset.")
flags.DEFINE_string("bn_split", "train", "Split of the BatchNorm images; never the evaluated one. Default: train.")
flags.DEFINE_bool("measure_latency", False, "Add median batch-1 and batch-32 latency and speed-up per resolution. Default: False.")
flags.DEFINE_integer("latency_repeats", 20, "Timed forward passes per resolution and batch size. Default: 20.")
flags.DEFINE_enum("head", None, ["adaptive_pool"], "adaptive_pool: a classifier on a flattened feature map (VGG) runs at other sizes with that map average-pooled to its trained grid (torchvision's AdaptiveAvgPool2d); the tables say so. Default: None (such a model is refused at other sizes).")
flags.DEFINE_enum("precision", "float32", PRECISIONS, "What the model computes in: float32, or mixed bfloat16/float16 (float32 weights and probabilities). Default: float32.")
flags.DEFINE_bool("compare_precision", False, "With a reduced --precision, also evaluate in float32 in the same pass and report the top-1 agreement per resolution. Default: False.")
flags.DEFINE_integer("verbose", 1, "1 shows progress, 0 nothing. Default: 1.")


def main(argv):
    del argv
    if sum(x is not None for x in (FLAGS.arch, FLAGS.model_path, FLAGS.hub_preset)) != 1:
        raise ValueError("Pass exactly one of --arch, --model_path and --hub_preset. "
                         f"Received arch={FLAGS.arch!r}, model_path={FLAGS.model_path!r}, hub_preset={FLAGS.hub_preset!r}")
    if FLAGS.dataset is None:
        raise ValueError("--dataset is required: a TFDS name or folder:PATH")
    if FLAGS.arch:
        registry.get_arch(FLAGS.arch)  # unknown names fail before any data is read
    resolutions = common.parse_resolutions(FLAGS.resolutions) if FLAGS.resolutions else None
    strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)  # before any other TF op
    with strategy.scope():
        loaded, source = model_choice.open_model_and_data(
            FLAGS.dataset, split=FLAGS.split, data_dir=FLAGS.data_dir, download=FLAGS.download,
            skip_bad_images=FLAGS.skip_bad_images, train_missing_checkpoint=FLAGS.train_missing,
            verbose=FLAGS.verbose, arch=FLAGS.arch, weights=FLAGS.weights, model_path=FLAGS.model_path,
            hub_preset=FLAGS.hub_preset,
            checkpoint_dir=FLAGS.checkpoint_dir, native_resolution=FLAGS.native_resolution,
            preprocess=FLAGS.preprocess, crop_pct=FLAGS.crop_pct)
    if resolutions is None:
        resolutions = registry.default_resolutions(loaded.native_resolution, loaded.min_resolution,
                                                   loaded.size_multiple)
        below = sorted(set(registry.default_resolutions(loaded.native_resolution, 1, loaded.size_multiple))
                       - set(resolutions), reverse=True)
        if below and FLAGS.verbose:
            print(f"Note: {', '.join(map(str, below))} px of the default sizes are below the model's smallest size "
                  f"({loaded.min_resolution} px) and are left out.")
    config = SweepConfig(resolutions=resolutions, batch_size=FLAGS.batch_size, topk=FLAGS.topk,
                         num_examples=FLAGS.num_examples, precision=FLAGS.precision, head=FLAGS.head)
    bn_source = None
    if FLAGS.recalibrate_bn < 0:
        raise ValueError(f"--recalibrate_bn should be >= 0. Received {FLAGS.recalibrate_bn}")
    if FLAGS.recalibrate_bn:
        bn_source = data.load_source(FLAGS.bn_dataset or FLAGS.dataset, split=FLAGS.bn_split,
                                     data_dir=FLAGS.data_dir, download=FLAGS.download)
    rows = run_reduce(loaded, source, config, FLAGS.output_dir, strategy=strategy, verbose=FLAGS.verbose,
                      bn_source=bn_source, bn_images=FLAGS.recalibrate_bn,
                      measure_latency=FLAGS.measure_latency, latency_repeats=FLAGS.latency_repeats,
                      compare_precision=FLAGS.compare_precision)
    if rows is None:
        print(f"Evaluated this worker's share of the images; the chief writes {FLAGS.output_dir}.")
        return
    with open(f"{FLAGS.output_dir}/results.md") as f:
        print(f.read())
    print(f"Wrote {FLAGS.output_dir}/results.csv ({len(rows)} rows), results.md and figures.")


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError, data.DataError, RescaleError, SweepMismatchError))
