"""Prints the exact FLOPs of a classifier at several resolutions, as CSV; no data needed.

  python -m experiments.flops --arch=resnet50 --resolutions=224,210,196,182,168,154,140
  python -m experiments.flops --arch=all      # every registered architecture at its native size

Columns: resolution, macs (multiply-accumulates per image), flops (= 2 x macs),
flops_drop_pct (percent of the native FLOPs saved). With --arch=all: arch,
native_resolution, min_resolution, macs, gmacs (1000 classes unless --classes).
"""

import sys

from absl import flags

from experiments import common
from reswise_tf import models
from reswise_tf.cost import count_macs
from reswise_tf.models import RescaleError, registry, rescale
from reswise_tf.report import tables

FLAGS = flags.FLAGS
flags.DEFINE_string("arch", None, "Registered architecture: a keras.applications constructor in lower case (resnet50, mobilenetv2, efficientnetb0, convnexttiny, ...; `python -m experiments.flops --arch=all` lists them) or resnet18_small. Default: None.")
flags.DEFINE_string("model_path", None, "Any Keras classifier file (.keras or .h5) instead of --arch. Default: None.")
flags.DEFINE_integer("classes", 1000, "Output classes of the --arch model (weights are random; FLOPs only). Default: 1000.")
flags.DEFINE_integer("native_resolution", None, "The reference resolution. Default: the architecture's (224) or the model's input size.")
flags.DEFINE_string("resolutions", None, "Comma-separated resolutions. Default: the native one with 7/8, 3/4, 5/8, 1/2 of it (224,210,...,140 for 224).")
flags.DEFINE_enum("head", None, ["adaptive_pool"], "adaptive_pool: pool a flattened classifier's feature map (VGG) to its trained grid at other sizes. Default: None.")


def all_archs():
    """One CSV row per registered architecture: its MACs per image at its native size."""
    rows = []
    for name, spec in sorted(registry.ARCHITECTURES.items()):
        macs = count_macs(spec.build(spec.native_resolution, classes=FLAGS.classes))
        rows.append({"arch": name, "native_resolution": spec.native_resolution,
                     "min_resolution": spec.min_resolution, "macs": macs, "gmacs": round(macs / 1e9, 4)})
        sys.stdout.write(tables.to_csv(rows) if len(rows) == 1 else tables.to_csv(rows).splitlines()[-1] + "\n")
        sys.stdout.flush()


def main(argv):
    del argv
    if (FLAGS.arch is None) == (FLAGS.model_path is None):
        raise ValueError("Pass exactly one of --arch and --model_path. "
                         f"Received arch={FLAGS.arch!r}, model_path={FLAGS.model_path!r}")
    if FLAGS.arch == "all":
        return all_archs()
    if FLAGS.arch:
        loaded = models.load_arch(FLAGS.arch, "none", classes=FLAGS.classes,
                                  native_resolution=FLAGS.native_resolution)
    else:
        loaded = models.load_user_model(FLAGS.model_path, native_resolution=FLAGS.native_resolution)
    native = loaded.native_resolution
    resolutions = common.parse_resolutions(FLAGS.resolutions) if FLAGS.resolutions else registry.default_resolutions(native)
    macs = {r: count_macs(rescale(loaded.model, r, arch=loaded.arch, head=FLAGS.head))
            for r in sorted({native, *resolutions})}
    sys.stdout.write(tables.to_csv(tables.flops_rows(macs, native)))


if __name__ == "__main__":
    common.run_main(main, (ValueError, FileNotFoundError, RescaleError))
