"""One path from a model's name to the model a sweep runs: `--weights=auto` picks the weights
that fit the data (ImageNet's for ImageNet labels, else the checkpoint trained on the dataset by
the architecture's recipe, or an error printing the command that trains it), and a model whose
outputs do not fit the dataset's labels is refused before anything is downloaded or run."""

import functools
import os

import pytest
import tensorflow_datasets as tfds
from absl import flags

from reswise_tf import data, models, training
from reswise_tf.data import LabelMismatchError, Labels
from reswise_tf.models import SmallResNet
from reswise_tf.workflows import model_choice
from tests.helpers import tiny_classifier

TINY = models.ArchSpec("tiny_choice_net", functools.partial(SmallResNet, depths=(1, 1), widths=(8, 16), stem_stride=1),
                       native_resolution=16, preprocess="tf")
CIFAR10 = Labels("cifar10", 10)


@pytest.fixture
def tiny():
    models.register_arch(TINY)
    training.RECIPES[TINY.name] = training.Recipe(16, epochs=1, augment="scale_flip")
    yield TINY
    del training.RECIPES[TINY.name]
    models.unregister_arch(TINY.name)


def test_auto_weights_are_imagenet_only_for_imagenet_labels():
    for labels in (Labels("imagenet2012", 1000, "imagenet"), Labels("folder:/val", 1000, "imagenet"),
                   Labels("folder:/val", 5, "ids")):
        assert model_choice.resolve_weights("resnet50", "auto", labels) == "imagenet"
    assert model_choice.resolve_weights("resnet50", "none", CIFAR10) == "none"
    assert data.dataset_labels("imagenet2012") == Labels("imagenet2012", 1000, "imagenet")
    assert data.dataset_labels("cifar10") == CIFAR10  # from the builder's description: nothing is read


def test_auto_weights_find_the_checkpoint_by_the_one_naming_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = training.checkpoint_name("nasnet", "cifar10", 32)
    assert name == "nasnetmobile_cifar10_32.keras"  # the registered name, not the alias
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / name).write_bytes(b"")
    assert model_choice.resolve_weights("nasnet", "auto", CIFAR10, str(tmp_path / "mine")) == os.path.join(
        "checkpoints", name)  # experiments.train's default output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / name).write_bytes(b"")
    assert model_choice.resolve_weights("nasnet", "auto", CIFAR10, str(tmp_path / "mine")) == str(
        tmp_path / "mine" / name)  # --checkpoint_dir first


def test_the_shipped_checkpoints_are_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels = Labels("fashion_mnist", 10)
    for arch in ("nasnet", "mobilenet_v2", "resnet18_small"):
        path = model_choice.resolve_weights(arch, "auto", labels)
        assert os.path.isfile(path) and os.path.dirname(path) == training.PRETRAINED_DIR


def test_a_missing_checkpoint_prints_the_command_that_trains_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(model_choice.MissingCheckpointError) as e:
        model_choice.resolve_weights("nasnet", "auto", CIFAR10)
    recipe = training.recipe_for("nasnet")
    assert e.value.command == (f"python -m experiments.train --arch=nasnetmobile --dataset=cifar10 "
                               f"{' '.join(recipe.train_flags())} --output=checkpoints/nasnetmobile_cifar10_32.keras")
    assert e.value.command in str(e.value) and "--train_missing" in str(e.value)
    with pytest.raises(model_choice.MissingCheckpointError, match="not prepared"):  # and how to get the data
        model_choice.open_model_and_data("cifar10", arch="nasnet", data_dir=str(tmp_path / "tfds"))


def test_outputs_that_do_not_fit_the_labels_are_refused_before_a_download(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("the weights were asked for")

    monkeypatch.setattr(models.ArchSpec, "build", no_download)
    with pytest.raises(LabelMismatchError, match=r"`weights` has 1000 outputs, but dataset 'cifar10' needs 10"):
        model_choice.open_model(CIFAR10, arch="resnet50", weights="imagenet")
    monkeypatch.undo()
    path = str(tmp_path / "three.keras")
    tiny_classifier(16, classes=3).save(path)
    with pytest.raises(LabelMismatchError, match=r"`model_path` has 3 outputs, but dataset 'cifar10' needs 10"):
        model_choice.open_model(CIFAR10, model_path=path)
    with pytest.raises(LabelMismatchError, match="ImageNet's 1000 outputs"):
        model_choice.open_model(Labels("imagenet2012", 1000, "imagenet"), model_path=path)
    ids = Labels("folder:/x", 3, "ids")  # integer folders 0..2: ids of the model's own classes
    assert model_choice.open_model(ids, model_path=path).num_outputs == 3
    with pytest.raises(LabelMismatchError, match="at least 4 outputs"):
        model_choice.open_model(Labels("folder:/x", 4, "ids"), model_path=path)


def test_overrides_and_the_architecture_facts_travel_on_the_loaded_model(tmp_path):
    path = str(tmp_path / "ten.keras")
    tiny_classifier(16, classes=10).save(path)
    loaded = model_choice.open_model(CIFAR10, arch="mobilenet_v2", weights=path)
    assert (loaded.preprocess, loaded.crop_pct, loaded.native_resolution) == ("tf", 0.875, 16)
    loaded = model_choice.open_model(CIFAR10, model_path=path, preprocess="caffe", crop_pct=1.0)
    assert (loaded.preprocess, loaded.crop_pct, loaded.min_resolution) == ("caffe", 1.0, 1)
    with pytest.raises(ValueError, match="Unknown preprocess mode 'bgr'"):
        model_choice.open_model(CIFAR10, model_path=path, preprocess="bgr")


def _reduce(argv):
    from experiments import reduce

    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        reduce.main(argv[:1])
    finally:
        flags.FLAGS.unparse_flags()


def test_the_thesis_command_on_cifar10_trains_its_checkpoint_then_finds_it(tiny, tmp_path, monkeypatch, capsys):
    """`python -m experiments.reduce --arch=A --dataset=cifar10` (weights auto), on TFDS mock data
    and a tiny registered architecture: a missing checkpoint is an error naming the train
    command; --train_missing trains it by the recipe into checkpoints/; the next run finds it."""
    monkeypatch.chdir(tmp_path)
    argv = ["reduce", f"--arch={TINY.name}", "--dataset=cifar10", "--resolutions=12,8", "--batch_size=8",
            f"--checkpoint_dir={tmp_path / 'none'}", "--output_dir=out", "--verbose=0"]
    with tfds.testing.mock_data(num_examples=16):
        with pytest.raises(model_choice.MissingCheckpointError, match=f"--arch={TINY.name} --dataset=cifar10"):
            _reduce(argv)
        _reduce(argv + ["--train_missing"])
        checkpoint = tmp_path / "checkpoints" / f"{TINY.name}_cifar10_16.keras"
        assert checkpoint.is_file()
        record = training.training_record(str(checkpoint))
        assert record["config"]["augment"] == "scale_flip" and record["config"]["min_scale"] == 0.75
        stamp = checkpoint.stat().st_mtime
        _reduce(argv)
    assert checkpoint.stat().st_mtime == stamp  # found, not trained again
    with open(tmp_path / "out" / "results.csv") as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["16", "12", "8"]


@pytest.mark.skipif(not os.path.isdir(data.DEBIAN_FASHION_MNIST), reason="Debian's dataset-fashion-mnist is not installed")
def test_a_checkpoint_trained_on_the_data_served_otherwise_is_named(tmp_path):
    """A checkpoint whose training record says it saw Fashion-MNIST without the 32-px canvas
    (the images as stored) warns when evaluated on the canvas, naming both."""
    import json
    import warnings

    path = tmp_path / "old.keras"
    tiny_classifier(32, classes=10).save(path)
    record = {"config": {"dataset": "fashion_mnist"}, "log": [], "metrics": {}}
    (tmp_path / "old.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=r"old.keras was trained on fashion_mnist as stored, but is evaluated on it "
                                         r"on a 32-px canvas"):
        model_choice.open_model_and_data("fashion_mnist", model_path=str(path))
    (tmp_path / "old.json").write_text(json.dumps({**record, "config": {"dataset": "fashion_mnist", "canvas": 32}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model_choice.open_model_and_data("fashion_mnist", model_path=str(path))
