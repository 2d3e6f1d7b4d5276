"""The whole reduction study of one model on one dataset: sweep, then tables and figures."""

import json
import os

import numpy as np
import tensorflow as tf

from reswise_tf import latency, predictions, preprocessing, reporting
from reswise_tf.rescale import rescale
from reswise_tf.sweep import Variant, sweep

BN_VARIANT = "bn_recalibrated"


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
):
    """Sweeps `loaded.model` over `config.resolutions` on `source` and writes the reports.

    Writes into `output_dir`: `predictions/res_<R>.npz` (per-image cache), `results.csv`,
    `results.md`, `accuracy_vs_resolution.png`, `accuracy_vs_flops.png`. Returns the rows.
    Distributed over several workers, every worker evaluates its share of the images; the
    chief writes everything and returns the rows, the others write nothing and return None.

    Args:
      bn_source, bn_images: with `bn_images` > 0, every rescaled model is also evaluated with
        its BatchNorm statistics re-estimated on the first `bn_images` images of `bn_source`
        (a *training* split; labels unused), in the same pass; its cache goes to
        `output_dir/bn_recalibrated/` and results.csv gains `*_bn` columns.
      measure_latency: adds median batch-1 and batch-32 latency per resolution and the
        measured speed-ups (cached in `latency.json`), and `flops_drop_vs_speedup.png`.
    """
    n_out = loaded.model.outputs[0].shape[-1]
    if source.num_classes > n_out:
        raise ValueError(f"Dataset {source.name!r} has {source.num_classes} classes but the model has {n_out} outputs")
    if bn_images and bn_source is None:
        raise ValueError("`bn_images` needs `bn_source`: a training split to re-estimate BatchNorm on")
    if bn_source is not None and bn_source.name == source.name and bn_source.split == source.split:
        raise ValueError(
            f"BatchNorm re-estimation must not read the evaluation split ({source.name}, split "
            f"{source.split}): pass a training split"
        )
    channels = loaded.model.inputs[0].shape[-1]
    variants = []
    if bn_images:
        variants.append(bn_variant(bn_source, bn_images, config, channels, small=source.small_images))
    tables = sweep(
        loaded.model,
        source,
        config,
        output_dir,
        arch=loaded.arch,
        identity=loaded.identity,
        strategy=strategy,
        verbose=verbose,
        variants=variants,
    )
    if tables is None:  # not the chief
        return None
    bn_tables = predictions.load_tables(os.path.join(output_dir, BN_VARIANT)) if bn_images else None
    rows = reporting.sweep_rows(tables, config.native_resolution, config.topk, bn_tables=bn_tables)
    if measure_latency:
        measured = _latency(loaded, config, output_dir, latency_repeats)
        for row in rows:
            row.update(measured[row["resolution"]])
    name = loaded.arch.name if loaded.arch else loaded.identity.get("model_path", {}).get("path", "model")
    title = title or f"{os.path.basename(str(name))} on {source.name} (native {config.native_resolution}px)"
    reporting.write_reports(rows, output_dir, config.native_resolution, title, config.topk)
    return rows


def bn_variant(bn_source, num_images, config, channels, *, small):
    """The `Variant` that re-estimates BatchNorm statistics at each resolution on the first
    `num_images` images of `bn_source` (decoded once, resized to each resolution)."""
    from reswise_tf.batchnorm import recalibrate_bn

    raw = list(bn_source.dataset.take(num_images).map(lambda ex: ex["image"]).as_numpy_iterator())
    if len(raw) < num_images:
        raise ValueError(f"`recalibrate_bn` asks for {num_images} images; {bn_source.name} has {len(raw)}")

    def transform(model, resolution):
        images = np.stack([
            preprocessing.normalize(
                preprocessing.resize(
                    preprocessing.to_channels(tf.constant(im), channels), resolution,
                    crop_pct=config.crop_pct, direct=small,
                ),
                config.preprocess,
            ).numpy()
            for im in raw
        ])
        return recalibrate_bn(model, images, batch_size=min(config.batch_size, 64))

    description = {"recalibrate_bn": num_images, "dataset": bn_source.name, "split": bn_source.split}
    return Variant(BN_VARIANT, transform, description)


def _latency(loaded, config, output_dir, repeats):
    path = os.path.join(output_dir, "latency.json")
    cached = {}
    if os.path.exists(path):
        with open(path) as f:
            cached = {int(r): v for r, v in json.load(f).items()}
    todo = [r for r in config.resolutions if r not in cached]
    if todo:
        models = {r: rescale(loaded.model, r, arch=loaded.arch) for r in config.resolutions}
        cached = latency.latency_columns(models, config.native_resolution, repeats=repeats)
        predictions.atomic_write_text(path, json.dumps(cached, indent=2))
    return cached
