"""The offline low-resolution study (the project's default run): train the small-image models
if their checkpoints are missing, reduce each to lower resolutions on real data, and write the
thesis's tables and figures.

The thesis trained NASNet and MobileNetV2 on CIFAR-10 at 32x32 and reduced them to 28, 24, 20,
16, 12 (its Tables 1-2). Without internet we use Fashion-MNIST from Debian's
`dataset-fashion-mnist` files (real data, 28-px grayscale, resized to the training resolution
and repeated to 3 channels); with internet `dataset="cifar10"` runs the same study on CIFAR-10.
A ResNet-style model trained at 64 px is the high-resolution analogue (reduced to 56, 48, 40,
32 and lower).
"""

import dataclasses
import json
import os
import time

from reswise_tf import data
from reswise_tf.evaluation.sweep import SweepConfig
from reswise_tf.models.loading import load_arch
from reswise_tf.models.registry import get_arch
from reswise_tf.report import tables
from reswise_tf.training import train_arch
from reswise_tf.utils.files import atomic_write_text
from reswise_tf.workflows.reduce import run_reduce


@dataclasses.dataclass(frozen=True)
class StudyModel:
    """One model of the study.

    Attributes:
      arch: registered architecture.
      resolution: training (native) resolution in pixels.
      resolutions: the sweep (native first).
      title: table title.
    """

    arch: str
    resolution: int
    resolutions: tuple
    title: str


DEFAULT_MODELS = (
    StudyModel("nasnet", 32, (32, 28, 24, 20), "Table 1: NASNetMobile trained at 32x32"),
    StudyModel("mobilenet_v2", 32, (32, 28, 24, 20, 16, 12), "Table 2: MobileNetV2 trained at 32x32"),
    StudyModel("resnet18_small", 64, (64, 56, 48, 40, 32, 24, 16), "Table 3: ResNet-18 (small) trained at 64x64"),
)


@dataclasses.dataclass
class StudySettings:
    """How long to train and how much to evaluate (the defaults are the ~20-minute CPU run).

    Attributes:
      dataset: `fashion_mnist` (offline, Debian's files) or `cifar10` (TFDS).
      epochs: training epochs of each model whose checkpoint is missing.
      num_train_examples: training images per epoch (None: the whole split).
      num_eval_examples: test images evaluated per resolution (None: the whole split).
      batch_size: training batch size (evaluation uses 128).
      recalibrate_bn: also evaluate with BatchNorm re-estimated on this many training images.
    """

    dataset: str = "fashion_mnist"
    epochs: int = 2
    num_train_examples: int | None = 12_000
    num_eval_examples: int | None = 5_000
    batch_size: int = 128
    recalibrate_bn: int = 0
    data_dir: str | None = None
    download: bool = False


def checkpoint_path(checkpoint_dir, model, dataset):
    return os.path.join(checkpoint_dir, f"{model.arch}_{dataset}_{model.resolution}.keras")


def run_study(output_dir, checkpoint_dir, settings=None, study_models=DEFAULT_MODELS, verbose=1):
    """Trains missing checkpoints, sweeps every model, writes `output_dir/study.md`.

    Each model's sweep (per-image cache, results.csv/.md, figures) goes to
    `output_dir/<arch>_<resolution>/`; `study.json` records the training facts (accuracy, time
    per epoch) used by the tables. Re-running reuses checkpoints and cached predictions.
    Returns {arch: rows}.
    """
    settings = settings or StudySettings()
    train_source = data.load_source(settings.dataset, split="train", data_dir=settings.data_dir,
                                     download=settings.download)
    test_source = data.load_source(settings.dataset, split="test", data_dir=settings.data_dir,
                                   download=settings.download)
    facts_path = os.path.join(output_dir, "study.json")
    facts = {}
    if os.path.exists(facts_path):
        with open(facts_path) as f:
            facts = json.load(f)
    results = {}
    for m in study_models:
        spec = get_arch(m.arch)
        ckpt = checkpoint_path(checkpoint_dir, m, settings.dataset)
        key = f"{m.arch}_{m.resolution}"
        if not os.path.exists(ckpt):
            facts[key] = _train(m, spec, train_source, test_source, ckpt, settings, verbose)
            atomic_write_text(facts_path, json.dumps(facts, indent=2))
        loaded = load_arch(m.arch, ckpt)
        config = SweepConfig(
            resolutions=list(m.resolutions),
            preprocess=spec.preprocess,
            crop_pct=spec.crop_pct,
            batch_size=128,
            num_examples=settings.num_eval_examples,
        )
        if verbose:
            print(f"== Reducing {m.arch} ({m.resolution}px) on {settings.dataset} test: {list(m.resolutions)}")
        start = time.time()
        results[m.arch] = run_reduce(
            loaded, test_source, config, os.path.join(output_dir, key), verbose=verbose, title=m.title,
            bn_source=train_source if settings.recalibrate_bn else None, bn_images=settings.recalibrate_bn,
        )
        facts.setdefault(key, {})["sweep_seconds"] = round(time.time() - start, 1)
        atomic_write_text(facts_path, json.dumps(facts, indent=2))
    atomic_write_text(os.path.join(output_dir, "study.md"), study_markdown(results, facts, study_models, settings))
    return results


def _train(m, spec, train_source, test_source, ckpt, settings, verbose):
    if verbose:
        print(f"== Training {m.arch} at {m.resolution}px on {settings.dataset} "
              f"({settings.num_train_examples or 'all'} images x {settings.epochs} epochs; no checkpoint at {ckpt})")
    result = train_arch(
        m.arch,
        train_source,
        test_source,
        resolution=m.resolution,
        epochs=settings.epochs,
        output=ckpt,
        batch_size=settings.batch_size,
        num_train_examples=settings.num_train_examples,
        num_validation_examples=settings.num_eval_examples,
        verbose=verbose,
    )
    seconds = [row["train_seconds"] for row in result.log]
    return {
        "checkpoint": ckpt,
        "epochs": len(result.log),
        "train_examples": settings.num_train_examples,
        "train_seconds_per_epoch": [round(s, 1) for s in seconds],
        "final_accuracy": round(100 * result.metrics.get("accuracy", float("nan")), 2),
    }


def study_markdown(results, facts, study_models, settings):
    """The thesis's Tables 1-2 (and our Table 3) for this data, with the training facts."""
    lines = [f"# Low-resolution study on {settings.dataset}", ""]
    for m in study_models:
        if m.arch not in results:
            continue
        rows = results[m.arch]
        key = f"{m.arch}_{m.resolution}"
        fact = facts.get(key, {})
        lines.append(tables.to_markdown(rows, m.title))
        per_epoch = fact.get("train_seconds_per_epoch")
        if per_epoch:
            lines.append(
                f"Trained {fact['epochs']} epochs on {fact['train_examples'] or 'all'} images; "
                f"seconds per epoch: {', '.join(map(str, per_epoch))}; final test accuracy "
                f"{fact['final_accuracy']:.2f}%."
            )
        lines.append("")
    return "\n".join(lines)
