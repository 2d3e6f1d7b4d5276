"""End-to-end runs of the command-line scripts, and their answers to bad input."""

import csv
import os

import pytest
import tensorflow_datasets as tfds
from absl import flags

from reswise_tf.data import DEBIAN_FASHION_MNIST
from tests.helpers import run_module, tiny_classifier, write_image_folder

COLUMNS = "resolution,macs,flops,flops_drop_pct,top1,top{k},top1_drop,top{k}_drop,num_examples".split(",")


def run_cli(module, *args):
    return run_module(f"experiments.{module}", *args)


def _check_outputs(out, resolutions, n, k=5):
    """The files of a sweep; `k` is the top-k of its columns (the model's classes when fewer)."""
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["resolution"]) for r in rows] == resolutions
    for column in COLUMNS + ["images_per_sec"]:
        assert column.format(k=k) in rows[0]
    assert all(int(r["num_examples"]) == n for r in rows)
    assert float(rows[0]["flops_drop_pct"]) == 0.0 and float(rows[0]["top1_drop"]) == 0.0
    assert all(float(a["flops"]) > float(b["flops"]) for a, b in zip(rows, rows[1:]))
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    assert "| Resolution | FLOPs Drop (%) |" in md and f"| {resolutions[-1]}x{resolutions[-1]} |" in md
    for png in ("accuracy_vs_resolution.png", "accuracy_vs_flops.png"):
        with open(os.path.join(out, png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return rows


def test_reduce_on_tfds_mock_data(tmp_path):
    from experiments import reduce

    out = str(tmp_path / "out")
    argv = ["reduce", "--arch=mobilenet_v2", "--weights=none", "--dataset=cifar10", "--native_resolution=32",
            "--resolutions=24,16", f"--output_dir={out}", "--batch_size=8", "--verbose=0"]
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        with tfds.testing.mock_data(num_examples=12):
            reduce.main(argv[:1])
    finally:
        flags.FLAGS.unparse_flags()
    rows = _check_outputs(out, [32, 24, 16], 12)
    assert float(rows[-1]["flops_drop_pct"]) > 50


def test_reduce_on_an_image_folder_with_a_user_model(tmp_path):
    data = str(tmp_path / "val")
    write_image_folder(data, [0, 1, 2], per_class=3, size=(50, 40), ext=".jpg")
    model_path = str(tmp_path / "tiny.keras")
    tiny_classifier(16, classes=3).save(model_path)
    out = str(tmp_path / "out")
    args = [f"--model_path={model_path}", f"--dataset=folder:{data}", "--resolutions=16,12,8",
            "--preprocess=tf", f"--output_dir={out}", "--batch_size=4"]
    result = run_cli("reduce", *args)
    assert result.returncode == 0, result.stderr
    assert "| 8x8 |" in result.stdout
    rows = _check_outputs(out, [16, 12, 8], 9, k=3)  # a 3-class model: its "top-5" is top-3
    assert "top5" not in rows[0] and float(rows[0]["top3"]) == 100.0
    # Run again: everything comes from the cache, same accuracy columns.
    with open(os.path.join(out, "results.csv")) as f:
        before = f.read()
    again = run_cli("reduce", *args)
    assert again.returncode == 0, again.stderr
    assert "Evaluating" not in again.stdout  # nothing left to evaluate
    with open(os.path.join(out, "results.csv")) as f:
        assert f.read() == before


def test_flops_cli_prints_csv_without_data():
    result = run_cli("flops", "--arch=mobilenet_v2", "--resolutions=224,112")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "resolution,macs,flops,flops_drop_pct"
    assert lines[1].startswith("224,300774272,601548544,0.0")  # Keras MobileNetV2: 300.8 M MACs
    assert lines[2].startswith("112,")


# Each case is a subprocess that imports TensorFlow (~5 s): the default run keeps an unknown
# name, a missing file, label sets that do not fit and the thesis's command without its data; the
# rest are `slow` (in-process tests check the undecodable image and the unknown dataset too).
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "args,message",
    [
        (["--arch=vgg", "--dataset=cifar10"], "Unknown architecture 'vgg'. Available: convnextbase"),
        pytest.param(["--arch=resnet50", "--model_path=x.keras", "--dataset=cifar10"], "exactly one of --arch, --model_path and --hub_preset", marks=SLOW),
        pytest.param(["--arch=resnet50", "--weights=none", "--dataset=cifar10", "--resolutions=224,abc"], "--resolutions should be", marks=SLOW),
        pytest.param(["--arch=nasnet", "--weights=none", "--native_resolution=32", "--dataset=folder:{data}",
          "--resolutions=32,18"], ">= 19 for architecture 'nasnetmobile'", marks=SLOW),
        pytest.param(["--model_path={flat}", "--dataset=folder:{data}"], "no global pooling.*'flat' \\(Flatten\\)", marks=SLOW),
        (["--model_path={tmp}/missing.keras", "--dataset=folder:{data}"], "Model file not found"),
        pytest.param(["--model_path={tmp}/model.txt", "--dataset=folder:{data}"], "should be a .keras or .h5 model file", marks=SLOW),
        pytest.param(["--arch=resnet50", "--weights=none", "--dataset=no_such_dataset"], "Unknown dataset 'no_such_dataset'", marks=SLOW),
        pytest.param(["--arch=resnet50", "--weights=none", "--dataset=cifar10", "--data_dir={tmp}/tfds"], "not prepared.*--download", marks=SLOW),
        pytest.param(["--arch=resnet50", "--weights=none", "--dataset=folder:{tmp}/nowhere"], "does not exist", marks=SLOW),
        pytest.param(["--model_path={tiny}", "--dataset=folder:{bad}", "--resolutions=16"], "Cannot decode image .*broken.png", marks=SLOW),
        # Label sets that do not fit, refused before any download or forward pass.
        (["--arch=resnet50", "--weights=imagenet", "--dataset=cifar10"],
         "`weights` has 1000 outputs, but dataset 'cifar10' needs 10 outputs"),
        pytest.param(["--model_path={tiny}", "--dataset=folder:{named}"], "`model_path` has 2 outputs, but dataset .* needs 3", marks=SLOW),
        (["--arch=nasnet", "--dataset=cifar10", "--data_dir={tmp}/tfds"],
         "not prepared(.|\n)*Then: No checkpoint of nasnetmobile trained on cifar10(.|\n)*"
         "python -m experiments.train --arch=nasnetmobile --dataset=cifar10 --resolution=32"),
    ],
)
def test_bad_input_is_a_one_line_error_without_traceback_and_writes_nothing(tmp_path, args, message):
    import re

    tmp = str(tmp_path)
    write_image_folder(f"{tmp}/data", [0, 1], per_class=1)
    write_image_folder(f"{tmp}/named", ["cat", "dog", "eel"], per_class=1)
    write_image_folder(f"{tmp}/bad", [0], per_class=2)
    with open(f"{tmp}/bad/0/broken.png", "wb") as f:
        f.write(b"nope")
    tiny_classifier(16, classes=2).save(f"{tmp}/tiny.keras")
    import keras

    inputs = keras.Input((16, 16, 3))
    flat = keras.layers.Flatten(name="flat")(keras.layers.Conv2D(2, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(2)(flat)).save(f"{tmp}/flat.keras")
    open(f"{tmp}/model.txt", "w").close()
    names = {"tmp": tmp, "data": f"{tmp}/data", "bad": f"{tmp}/bad", "flat": f"{tmp}/flat.keras",
             "tiny": f"{tmp}/tiny.keras", "named": f"{tmp}/named"}
    out = f"{tmp}/out"
    result = run_cli("reduce", *[a.format(**names) for a in args], f"--output_dir={out}", "--verbose=0")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr
    if "broken" not in message:
        assert not os.path.exists(out)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_MNIST), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_thesis_command_offline_runs_the_shipped_checkpoint(tmp_path):
    """`python -m experiments.reduce --arch=nasnet --dataset=fashion_mnist`: no other flag needed
    (here only fewer images and an output folder): the shipped checkpoint, the thesis's sizes
    down to NASNetMobile's smallest, and a note naming the sizes left out."""
    out = str(tmp_path / "out")
    result = run_cli("reduce", "--arch=nasnet", "--dataset=fashion_mnist", "--num_examples=64", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "Note: 16, 12 px of the default sizes are below the model's smallest size (19 px)" in result.stdout
    rows = _check_outputs(out, [32, 28, 24, 20], 64)
    assert float(rows[0]["top1"]) > 80  # the trained checkpoint, not random weights
