"""The default study: the shipped checkpoint when there is one, else one trained here by its
recipe (and --retrain always trains); the sweep with BatchNorm columns, selection per model and
across the models, the segmentation model on its own scenes, study.md; the shipped recipes and
scripts/train_default_models.sh agree."""

import functools
import json
import os
import shlex

import pytest

from reswise_tf import data, models, training
from reswise_tf.models import SmallResNet
from reswise_tf.models.unet import UNetSmall
from reswise_tf.report import tables
from reswise_tf.workflows import study
from tests.helpers import ROOT

TINY = models.ArchSpec("tiny_study_net", functools.partial(SmallResNet, depths=(1, 1), widths=(8, 16), stem_stride=1),
                       native_resolution=16, preprocess="tf")
TINY2 = models.ArchSpec("tiny_study_net2", functools.partial(SmallResNet, depths=(1,), widths=(8,), stem_stride=1),
                        native_resolution=16, preprocess="tf")
TINY_UNET = models.ArchSpec("tiny_study_unet", functools.partial(UNetSmall, widths=(8, 16)), native_resolution=32,
                            preprocess="tf", size_multiple=2, task="segmentation")
MODEL = study.StudyModel(TINY.name, (16, 12, 8), "Table T: a tiny net")
MODEL2 = study.StudyModel(TINY2.name, (16, 8), "Table U: a tinier net")
SEGMENTER = study.StudyModel(TINY_UNET.name, (32, 16), "Segmentation S: a tiny U-Net", dataset="fashion_mnist_scenes")
SETTINGS = dict(num_eval_examples=128, num_train_examples=256, recalibrate_bn=64)


@pytest.fixture(scope="module")
def tiny():
    if not os.path.isdir(data.DEBIAN_FASHION_MNIST):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)")
    for spec in (TINY, TINY2, TINY_UNET):
        models.register_arch(spec)
        training.RECIPES[spec.name] = training.Recipe(spec.native_resolution, epochs=1)
    yield
    for spec in (TINY, TINY2, TINY_UNET):
        del training.RECIPES[spec.name]
        models.unregister_arch(spec.name)


def test_trains_a_missing_checkpoint_then_reuses_it_and_writes_every_report(tiny, tmp_path):
    out, ckpts = tmp_path / "out", tmp_path / "ckpts"
    settings = study.StudySettings(**SETTINGS)
    rows = study.run_study(str(out), str(ckpts), settings, [MODEL], verbose=0, pretrained_dir=str(tmp_path / "none"))
    name = MODEL.checkpoint_name("fashion_mnist")
    assert os.path.exists(ckpts / name)
    assert [row["resolution"] for row in rows[TINY.name]] == [16, 12, 8] and "top1_bn" in rows[TINY.name][0]
    folder = out / f"{TINY.name}_16"
    assert {"results.csv", "selection.csv", "pareto.png", "accuracy_vs_resolution.png"} <= set(os.listdir(folder))
    text = (out / "study.md").read_text()
    assert "Table T: a tiny net" in text and "Per-image resolution selection" in text and "trained 1 epochs" in text
    facts = json.loads((out / "study.json").read_text())[f"{TINY.name}_16"]
    assert facts["checkpoint"] == str(ckpts / name) and facts["epochs"] == 1
    stamp = os.path.getmtime(ckpts / name)
    study.run_study(str(out), str(ckpts), settings, [MODEL], verbose=0)  # reused, not retrained
    assert os.path.getmtime(ckpts / name) == stamp


def test_two_models_are_selected_across_and_the_segmenter_runs_on_its_scenes(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(study, "SEGMENTATION_MODEL", SEGMENTER)
    settings = study.StudySettings(**{**SETTINGS, "recalibrate_bn": 0}, segmentation=True)
    rows = study.run_study(str(tmp_path), str(tmp_path / "ck"), settings, [MODEL, MODEL2], verbose=0,
                           pretrained_dir=str(tmp_path / "none"))
    assert os.path.exists(tmp_path / "ck" / SEGMENTER.checkpoint_name("fashion_mnist_scenes"))
    assert [r["resolution"] for r in rows[TINY_UNET.name]] == [32, 16] and "miou" in rows[TINY_UNET.name][0]
    across = tables.read_csv(str(tmp_path / "models" / "selection.csv"))
    fixed = {r["setting"] for r in across if r["selector"] == "fixed"}
    assert len(fixed) == 5  # every (model, resolution) of the two classifiers; not the segmenter
    assert {"committee", "cascade", "oracle"} <= {r["selector"] for r in across}
    text = (tmp_path / "study.md").read_text()
    assert "Segmentation S: a tiny U-Net" in text and "Per-image selection across the study's models" in text
    assert "test mIoU after training" in text
    assert f"({TINY_UNET.name}_32/examples.png)" in text and (tmp_path / f"{TINY_UNET.name}_32" / "examples.png").exists()


def test_the_shipped_checkpoint_is_used_unless_retrain(tiny, tmp_path):
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    model = TINY.build(16, classes=10)
    model.save(shipped / MODEL.checkpoint_name("fashion_mnist"))
    settings = study.StudySettings(**SETTINGS, select=False)
    study.run_study(str(tmp_path / "a"), str(tmp_path / "ck"), settings, [MODEL], verbose=0, pretrained_dir=str(shipped))
    assert not os.path.exists(tmp_path / "ck")  # nothing trained
    facts = json.loads((tmp_path / "a" / "study.json").read_text())[f"{TINY.name}_16"]
    assert facts["checkpoint"] == str(shipped / MODEL.checkpoint_name("fashion_mnist"))
    retrain = study.StudySettings(**SETTINGS, select=False, retrain=True)
    study.run_study(str(tmp_path / "b"), str(tmp_path / "ck"), retrain, [MODEL], verbose=0, pretrained_dir=str(shipped))
    assert os.path.exists(tmp_path / "ck" / MODEL.checkpoint_name("fashion_mnist"))


def test_the_retraining_script_runs_each_recipe():
    """scripts/train_default_models.sh holds the exact experiments.train commands of the
    default models' recipes (the commands that made the shipped checkpoints), the segmentation
    model's included."""
    script = open(os.path.join(ROOT, "scripts", "train_default_models.sh")).read().replace("\\\n", " ")
    commands = [shlex.split(line) for line in script.splitlines() if "experiments.train" in line]
    by_arch = {next(a for a in c if a.startswith("--arch="))[len("--arch="):]: c for c in commands}
    shipped = [*study.DEFAULT_MODELS, study.SEGMENTATION_MODEL]
    assert sorted(by_arch) == sorted(m.arch for m in shipped)
    for m in shipped:
        dataset = m.dataset or "fashion_mnist"
        args = {a for a in by_arch[m.arch] if a.startswith("--")}
        expected = {f"--arch={m.arch}", f"--dataset={dataset}",
                    f'--output=$OUT/{m.checkpoint_name(dataset)}', *m.recipe.train_flags()}
        assert args == expected, (m.arch, args ^ expected)
