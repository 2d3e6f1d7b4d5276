"""Training from scratch: input pipeline, interrupted and resumed runs, reloading, the sweep
reproducing the trainer's accuracy, and the command line's answers to bad input.

The model is a two-stage `SmallResNet` registered for the tests only; the data are generated
28-px grayscale images like Fashion-MNIST's (class 0 bright at the top, class 1 at the bottom,
which a horizontal flip does not change).
"""

import csv
import functools
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from reswise_tf import data, models
from reswise_tf import training as train_lib
from reswise_tf.data import preprocessing
from reswise_tf.data.source import IGNORE_LABEL
from reswise_tf.evaluation import SweepConfig, sweep
from reswise_tf.models import ResNet18Small, SmallResNet
from tests.helpers import generated_source, run_module, write_image_folder

TINY = models.ArchSpec(
    "tiny_resnet_for_tests",
    functools.partial(SmallResNet, depths=(1, 1), widths=(8, 16), stem_stride=1),
    native_resolution=32,
    preprocess="tf",
)


class _Interrupt(Exception):
    pass


class _InterruptAtEpoch(keras.callbacks.Callback):
    """Stands in for a killed process: raises when epoch `epoch` (0-based) would begin."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Interrupt(f"interrupted before epoch {epoch}")


def _run(output, epochs=2, callbacks=(), seed=0):
    """One training as experiments.train runs it, on the generated data (validated on the same
    images: the test is about the mechanics, not generalisation)."""
    source = generated_source()
    result = train_lib.train_arch(
        TINY.name,
        source,
        source,
        resolution=32,
        epochs=epochs,
        output=output,
        batch_size=16,
        seed=seed,
        callbacks=callbacks,
        verbose=0,
    )
    return result.model, result


@pytest.fixture(scope="module")
def tiny_arch():
    models.register_arch(TINY)
    yield TINY.name
    models.unregister_arch(TINY.name)


@pytest.fixture(scope="module")
def resumed(tiny_arch, tmp_path_factory):
    """A 2-epoch training interrupted after epoch 1, then run again to the end."""
    output = str(tmp_path_factory.mktemp("train") / "tiny.keras")
    with pytest.raises(_Interrupt):
        _run(output, callbacks=[_InterruptAtEpoch(1)])
    work_dir = train_lib.default_work_dir(output)
    with open(os.path.join(work_dir, "state.json")) as f:
        state = json.load(f)
    after_interrupt = {
        "files": sorted(os.listdir(os.path.dirname(output))),
        "state": state,
        "log": train_lib.read_log(os.path.join(work_dir, train_lib.LOG_NAME)),
    }
    model, result = _run(output)
    return {"output": output, "model": model, "result": result, "interrupted": after_interrupt}


def test_crop_padding_is_4_px_at_32_and_scales_with_resolution():
    assert [train_lib.crop_padding(r) for r in (8, 16, 28, 32, 56, 64)] == [1, 2, 4, 4, 7, 8]


@pytest.mark.parametrize("resolution", [32, 64])
def test_validation_inputs_are_the_sweeps_inputs(resolution):
    source = generated_source(n=8)
    ds = train_lib.train_pipeline(source, resolution, 8, preprocess="tf", training=False)
    images, labels = next(iter(ds))
    fn = preprocessing.multi_resolution_fn([resolution], mode="tf", direct=True, channels=3)
    expected = np.stack([fn(ex)["images"][str(resolution)] for ex in source.dataset])
    np.testing.assert_array_equal(images.numpy(), expected)
    assert images.shape == (8, resolution, resolution, 3)
    np.testing.assert_array_equal(np.argmax(labels, 1), [int(ex["label"]) for ex in source.dataset])


def test_folder_images_are_cropped_as_the_sweep_crops_them(tmp_path):
    write_image_folder(str(tmp_path), ["cat", "dog"], per_class=2, size=(120, 90))
    source = data.load_source(f"folder:{tmp_path}")
    ds = train_lib.train_pipeline(source, 24, 4, preprocess="caffe", crop_pct=0.875, training=False)
    fn = preprocessing.multi_resolution_fn([24], mode="caffe", crop_pct=0.875, channels=3)
    expected = np.stack([fn(ex)["images"]["24"] for ex in source.dataset])
    np.testing.assert_array_equal(next(iter(ds))[0].numpy(), expected)


def test_training_pipeline_augments_reproducibly_with_new_draws_each_epoch():
    source = generated_source(n=40)
    ds = train_lib.train_pipeline(source, 64, 16, preprocess="tf", seed=3)
    epoch1, epoch2 = [[b[0].numpy() for b in ds] for _ in range(2)]
    again = [
        b[0].numpy() for b in train_lib.train_pipeline(source, 64, 16, preprocess="tf", seed=3)
    ]
    assert [b.shape for b in epoch1] == [(16, 64, 64, 3)] * 2  # the partial batch is dropped
    np.testing.assert_array_equal(np.concatenate(epoch1), np.concatenate(again))
    assert not np.array_equal(np.concatenate(epoch1), np.concatenate(epoch2))
    assert float(np.min(epoch1[0])) >= -1.0 and float(np.max(epoch1[0])) <= 1.0


def test_scale_augmentation_shows_the_image_smaller_on_a_black_canvas():
    """What a lower input resolution shows the model: the whole image at a random side between
    min_scale and 1 of its own, at a random position, the rest black; the same seed, the same
    draw."""
    white = tf.fill((32, 32, 3), 255.0)
    sides, corners = [], set()
    for i in range(40):
        out = train_lib.augment_image(white, tf.constant([i, 7], tf.int64), "scale")
        ink = out.numpy()[..., 0] > 127
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        side = rows[-1] - rows[0] + 1
        assert side == cols[-1] - cols[0] + 1 and 24 <= side <= 32  # 0.75..1 of 32 px
        assert int(ink.sum()) == pytest.approx(int(side) ** 2, abs=4 * int(side))  # a square (edges blend)
        sides.append(int(side))
        corners.add((int(rows[0]), int(cols[0])))
    assert len(set(sides)) > 4 and len(corners) > 10  # the side and the position vary
    seed = tf.constant([3, 1], tf.int64)
    np.testing.assert_array_equal(train_lib.augment_image(white, seed, "scale_flip", 0.5),
                                  train_lib.augment_image(white, seed, "scale_flip", 0.5))
    assert min(int((train_lib.augment_image(white, tf.constant([i, 2], tf.int64), "scale", 0.5).numpy() > 127).any(1)
                   .any(1).sum()) for i in range(40)) < 20  # down to half the side with min_scale=0.5


def test_random_resized_crop_zooms_into_a_part_of_the_image():
    ramp = tf.cast(tf.tile(tf.range(32)[None, :, None], (32, 1, 3)) * 8, tf.float32)  # 0 .. 248 left to right
    for i in range(10):
        out = train_lib.augment_image(ramp, tf.constant([i, 5], tf.int64), "rrc").numpy()
        assert out.shape == (32, 32, 3)
        assert np.all(np.diff(out[16, :, 0]) >= -1e-3)  # still a ramp, left to right
        assert out[16, -1, 0] - out[16, 0, 0] <= 248 + 1e-3  # a part of it, stretched
    with pytest.raises(ValueError, match=r"`min_scale` should be in \(0, 1\]. Received min_scale=0"):
        train_lib.augment_image(ramp, tf.constant([0, 0], tf.int64), "rrc", 0)
    assert train_lib.min_scale_of("scale_flip") == 0.75 and train_lib.min_scale_of("crop_flip") is None


@pytest.mark.parametrize("augment", ["crop_flip", "scale_flip", "rrc_flip"])
def test_a_segmentation_mask_moves_with_its_image_and_its_new_border_is_not_scored(augment):
    """Each transform moves the class map as it moves the image (nearest neighbour for the
    map): the labelled pixels stay where the image's ink is, up to the blended edge; the border
    a crop or a shrink adds is the ignore label (it is no class: 0 is the pet of oxford_iiit_pet)."""
    image = np.zeros((32, 32, 3), np.float32)
    image[6:20, 10:28] = 255.0  # an off-centre, asymmetric item
    mask = np.zeros((32, 32), np.uint8)
    mask[6:20, 10:28] = 3
    padded = 0
    for i in range(12):
        out, moved = train_lib.augment_image(tf.constant(image), tf.constant([i, 4], tf.int64), augment,
                                             mask=tf.constant(mask))
        ink, moved = out.numpy()[..., 0] > 127, moved.numpy()
        assert set(np.unique(moved)) <= {0, 3, IGNORE_LABEL}
        assert np.sum(ink != (moved == 3)) <= 2 * 32  # at most the edge pixels differ
        padded += int(np.sum(moved == IGNORE_LABEL))
    assert (padded > 0) == (augment != "rrc_flip")  # a random-resized crop adds no border


def test_augment_none_keeps_the_sweeps_inputs():
    source = generated_source(n=8)
    ds = train_lib.train_pipeline(source, 32, 8, preprocess="tf", augment="none", seed=1)
    plain = train_lib.train_pipeline(source, 32, 8, preprocess="tf", training=False)
    shuffled, ordered = next(iter(ds))[0].numpy(), next(iter(plain))[0].numpy()
    key = lambda a: sorted(float(x.sum()) for x in a)  # noqa: E731
    assert key(shuffled) == key(ordered)


def test_interrupted_run_saves_a_checkpoint_and_no_output(resumed):
    interrupted = resumed["interrupted"]
    assert interrupted["files"] == ["tiny.ckpt"]  # the output is written only at the end
    assert interrupted["state"]["epoch"] == 1
    assert [row["epoch"] for row in interrupted["log"]] == [0]


def test_rerun_resumes_after_the_last_finished_epoch(resumed):
    result = resumed["result"]
    assert result.initial_epoch == 1 and result.history.epoch == [1]
    assert [row["epoch"] for row in result.log] == [0, 1]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert column in result.log[1]
    assert result.log[1]["epoch_seconds"] >= result.log[1]["train_seconds"] > 0
    assert result.log[1]["learning_rate"] < result.log[0]["learning_rate"]  # cosine decay
    assert result.metrics["accuracy"] == pytest.approx(result.log[1]["val_accuracy"])
    with open(os.path.join(result.work_dir, train_lib.RESULT_NAME)) as f:
        assert json.load(f)["metrics"] == result.metrics


def test_saved_model_reloads_with_the_same_outputs(resumed, tiny_arch):
    model, output = resumed["model"], resumed["output"]
    images = next(
        iter(train_lib.train_pipeline(generated_source(), 32, 16, preprocess="tf", training=False))
    )[0]
    expected = model(images, training=False).numpy()
    by_arch = models.load_arch(tiny_arch, weights=output)
    by_path = models.load_user_model(output)
    assert by_arch.native_resolution == by_path.native_resolution == 32
    np.testing.assert_allclose(by_arch.model(images).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(by_path.model(images).numpy(), expected, atol=1e-6)


def test_sweep_at_the_native_resolution_reproduces_the_final_accuracy(resumed, tiny_arch, tmp_path):
    loaded = models.load_arch(tiny_arch, weights=resumed["output"])
    config = SweepConfig(resolutions=[32, 16], preprocess=TINY.preprocess)
    tables = sweep(loaded, generated_source(), config, str(tmp_path), verbose=0)
    assert tables[32].accuracy() == pytest.approx(100 * resumed["result"].metrics["accuracy"])


def test_rerunning_a_finished_run_only_evaluates_and_saves(resumed):
    _, again = _run(resumed["output"])
    assert again.initial_epoch == 2 and again.history.epoch == []
    assert again.metrics == pytest.approx(resumed["result"].metrics)


def test_resuming_another_configuration_is_an_error(resumed):
    with pytest.raises(train_lib.TrainMismatchError, match="differs in: config, epochs"):
        _run(resumed["output"], epochs=3, seed=1)


def test_training_without_validation(tiny_arch, tmp_path):
    write_image_folder(str(tmp_path / "images"), [0, 1], per_class=4, size=(40, 30))
    source = data.load_source(f"folder:{tmp_path / 'images'}")
    output = str(tmp_path / "out" / "folder.keras")
    result = train_lib.train_arch(
        tiny_arch, source, None, resolution=32, epochs=1, output=output, batch_size=4, verbose=0
    )
    assert result.metrics == {} and os.path.isfile(output)
    assert [row["epoch"] for row in result.log] == [0] and "val_loss" not in result.log[0]


def test_interrupted_log_rows_past_the_checkpoint_are_dropped(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1.5\n1,1.0\n2,0.5\n")
    train_lib.truncate_log(str(path), 2)
    with open(path) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]


def _bn_momenta(model):
    return {x.momentum for x in model.layers if isinstance(x, keras.layers.BatchNormalization)}


def test_bn_momentum_is_set_for_short_trainings(tiny_arch):
    assert _bn_momenta(train_lib.build_for_training(tiny_arch, 32, 2)) == {0.9}
    assert _bn_momenta(train_lib.build_for_training(tiny_arch, 32, 2, bn_momentum=0.5)) == {0.5}


def test_bad_arguments_name_the_argument(tiny_arch, tmp_path):
    with pytest.raises(ValueError, match="Unknown architecture 'nope'. Available: .*mobilenet_v2"):
        train_lib.build_for_training("nope", 32, 10)
    with pytest.raises(ValueError, match=r"`resolution` should be an integer >= 19 .*'nasnetmobile'"):
        train_lib.build_for_training("nasnet", 16, 10)
    model = train_lib.build_for_training(tiny_arch, 32, 2)
    ds = train_lib.train_pipeline(generated_source(8), 32, 4, preprocess="tf")
    output = str(tmp_path / "m.keras")
    with pytest.raises(
        ValueError, match="`epochs` should be a positive integer. Received epochs=0"
    ):
        train_lib.train(model, ds, None, epochs=0, output=output)
    with pytest.raises(ValueError, match="`output` should be a .keras or .h5 file"):
        train_lib.train(model, ds, None, epochs=1, output=str(tmp_path / "m.txt"))
    with pytest.raises(ValueError, match="Unknown optimizer 'rmsprop'. Available: sgd, adamw"):
        train_lib.train(model, ds, None, epochs=1, output=output, optimizer="rmsprop")
    with pytest.raises(ValueError, match="Unknown augment 'mixup'"):
        train_lib.train_pipeline(generated_source(8), 32, 4, preprocess="tf", augment="mixup")


def test_small_resnet_builder():
    model = ResNet18Small(input_tensor=keras.Input((64, 64, 3)), classes=10)
    assert model.count_params() == 703_866
    assert isinstance(model.get_layer("avg_pool"), keras.layers.GlobalAveragePooling2D)
    features = ResNet18Small(include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert features.outputs[0].shape == (None, 128)
    with pytest.raises(ValueError, match="`weights` should be None"):
        ResNet18Small(weights="imagenet")
    with pytest.raises(ValueError, match="at most one of `input_tensor` and `input_shape`"):
        ResNet18Small(input_tensor=keras.Input((32, 32, 3)), input_shape=(32, 32, 3))


def _run_cli(*args):
    return run_module("experiments.train", *args)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch=nope", "--dataset=fashion_mnist"], "Unknown architecture 'nope'. Available:"),
        # a subprocess each (~4 s): the rest of the kinds are `slow`
        pytest.param(["--arch=nasnet", "--dataset=fashion_mnist", "--resolution=16"], "integer >= 19",
                     marks=pytest.mark.slow),
        pytest.param(["--arch=resnet50", "--dataset=fashion_mnist", "--epochs=0"], "--epochs should be",
                     marks=pytest.mark.slow),
        pytest.param(["--arch=resnet50", "--dataset=no_such_set", "--epochs=1"], "Unknown dataset 'no_such_set'",
                     marks=pytest.mark.slow),
    ],
)
def test_cli_bad_input_is_a_one_line_error(args, message):
    proc = _run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
