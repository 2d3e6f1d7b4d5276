"""The offline low-resolution study (the project's default run): each model's checkpoint (the
shipped one, else one trained here by its recipe), reduced to lower resolutions on real data
with BatchNorm re-estimation beside, per-image resolution selection on its cache, and the
thesis's tables and figures.

The thesis trained NASNet and MobileNetV2 on CIFAR-10 at 32x32 and reduced them to 28, 24, 20,
16, 12 (its Tables 1-2). Without internet we use Fashion-MNIST from Debian's
`dataset-fashion-mnist` files (real data: 28-px grayscale items on a 32-px canvas, as LeNet fed
MNIST, so that 28..12 px are genuine reductions as on CIFAR-10; repeated to 3 channels); with
internet `dataset="cifar10"` runs the same study on CIFAR-10. A small ResNet-18 trained at 64 px
(the canvas upsampled) is the high-resolution analogue.
"""

import dataclasses
import json
import os
import time

from reswise_tf import data
from reswise_tf.evaluation.resolution_sweep import SweepConfig
from reswise_tf.evaluation.store import load_tables
from reswise_tf.models.registry import get_arch
from reswise_tf.report import selection_report, tables, thesis
from reswise_tf.selection.run import run_selection
from reswise_tf.training.checkpoint import checkpoint_name, training_record
from reswise_tf.training.recipes import recipe_for
from reswise_tf.utils.files import atomic_write_text
from reswise_tf.workflows.model_choice import open_model, train_missing, warn_if_trained_otherwise
from reswise_tf.workflows.reduce import run_reduce
from reswise_tf.workflows.select import select


@dataclasses.dataclass(frozen=True)
class StudyModel:
    """One model of the study; it is trained by its architecture's recipe
    (`training.recipes.RECIPES`) at the recipe's resolution (its native one).

    Attributes:
      arch: registered architecture.
      resolutions: the sweep (native first).
      title: table title.
      thesis: the thesis's table it is compared with, size ratio by size ratio:
        (architecture, native resolution) in `report.thesis`, or None.
      dataset: its dataset when it is not the study's (the segmentation model's scenes).
    """

    arch: str
    resolutions: tuple
    title: str
    thesis: tuple | None = None
    dataset: str | None = None

    @property
    def recipe(self):
        return recipe_for(self.arch)

    @property
    def resolution(self):
        return self.recipe.resolution

    @property
    def key(self):
        """Its folder under the study's output: `<architecture>_<resolution>`."""
        return f"{get_arch(self.arch).name}_{self.resolution}"

    def checkpoint_name(self, dataset):
        return checkpoint_name(self.arch, dataset, self.resolution)


# The thesis's Tables 1-2 (NASNetMobile stops at 20: below 19 px its reduction cells change)
# and a 64-px model as the higher-resolution analogue.
DEFAULT_MODELS = (
    StudyModel("nasnetmobile", (32, 28, 24, 20), "Table 1: NASNetMobile trained at 32x32", ("nasnetmobile", 32)),
    StudyModel("mobilenetv2", (32, 28, 24, 20, 16, 12), "Table 2: MobileNetV2 trained at 32x32", ("mobilenetv2", 32)),
    StudyModel("resnet18_small", (64, 56, 48, 40, 32, 24, 16), "Table 3: ResNet-18 (small) trained at 64x64",
               ("resnet152", 224)),
)
# The thesis's future work: a U-Net on composite scenes of Fashion-MNIST items (`--segmentation`).
SEGMENTATION_MODEL = StudyModel("unet_small", (64, 56, 48, 40, 32, 24, 16),
                                "Segmentation: U-Net (small) trained at 64x64 on fashion_mnist_scenes",
                                dataset="fashion_mnist_scenes")
# Targets of the selection over every model of the study: the default half point below the most
# accurate stage, the random selector's FLOPs, the most accurate cascade within 1.5x the most
# accurate stage's MACs, and within 0.1 points of the committee of every model's native.
MODEL_TARGETS = dict(max_drops=[0.5, "0.1@committee"], flops_budgets=["random", 1.5])


@dataclasses.dataclass
class StudySettings:
    """What the study evaluates, and how it trains a missing model.

    Attributes:
      dataset: `fashion_mnist` (offline, Debian's files) or `cifar10` (TFDS).
      num_eval_examples: test images evaluated per resolution (None: the whole split).
      recalibrate_bn: also evaluate with BatchNorm re-estimated on this many training images.
      select: run the per-image selectors on each model's cache.
      retrain: train every model from scratch into the checkpoint dir (the shipped checkpoints
        are not used).
      epochs, num_train_examples, batch_size: override the recipes' training length (None: the
        recipe's; the whole training split; 128).
      segmentation: also the U-Net on fashion_mnist_scenes (`SEGMENTATION_MODEL`).
    """

    dataset: str = "fashion_mnist"
    num_eval_examples: int | None = None
    recalibrate_bn: int = 256
    select: bool = True
    retrain: bool = False
    epochs: int | None = None
    num_train_examples: int | None = None
    batch_size: int = 128
    data_dir: str | None = None
    download: bool = False
    segmentation: bool = False


def run_study(output_dir, checkpoint_dir, settings=None, study_models=DEFAULT_MODELS, verbose=1, pretrained_dir=None):
    """Sweeps (and selects on) every model of the study; writes `output_dir/study.md`.

    A model's checkpoint is `pretrained_dir/<name>` (shipped) unless `settings.retrain`, else
    `checkpoint_dir/<name>`, trained there by its recipe when missing (`<name>`:
    `training.checkpoint.checkpoint_name`). Each model's sweep (per-image cache,
    results.csv/.md, figures, selection) goes to `output_dir/<arch>_<resolution>/`;
    `study.json` records the training facts and times. Re-running reuses checkpoints and
    cached predictions. Returns {arch: rows}.
    """
    settings = settings or StudySettings()
    models = list(study_models) + ([SEGMENTATION_MODEL] if settings.segmentation else [])
    facts_path = os.path.join(output_dir, "study.json")
    facts = json.load(open(facts_path)) if os.path.exists(facts_path) else {}
    results, selections, sources = {}, {}, {}
    for m in models:
        dataset = m.dataset or settings.dataset
        if dataset not in sources:
            load = dict(data_dir=settings.data_dir, download=settings.download)
            sources[dataset] = [data.load_source(dataset, split=split, **load) for split in ("train", "test")]
        train_source, test_source = sources[dataset]
        ckpt = _checkpoint(m, settings, checkpoint_dir, pretrained_dir, train_source, test_source, verbose)
        facts[m.key] = {**facts.get(m.key, {}), "checkpoint": ckpt, **_training_facts(ckpt)}
        start = time.time()
        results[m.arch] = _reduce(m, ckpt, settings, test_source, train_source, os.path.join(output_dir, m.key),
                                  verbose)
        facts[m.key]["sweep_seconds"] = round(time.time() - start, 1)
        if settings.select:
            start = time.time()
            selections[m.arch] = _select(m, os.path.join(output_dir, m.key), verbose)
            facts[m.key]["selection_seconds"] = round(time.time() - start, 1)
        atomic_write_text(facts_path, json.dumps(facts, indent=2))
    classifiers = [m for m in models if m.dataset is None]
    if settings.select and len(classifiers) > 1:
        start = time.time()
        selections["models"] = _select_models(classifiers, output_dir, verbose)
        facts["models_selection_seconds"] = round(time.time() - start, 1)
        atomic_write_text(facts_path, json.dumps(facts, indent=2))
    text = study_markdown(results, selections, facts, models, settings)
    atomic_write_text(os.path.join(output_dir, "study.md"), text)
    return results


def _select_models(models, output_dir, verbose):
    """The selection over every (model, resolution) of the study's classifiers (committees and
    cascades across models) into `output_dir/models/`; returns its Markdown."""
    if verbose:
        print(f"== Selecting a model and a resolution per image among {', '.join(m.key for m in models)}")
    title = "Per-image selection across the study's models and resolutions"
    report = select([os.path.join(output_dir, m.key) for m in models], ("all",), output_dir=os.path.join(
        output_dir, "models"), title=title, verbose=verbose, **MODEL_TARGETS)
    return selection_report.to_markdown(report, title)


def _checkpoint(m, settings, checkpoint_dir, pretrained_dir, train_source, test_source, verbose):
    """`m`'s checkpoint: shipped, trained earlier, or trained now by its recipe."""
    name = m.checkpoint_name(m.dataset or settings.dataset)
    shipped = os.path.join(pretrained_dir, name) if pretrained_dir else None
    if shipped and not settings.retrain and os.path.exists(shipped):
        return shipped
    ckpt = os.path.join(checkpoint_dir, name)
    if not os.path.exists(ckpt):
        train_missing(m.arch, train_source, test_source, ckpt, verbose=verbose, epochs=settings.epochs,
                      batch_size=settings.batch_size, num_train_examples=settings.num_train_examples)
    return ckpt


def _training_facts(ckpt):
    """Epochs, seconds per epoch and final accuracy from a checkpoint's training record, if any."""
    record = training_record(ckpt)
    if record is None:
        return {}
    return {"epochs": len(record["log"]), "train_examples": record["config"].get("num_train_examples"),
            "train_seconds_per_epoch": [round(row["train_seconds"], 1) for row in record["log"]],
            **{f"final_{k}": round(100 * record["metrics"][k], 2) for k in ("accuracy", "miou")
               if k in record["metrics"]}}


def _reduce(m, ckpt, settings, test_source, train_source, output_dir, verbose):
    config = SweepConfig(resolutions=list(m.resolutions), batch_size=128, num_examples=settings.num_eval_examples)
    if verbose:
        print(f"== Reducing {m.arch} ({m.resolution}px) on {m.dataset or settings.dataset} test: {list(m.resolutions)}")
    loaded = open_model(test_source.labels, arch=m.arch, weights=ckpt)
    warn_if_trained_otherwise(loaded, test_source)
    return run_reduce(loaded, test_source, config, output_dir, verbose=verbose, title=m.title,
                      bn_source=train_source if settings.recalibrate_bn else None, bn_images=settings.recalibrate_bn)


def _select(m, output_dir, verbose):
    """The selectors on the model's cache (fixed, random, cascade, oracle); the report written
    beside the sweep's. Returns its Markdown."""
    if verbose:
        print(f"== Selecting resolutions per image for {m.arch} ({m.resolution}px)")
    report = run_selection(load_tables(output_dir), ("all",), verbose=verbose)
    title = f"Per-image resolution selection: {m.title}"
    selection_report.write_reports(report, output_dir, title)
    return selection_report.to_markdown(report, title)


def study_markdown(results, selections, facts, study_models, settings):
    """The thesis's Tables 1-2 (and our Table 3) for this data, with the training facts and
    the per-image selection tables."""
    lines = [f"# Low-resolution study on {settings.dataset}", ""]
    for m in study_models:
        if m.arch not in results:
            continue
        fact = facts.get(m.key, {})
        lines.append(tables.to_markdown(results[m.arch], m.title))
        final = next(((k, fact[f"final_{k}"]) for k in ("accuracy", "miou") if f"final_{k}" in fact), None)
        if final is not None:
            lines.append(f"Checkpoint {fact['checkpoint']}: trained {fact['epochs']} epochs on "
                         f"{fact.get('train_examples') or 'all'} images (seconds per epoch: "
                         f"{', '.join(map(str, fact['train_seconds_per_epoch']))}); test "
                         f"{'mIoU' if final[0] == 'miou' else 'accuracy'} after training {final[1]:.2f}%.")
        lines.append("")
        if m.thesis is not None:
            lines += [_beside_the_thesis(results[m.arch], m, settings.dataset), ""]
        if get_arch(m.arch).task == "segmentation":
            lines += [f"![Images, labels and predicted maps at four sizes]({m.key}/examples.png)", ""]
        if m.arch in selections:
            lines += [selections[m.arch], ""]
    if "models" in selections:
        lines += [selections["models"], "", "![Across models](models/pareto.png)", ""]
    return "\n".join(lines)


def _beside_the_thesis(rows, m, dataset):
    """`m`'s rows beside the thesis's table by size ratio, and what each measures."""
    arch, native = m.thesis
    data_name = "CIFAR-10, top-1" if native == thesis.CIFAR10_NATIVE else "ImageNet, top-5"
    text = thesis.by_ratio_markdown(rows, thesis.thesis_table(arch, native), native,
                                    f"{m.title.split(':')[0]} beside the thesis's {arch} ({data_name})")
    return text + (f"\nThe thesis: {arch} on {data_name} at {native} px; ours: {get_arch(m.arch).name} on {dataset}, "
                   "top-1. Drops are positive for a loss.")
