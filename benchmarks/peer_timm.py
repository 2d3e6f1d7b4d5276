"""The peer in the repo: timm's one-pass-per-size evaluation against our sweep, same images,
same sizes, same precision, measured side by side in one run.

  pip install -e ".[bench]"        # timm and torch (never needed by the tests)
  python -m benchmarks.peer_timm --num_images=1000
  python -m benchmarks.peer_timm --arch=mobilenetv2 --precisions=float32,bfloat16

timm, as its validate.py evaluates: `create_model(name, pretrained=False)`, `resolve_data_config`
with crop_pct 0.875 and the size, `create_transform`, torchvision's `ImageFolder` and a
`DataLoader(batch_size=32, num_workers=2)`, `model.eval()` under `torch.inference_mode()` (and
`torch.autocast("cpu", torch.bfloat16)` for bfloat16): one full pass over the folder per size.
Ours: one `reswise_tf.evaluation.resolution_sweep` of the same folder at all sizes (random weights; Keras'
architecture of the same name). Printed: seconds of each and the speed-up (timm / ours).
"""

import os
import subprocess
import sys

from absl import flags

from benchmarks.common import jpeg_folder, loaded_arch, time_sweep
from experiments import common
from reswise_tf import data
from reswise_tf.evaluation import SweepConfig
from reswise_tf.models import registry

FLAGS = flags.FLAGS
flags.DEFINE_string("arch", "resnet50", "resnet50 or mobilenetv2 (timm's resnet50 / mobilenetv2_100). Default: resnet50.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "float32 and/or bfloat16. Default: float32,bfloat16.")
flags.DEFINE_integer("num_images", 256, "JPEGs generated and evaluated. Default: 256.")
flags.DEFINE_string("resolutions", "224,210,196,182,168,154,140", "Comma-separated resolutions. Default: 224,210,196,182,168,154,140.")
flags.DEFINE_integer("batch_size", 32, "Batch size of both. Default: 32.")
flags.DEFINE_integer("workers", 2, "timm's DataLoader workers. Default: 2.")
flags.DEFINE_string("image_dir", None, "Where the JPEGs go (reused when it holds --num_images of them). Default: a temporary folder.")

TIMM_NAMES = {"resnet50": "resnet50", "mobilenetv2": "mobilenetv2_100"}


def timm_seconds(name, folder, resolutions, precision):
    """Wall seconds of timm's evaluation (one pass over `folder` per resolution), measured in
    a process of its own by `timm_pass.py` (torchvision crashes imported after TensorFlow)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "timm_pass.py")
    args = [name, folder, ",".join(map(str, resolutions)), precision, str(FLAGS.batch_size), str(FLAGS.workers)]
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"timm's evaluation failed (is the [bench] extra installed?):\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.arch not in TIMM_NAMES:
        raise ValueError(f"Unknown --arch {FLAGS.arch!r}. Available: {', '.join(TIMM_NAMES)}")
    for p in FLAGS.precisions:
        if p not in ("float32", "bfloat16"):
            raise ValueError(f"Unknown precision {p!r} in --precisions. Available: float32, bfloat16")
    spec = registry.get_arch(FLAGS.arch)
    resolutions = common.parse_resolutions(FLAGS.resolutions)
    with jpeg_folder(FLAGS.image_dir, FLAGS.num_images) as (image_dir, _):
        source = data.folder_source(image_dir)
        _, loaded = loaded_arch(spec)
        print(f"{FLAGS.num_images} JPEGs, {FLAGS.arch}, batch {FLAGS.batch_size}, sizes {','.join(map(str, resolutions))}, "
              f"{os.cpu_count()} CPU cores")
        for precision in FLAGS.precisions:
            config = SweepConfig(resolutions=resolutions, crop_pct=0.875, batch_size=FLAGS.batch_size,
                                 precision=precision)
            ours = time_sweep(loaded, source, config)
            theirs = timm_seconds(TIMM_NAMES[FLAGS.arch], image_dir, resolutions, precision)
            print(f"{precision:<9} timm {theirs:8.1f} s   reswise sweep {ours:8.1f} s   speed-up {theirs / ours:.2f}x")


if __name__ == "__main__":
    common.run_main(main, (ValueError,))
