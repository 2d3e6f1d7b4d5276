"""The whole reduction study of one model on one dataset: sweep, then tables and figures."""

import json
import os
import warnings

import numpy as np
import tensorflow as tf

from reswise_tf.cost import latency
from reswise_tf.data import describe_ignored
from reswise_tf.data.preprocessing import prepare
from reswise_tf.data.segmentation import unpadded
from reswise_tf.evaluation.predictions import SweepCache
from reswise_tf.evaluation.resolution_sweep import sweep_tables
from reswise_tf.evaluation.variants import BN_VARIANT, FLOAT32_VARIANT, bn_variant, float32_variant
from reswise_tf.models.dtype_policy import with_precision
from reswise_tf.models.inspect import has_batch_norm
from reswise_tf.models.rescale import rescale
from reswise_tf.report import figures, tables
from reswise_tf.report.sweep import write_reports
from reswise_tf.utils.files import atomic_write_text

SKIPPED_FILE = "skipped.txt"


def run_reduce(
    loaded,
    source,
    config,
    output_dir,
    *,
    strategy=None,
    verbose=1,
    title=None,
    bn_source=None,
    bn_images=0,
    measure_latency=False,
    latency_repeats=20,
    compare_precision=False,
):
    """Sweeps `loaded.model` over `config.resolutions` on `source` and writes the reports.

    Writes into `output_dir`: `predictions/res_<R>.npz` (per-image cache), `results.csv`,
    `results.md`, `accuracy_vs_resolution.png`, `accuracy_vs_flops.png` (a segmentation also
    `examples.png`: images, labels and predicted maps at four sizes). Returns the rows.
    Distributed over several workers, every worker evaluates its share of the images; the
    chief writes everything and returns the rows, the others write nothing and return None.

    Args:
      bn_source, bn_images: with `bn_images` > 0, every rescaled model is also evaluated with
        its BatchNorm statistics re-estimated on the first `bn_images` images of `bn_source`
        (a *training* split; labels unused), in the same pass; its cache goes to
        `output_dir/bn_recalibrated/` and results.csv gains `*_bn` columns.
      measure_latency: adds median batch-1 and batch-32 latency per resolution and the
        measured speed-ups (cached in `latency.json`), and `flops_drop_vs_speedup.png`.
      compare_precision: with a reduced `config.precision`, also evaluates the model in float32
        in the same pass (cache in `float32_reference/`) and adds the agreement columns.
    """
    config = config.for_model(loaded)
    _check_inputs(loaded, source, bn_source, bn_images)
    if bn_images and not has_batch_norm(loaded.model):
        warnings.warn(
            f"--recalibrate_bn does not apply to model '{loaded.model.name}': it has no BatchNormalization layer "
            "(a ViT normalises with LayerNorm, computed per token: there are no stored statistics to re-estimate). "
            "Evaluating without it.", stacklevel=2)
        bn_images = 0
    if verbose and describe_ignored(source):
        print(describe_ignored(source))
    upsampled = source.upsample_warning(max(config.with_native(loaded.native_resolution)), config.crop_pct)
    if upsampled:
        warnings.warn(upsampled, stacklevel=2)
    variants = []
    if bn_images:
        channels = loaded.model.inputs[0].shape[-1]
        variants.append(bn_variant(bn_source, bn_images, config, channels, small=source.small_images))
    if compare_precision:
        if source.task == "segmentation":
            raise ValueError("`compare_precision` compares top-1 classes: it does not apply to a segmentation")
        if config.precision == "float32":
            raise ValueError("`compare_precision` compares a reduced precision with float32: pass --precision too")
        variants.append(float32_variant())
    found = sweep_tables(loaded, source, config, output_dir, strategy=strategy, verbose=verbose, variants=variants)
    if found is None:  # not the chief
        return None
    cache = SweepCache(found[""])
    rows = tables.sweep_rows(cache, config.topk, bn_tables=found.get(BN_VARIANT),
                             reference_tables=found.get(FLOAT32_VARIANT))
    if measure_latency:
        measured = _latency(loaded, cache.resolutions, output_dir, latency_repeats, config.precision, config.head)
        for row in rows:
            row.update(measured[row["resolution"]])
    name = loaded.arch.name if loaded.arch else loaded.identity.get("model_path", {}).get("path", "model")
    title = title or f"{os.path.basename(str(name))} on {source.name} (native {cache.native}px)"
    write_reports(rows, output_dir, cache.native, title)
    _write_skipped(cache, source, output_dir)
    if source.task == "segmentation":
        _segmentation_examples(loaded, source, config, cache.resolutions, output_dir, title)
    return rows


EXAMPLES = 4  # images drawn in a segmentation sweep's examples.png


def _segmentation_examples(loaded, source, config, resolutions, output_dir, title):
    """`examples.png`: the first images of `source`, their labels and the predicted maps at up
    to four of the sizes (the largest, the smallest, two between), each map at the label's size."""
    picked = sorted({resolutions[round(i * (len(resolutions) - 1) / 3)] for i in range(4)}, reverse=True)
    examples = list(source.dataset.take(EXAMPLES))
    masks = [np.asarray(unpadded(ex["label"])) for ex in examples]  # padded to share a batch: cut back
    channels = loaded.model.inputs[0].shape[-1]
    predictions = {}
    for r in picked:
        model = loaded.model if r == loaded.native_resolution else rescale(loaded.model, r, arch=loaded.arch)
        x = tf.stack([prepare(ex["image"], r, mode=config.preprocess, crop_pct=config.crop_pct, direct=True,
                              channels=channels) for ex in examples])
        probs = model(x, training=False)
        predictions[r] = [np.argmax(tf.image.resize(p[None], m.shape)[0].numpy(), -1) for p, m in zip(probs, masks)]
    images = [ex["image"].numpy() for ex in examples]
    fig = figures.plot_segmentation_examples(images, masks, predictions, source.num_classes, title)
    figures.save_figure(fig, os.path.join(output_dir, "examples.png"))


def _write_skipped(cache, source, output_dir):
    """`skipped.txt`: the images left out as unreadable (`--skip_bad_images`), one per line."""
    skipped = cache.tables[cache.native].meta.get("skipped_index", [])
    if skipped:
        names = [source.files[i] if i < len(source.files) else f"index {i}" for i in skipped]
        atomic_write_text(os.path.join(output_dir, SKIPPED_FILE), "\n".join(names) + "\n")


def _check_inputs(loaded, source, bn_source, bn_images):
    source.labels.check_outputs(loaded.num_outputs, "model")
    if bn_images and bn_source is None:
        raise ValueError("`bn_images` needs `bn_source`: a training split to re-estimate BatchNorm on")
    if bn_source is not None and bn_source.name == source.name and bn_source.split == source.split:
        raise ValueError(
            f"BatchNorm re-estimation must not read the evaluation split ({source.name}, split "
            f"{source.split}): pass a training split"
        )


def _latency(loaded, resolutions, output_dir, repeats, precision, head):
    path = os.path.join(output_dir, "latency.json")
    cached = {}
    if os.path.exists(path):
        with open(path) as f:
            cached = {int(r): v for r, v in json.load(f).items()}
    if any(r not in cached for r in resolutions):
        models = {r: with_precision(rescale(loaded.model, r, arch=loaded.arch, head=head), precision)
                  for r in resolutions}
        cached = latency.latency_columns(models, loaded.native_resolution, repeats=repeats)
        atomic_write_text(path, json.dumps(cached, indent=2))
    return cached
