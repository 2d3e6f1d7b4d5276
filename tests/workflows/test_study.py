"""The default study: the shipped checkpoint when there is one, else one trained here by its
recipe (and --retrain always trains); the sweep with BatchNorm columns, selection, study.md;
the shipped recipes and scripts/train_default_models.sh agree."""

import functools
import json
import os
import shlex

import pytest

from reswise_tf import data, models, training
from reswise_tf.models import SmallResNet
from reswise_tf.workflows import study
from tests.helpers import ROOT

TINY = models.ArchSpec("tiny_study_net", functools.partial(SmallResNet, depths=(1, 1), widths=(8, 16), stem_stride=1),
                       native_resolution=16, preprocess="tf")
MODEL = study.StudyModel(TINY.name, (16, 12, 8), "Table T: a tiny net")
SETTINGS = dict(num_eval_examples=128, num_train_examples=256, recalibrate_bn=64)


@pytest.fixture(scope="module")
def tiny():
    if not os.path.isdir(data.DEBIAN_FASHION_MNIST):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)")
    models.register_arch(TINY)
    training.RECIPES[TINY.name] = training.Recipe(16, epochs=1)
    yield
    del training.RECIPES[TINY.name]
    models.unregister_arch(TINY.name)


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
    default models' recipes (the commands that made the shipped checkpoints)."""
    script = open(os.path.join(ROOT, "scripts", "train_default_models.sh")).read().replace("\\\n", " ")
    commands = [shlex.split(line) for line in script.splitlines() if "experiments.train" in line]
    by_arch = {next(a for a in c if a.startswith("--arch="))[len("--arch="):]: c for c in commands}
    assert sorted(by_arch) == sorted(m.arch for m in study.DEFAULT_MODELS)
    for m in study.DEFAULT_MODELS:
        args = {a for a in by_arch[m.arch] if a.startswith("--")}
        expected = {f"--arch={m.arch}", "--dataset=fashion_mnist",
                    f'--output=$OUT/{m.checkpoint_name("fashion_mnist")}', *m.recipe.train_flags()}
        assert args == expected, (m.arch, args ^ expected)
