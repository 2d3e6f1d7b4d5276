"""Selection over one sweep or over several models' sweeps of the same images, in one call:
`select([...])` from Python, `experiments.select --results_dir=DIR1,DIR2` from the command line.

Every (model, resolution) of every sweep is a stage with its exact MACs, named
`<sweep name>@<resolution>` (the sweep's directory name, or the evaluation's title), so two
checkpoints of one architecture do not collide. Sweeps are refused, naming the difference, when
their images (dataset indices), labels, dataset or split, or class sets differ; their native
resolutions may differ. Drops are measured against the reference stage: the most accurate
single stage unless `reference` names another. With `include_bn`, each sweep's BatchNorm
re-estimated cache (`bn_recalibrated/`) gives stages too.
"""

import dataclasses
import os

import numpy as np

from reswise_tf.deploy.classifier import CascadeClassifier
from reswise_tf.evaluation.predictions import SweepCache
from reswise_tf.evaluation.store import load_tables, read_fingerprint
from reswise_tf.evaluation.variants import BN_VARIANT
from reswise_tf.report import selection_report
from reswise_tf.selection.cascade.config import CascadeConfig
from reswise_tf.selection.pool import StagePool
from reswise_tf.selection.run import run_selection
from reswise_tf.workflows.model_choice import reopen_model


def load_sweeps(sources, *, include_bn=False):
    """{name: SweepCache} of `sources`: results directories of `experiments.reduce`, or
    `Evaluation`s of `reswise_tf.evaluate` (or a {name: either} dict), checked to describe
    the same images."""
    named = dict(sources) if isinstance(sources, dict) else dict(zip(_names(sources), sources))
    sweeps, facts = {}, {}
    for name, source in named.items():
        if isinstance(source, (str, os.PathLike)):
            sweeps[name] = SweepCache(load_tables(str(source)))
            facts[name] = read_fingerprint(str(source)) or {}
            bn = os.path.join(str(source), BN_VARIANT)
            if include_bn and os.path.isdir(os.path.join(bn, "predictions")):
                sweeps[f"{name}/bn"] = SweepCache(load_tables(bn))
                facts[f"{name}/bn"] = facts[name]
        else:
            sweeps[name] = source.cache
            facts[name] = {}
    check_same_images(sweeps, facts)
    return sweeps


def _names(sources):
    """The sweeps' names: directory base names (their whole paths where two would be equal), or
    evaluation titles."""
    names = []
    for source in sources:
        if isinstance(source, (str, os.PathLike)):
            names.append(os.path.basename(os.path.normpath(str(source))))
        else:
            names.append(str(getattr(source, "title", "model")).split(" (")[0])
    if len(set(names)) < len(names):
        paths = [os.path.normpath(str(s)) for s in sources]
        names = [p.replace(os.sep, "/") if isinstance(s, (str, os.PathLike)) else f"{n}_{i}"
                 for i, (s, p, n) in enumerate(zip(sources, paths, names))]
    return names


def check_same_images(sweeps, facts):
    """Raises ValueError naming the first difference between the sweeps' images."""
    (first, a), *others = sweeps.items()
    for name, b in others:
        for what, x, y in (
            ("dataset", facts[first].get("dataset"), facts[name].get("dataset")),
            ("split", facts[first].get("split"), facts[name].get("split")),
        ):
            if x is not None and y is not None and x != y:
                raise ValueError(f"Sweeps {first!r} and {name!r} are of different {what}s: {x!r} and {y!r}")
        if len(a) != len(b) or not np.array_equal(a.index, b.index):
            raise ValueError(f"Sweeps {first!r} and {name!r} evaluated different images ({len(a)} and {len(b)}; "
                             "the dataset indices differ): run them on the same images (e.g. the same --num_examples)")
        if not np.array_equal(a.labels, b.labels):
            raise ValueError(f"Sweeps {first!r} and {name!r} have different labels for the same images")
        classes = [_classes(c) for c in (a, b)]
        if None not in classes and classes[0] != classes[1]:
            raise ValueError(f"Sweeps {first!r} and {name!r} are of models with different class sets "
                             f"({classes[0]} and {classes[1]} classes)")


def _classes(cache):
    meta = cache.tables[cache.native].meta
    return meta.get("num_classes")


def select(sources, selectors=("all",), *, reference=None, include_bn=False, output_dir=None, title=None, **options):
    """Runs `selectors` over the stages of `sources` (see `load_sweeps`); returns the
    `selection.SelectionReport`, and writes its reports into `output_dir` when given.

    `reference` names the stage drops are measured against (`"<sweep>@<resolution>"`; one
    sweep: its native resolution); `options` are those of `selection.run_selection`.
    """
    sweeps = load_sweeps(sources, include_bn=include_bn)
    report = run_selection(StagePool.from_sweeps(sweeps, reference=reference), selectors, **options)
    if output_dir is not None:
        selection_report.write_reports(report, output_dir, title or f"Per-image selection over {', '.join(sweeps)}")
    return report


def deploy_cascade(sources, selection_dir, target=None):
    """The `CascadeClassifier` of a cascade fitted by `select(sources, ..., output_dir=
    selection_dir)`: its config from `selection_dir/cascade_fits.json` (the fit of `target`,
    e.g. "max_drop=0.5"; default the first), each stage's model reopened as its sweep ran it
    (`model_choice.reopen_model`: the same weights, preprocessing, crop, head and precision)
    and rescaled to the stage's resolution."""
    fits = selection_report.load_fitted_configs(selection_dir)
    if target is None:
        target = next(iter(fits))
    if target not in fits:
        raise ValueError(f"No cascade fitted for target {target!r} in {selection_dir!r}. Available: {', '.join(fits)}")
    config = fits[target]
    paths = [str(s) for s in sources]
    sweeps = load_sweeps(paths)
    if len(paths) == 1:  # one sweep: the stages are its resolutions
        name = next(iter(sweeps))
        config = dataclasses.replace(config, stages=tuple(f"{name}@{r}" for r in config.stages))
    return _reopened(sweeps, paths, config)


def native_classifier(results_dir):
    """A one-stage `CascadeClassifier` of the model of the sweep in `results_dir` at its native
    resolution, reopened as the sweep ran it (what a deployed cascade is timed against)."""
    sweeps = load_sweeps([str(results_dir)])
    (name, sweep), = sweeps.items()
    return _reopened(sweeps, [str(results_dir)], CascadeConfig((f"{name}@{sweep.native}",), (), "max_prob"))


def _reopened(sweeps, paths, config):
    """`config` over the models of `sweeps` (`load_sweeps(paths)`), each reopened as its sweep ran it."""
    named = dict(zip(sweeps, paths))
    if StagePool.from_sweeps(sweeps).task != "classification":
        raise ValueError("A deployable cascade classifies: the sweeps are of a segmentation model")
    used = sorted({str(k).rpartition("@")[0] for k in config.stages})
    unknown = sorted(set(used) - set(named))
    if unknown:
        raise ValueError(f"Stages of {', '.join(unknown)} are not sweeps of {', '.join(named)} (a BatchNorm "
                         "re-estimated stage cannot be reopened from its sweep): pass the sweeps it was fitted on")
    facts = {n: read_fingerprint(named[n]) or {} for n in used}
    precisions = {f.get("config", {}).get("precision", "float32") for f in facts.values()}
    if len(precisions) > 1:
        raise ValueError(f"The sweeps of the cascade ran in different precisions ({', '.join(sorted(precisions))}): "
                         "a deployed cascade runs in one")
    direct = {sweeps[n].tables[sweeps[n].native].meta.get("resize", "direct") == "direct" for n in used}
    if len(direct) > 1:
        raise ValueError("The sweeps of the cascade prepared their images differently (resized directly, and "
                         "centre-cropped): a deployed cascade feeds every stage the same kind of image")
    loaded = {n: reopen_model(facts[n], n, classes=_classes(sweeps[n])) for n in used}
    heads = {n: facts[n].get("config", {}).get("head") for n in used}
    return CascadeClassifier.from_models(loaded, config, small_images=direct.pop(), precision=precisions.pop(),
                                         heads=heads)
