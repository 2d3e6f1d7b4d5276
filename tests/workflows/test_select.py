"""Selection over several models' sweeps of the same images: every (model, resolution) a stage,
committees of natives, cascades over models and resolutions, refusals when the sweeps are not
of the same images, and the deployed multi-model cascade deciding as the cache does (built in
memory, or from the sweeps' model files by `experiments.select --deploy_dir`)."""

import os

import numpy as np
import pytest

from reswise_tf import data, workflows
from reswise_tf.data.preprocessing import prepare
from reswise_tf.deploy import CascadeClassifier
from reswise_tf.evaluation import SweepConfig, sweep
from reswise_tf.models import load_user_model
from reswise_tf.report import selection_report
from reswise_tf.selection import StagePool, cascade_select, fit_cascade, split_rows
from reswise_tf.selection.pool import Committee
from reswise_tf.workflows import run_reduce
from reswise_tf.workflows.select import native_classifier
from tests.helpers import loaded, run_module, tiny_classifier

N, SIZE = 96, 24
MODELS = {"a_16": (16, (16, 12), 1), "b_24": (24, (24, 16), 2)}  # name: (native, sweep, seed)


def _sharp(model):
    head = model.get_layer("predictions")
    head.set_weights([head.get_weights()[0] * 40.0, head.get_weights()[1]])
    return model


def _images():
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.3, 2.0, (N, 1, 1, 1))
    return np.clip(rng.normal(128, 40, (N, SIZE, SIZE, 3)) * scale, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Each model swept over the same images into its own directory; the labels are the two
    models' averaged native predictions, wrong on one image in four (so that each model is right
    on some images and cascades have work to do)."""
    root = tmp_path_factory.mktemp("sweeps")
    images = _images()
    models = {name: _sharp(tiny_classifier(native, seed=seed)) for name, (native, _, seed) in MODELS.items()}
    probs = sum(m.predict(np.stack([prepare(x, native, mode="tf", direct=True).numpy() for x in images]), verbose=0)
                for m, (native, _, _) in zip(models.values(), MODELS.values()))
    labels = probs.argmax(1)
    labels[::4] = (labels[::4] + 1) % 10
    source = data.from_memory((images, labels), num_classes=10, name="shared")
    dirs, loaded_models = [], {}
    for name, (_, sizes, _) in MODELS.items():
        loaded_models[name] = loaded(models[name], preprocess="tf")
        sweep(loaded_models[name], source, SweepConfig(resolutions=list(sizes), batch_size=32), str(root / name),
              verbose=0)
        dirs.append(str(root / name))
    return dirs, loaded_models, images, root


def test_every_model_at_every_resolution_is_a_stage(sweeps):
    dirs, _, _, root = sweeps
    pool = StagePool.from_sweeps(workflows.load_sweeps(dirs))
    assert set(pool.stages) == {"a_16@16", "a_16@12", "b_24@24", "b_24@16"}
    assert pool.reference == max(pool.stages, key=lambda k: (pool.accuracy(k), -pool.macs[k]))
    report = workflows.select(dirs, ("all",), output_dir=str(root / "both"), trials=2)
    rows = report.rows
    assert {r["setting"] for r in rows if r["selector"] == "fixed"} == set(pool.stages)
    (committee,) = [r for r in rows if r["selector"] == "committee"]
    assert committee["setting"] == "committee of a_16@16+b_24@24"
    assert committee["mean_macs"] == pytest.approx(pool.macs["a_16@16"] + pool.macs["b_24@24"], rel=1e-6)
    cascades = [r for r in rows if r["selector"] == "cascade"]
    assert any("a_16@" in r["setting"] and "b_24@" in r["setting"] for r in cascades) or len(cascades) >= 2
    assert {r["part"] for r in rows} == {"evaluation"}
    text = (root / "both" / "selection.md").read_text()
    assert "(the reference stage)" in text and (root / "both" / "pareto.png").exists()


def test_a_committee_averages_the_probabilities_of_its_members(sweeps):
    dirs, _, _, _ = sweeps
    pool = StagePool.from_sweeps(workflows.load_sweeps(dirs))
    a, b = pool.tables["a_16@16"], pool.tables["b_24@24"]
    full = np.zeros((N, 10))  # every class kept (10 of 10): the average is exact
    for t in (a, b):
        np.add.at(full, (np.repeat(np.arange(N), 10), t.top_ids.ravel()), t.top_probs.ravel() / 2)
    table = pool.table(Committee(("a_16@16", "b_24@24")))
    np.testing.assert_array_equal(table.top_ids[:, 0], full.argmax(1))
    np.testing.assert_allclose(table.top_probs, -np.sort(-full, axis=1), atol=1e-6)


def test_sweeps_of_other_images_are_refused_naming_the_difference(sweeps, tmp_path):
    dirs, loaded_models, images, _ = sweeps
    fewer = data.from_memory((images[:40], np.zeros(40, np.int64)), num_classes=10, name="shared")
    sweep(loaded_models["a_16"], fewer, SweepConfig(resolutions=[16], batch_size=8), str(tmp_path / "few"), verbose=0)
    with pytest.raises(ValueError, match="evaluated different images"):
        workflows.load_sweeps([dirs[0], str(tmp_path / "few")])
    relabelled = data.from_memory((images, np.zeros(N, np.int64)), num_classes=10, name="shared")
    sweep(loaded_models["a_16"], relabelled, SweepConfig(resolutions=[16], batch_size=32), str(tmp_path / "zero"),
          verbose=0)
    with pytest.raises(ValueError, match="different labels"):
        workflows.load_sweeps([dirs[1], str(tmp_path / "zero")])


def test_the_deployed_cascade_of_two_models_decides_as_the_cache(sweeps, tmp_path):
    dirs, loaded_models, images, _ = sweeps
    pool = StagePool.from_sweeps(workflows.load_sweeps(dirs))
    split = split_rows(N, calibration_fraction=0.5, seed=0)
    for decide, confidence, stages in (("committee", "max_prob", ("a_16@12", "b_24@24")),
                                       ("own", "learned", ("a_16@12", "b_24@16", "b_24@24"))):
        fit = fit_cascade(pool, split.calibration, flops_budget="0.8@b_24@24", confidences=(confidence,),
                          decisions=(decide,), stages=stages)
        config = fit.config
        assert len(config.stages) >= 2 and config.decide == decide
        CascadeClassifier.from_models(loaded_models, config).save(str(tmp_path / decide))
        clf = CascadeClassifier.load(str(tmp_path / decide))
        out = clf.classify(images.astype(np.float32), batch_size=40)  # raw images: each stage prepares its own
        expected = cascade_select(pool, config, np.arange(N))
        assert 0 < np.mean([s == config.stages[0] for s in out.stage]) < 1  # a real cascade
        np.testing.assert_array_equal(out.macs, expected.macs)
        for i, key in enumerate(expected.chosen):
            assert out.stage[i] == (key.members[-1] if isinstance(key, Committee) else key)
            table = pool.table(key)
            np.testing.assert_array_equal(out.top_ids[i], table.top_ids[i])
            np.testing.assert_allclose(out.top_probs[i], table.top_probs[i], atol=1e-5)


def test_the_command_line_takes_several_directories(sweeps, tmp_path):
    dirs, _, _, _ = sweeps
    result = run_module("experiments.select", f"--results_dir={','.join(dirs)}")
    assert result.returncode == 2 and "--output_dir is required with several --results_dir" in result.stderr
    out = str(tmp_path / "out")
    result = run_module("experiments.select", f"--results_dir={','.join(dirs)}", f"--output_dir={out}",
                        "--selector=committee", "--reference=a_16@16")
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out, "selection.csv")) as f:
        header, *lines = f.read().splitlines()
    assert any(line.startswith("committee,committee of a_16@16+b_24@24,") for line in lines)
    assert any(line.startswith("fixed,a_16@16,all,96,") and ",0.0," in line for line in lines)  # the reference
    result = run_module("experiments.select", f"--results_dir={','.join(dirs)}", f"--output_dir={out}",
                        "--reference=c@1")
    assert result.returncode == 2 and "`reference` should be one of the stages" in result.stderr


def test_a_fitted_cascade_is_deployed_from_the_sweeps_files(sweeps, tmp_path):
    """Sweeps of model files: `experiments.select --deploy_dir` reopens each model as its sweep
    ran it and saves the cascade, which decides on raw images as the selection did on the cache;
    a model that is gone, or a sweep of an in-memory model, is refused."""
    _, loaded_models, images, root = sweeps
    labels = workflows.load_sweeps([os.path.join(root, "a_16")])["a_16"].labels
    source = data.from_memory((images, labels), num_classes=10, name="shared")
    dirs = []
    for name, (_, sizes, _) in MODELS.items():
        path = str(tmp_path / f"{name}.keras")
        loaded_models[name].model.save(path)
        dirs.append(str(tmp_path / name))
        run_reduce(load_user_model(path, preprocess="tf"), source, SweepConfig(resolutions=list(sizes), batch_size=32),
                   dirs[-1], verbose=0)
    out, deployed = str(tmp_path / "both"), str(tmp_path / "cascade")
    result = run_module("experiments.select", f"--results_dir={','.join(dirs)}", f"--output_dir={out}",
                        "--selector=cascade", "--flops_budget=0.8", "--stages=a_16@12,b_24@24", "--decide=own",
                        "--confidence=max_prob", f"--deploy_dir={deployed}")
    assert result.returncode == 0, result.stderr
    clf = CascadeClassifier.load(deployed)
    config = selection_report.load_fitted_configs(out)["flops_budget=0.8"]
    assert clf.config == config
    pool = StagePool.from_sweeps(workflows.load_sweeps(dirs))
    out_raw = clf.classify(images.astype(np.float32), batch_size=40)
    expected = cascade_select(pool, config, np.arange(N))
    np.testing.assert_array_equal(out_raw.stage.astype(str), np.asarray(expected.chosen, str))
    np.testing.assert_array_equal(out_raw.macs, expected.macs)
    native = native_classifier(dirs[1])  # what benchmarks.cascade_speed times a cascade against
    ids, _ = native.stage_predictions(images.astype(np.float32), 0)
    assert native.stages == ("b_24@24",)
    np.testing.assert_array_equal(ids, pool.tables["b_24@24"].top_ids)
    with pytest.raises(ValueError, match="has no file to reopen"):
        workflows.deploy_cascade([os.path.join(root, "a_16"), os.path.join(root, "b_24")], out)
    os.remove(tmp_path / "a_16.keras")
    with pytest.raises(FileNotFoundError, match="is gone or changed since the sweep"):
        workflows.deploy_cascade(dirs, out)


def test_one_sweep_takes_a_reference_resolution(sweeps):
    dirs, _, _, _ = sweeps
    for reference in (12, "12", "a_16@12"):
        rows = workflows.select([dirs[0]], ("fixed",), reference=reference).rows
        assert {r["setting"]: r["top1_drop"] for r in rows}["12px"] == 0.0
    with pytest.raises(ValueError, match="`reference` should be one of the stages: 16, 12"):
        workflows.select([dirs[0]], ("fixed",), reference=20)
