"""The one-call API for notebooks: `evaluate(model, data, resolutions)` sweeps an in-memory
model over in-memory data and returns an `Evaluation` with its rows, table, figure and the
selectors over its cache. Nothing is written unless `output_dir` is given (then it is the
command line's resumable sweep and cache)."""

import dataclasses
import hashlib

import numpy as np

from reswise_tf.data.readers import from_memory
from reswise_tf.evaluation.predictions import SweepCache
from reswise_tf.evaluation.resolution_sweep import SweepConfig, sweep
from reswise_tf.models.loading import LoadedModel
from reswise_tf.report import figures, tables
from reswise_tf.report.sweep import write_reports
from reswise_tf.selection.run import run_selection


@dataclasses.dataclass
class Evaluation:
    """What `evaluate` measured.

    Attributes:
      rows: one dict per resolution, highest first, with the `results.csv` columns.
      cache: the `SweepCache` (per-image predictions at every resolution).
      title: the title of the table and figure.
      topk: the k asked for (columns say the k used: at most the classes kept).
    """

    rows: list
    cache: SweepCache
    title: str
    topk: int

    def to_markdown(self):
        """The thesis-style table (signed drops against native)."""
        return tables.to_markdown(self.rows, self.title)

    def plot(self):
        """A matplotlib figure: accuracy against resolution and against FLOPs."""
        return figures.plot_sweep(self.rows, self.cache.native, self.title)

    def select(self, name="all", **options):
        """Runs the selector `name` (or "all") over the cache; returns a
        `selection.SelectionReport` (`.results`, `.rows`). `options` are those of
        `selection.run_selection` (e.g. trials=10, choices=[224, 192], max_drops=[0.5])."""
        return run_selection(self.cache.tables, (name,), topk=self.topk, **options)


def evaluate(model, data, resolutions, *, preprocess=None, crop_pct=None, topk=5, batch_size=32,
             output_dir=None, arch=None, native_resolution=None, num_examples=None, precision="float32", verbose=0):
    """Evaluates a trained Keras classifier (or segmenter) at every one of `resolutions` (its
    native size is added), weights unchanged, on in-memory data, in one pass.

    Args:
      model: a Keras functional classifier or segmenter with one image input (its input size is
        the native resolution, or pass `native_resolution`).
      data: a `tf.data.Dataset` of `(image, label)` or `{"image", "label"}` elements (single
        images), or a tuple `(images, labels)` of numpy arrays.
      resolutions: input sizes in pixels.
      preprocess: `preprocess_input` mode applied to the images (`caffe`, `tf`, `torch`, or
        `none` when the data is already what the model takes or the model normalises itself).
        Default: the architecture's with `arch`, else `none`.
      crop_pct: centre-crop fraction for images larger than 64 px. Default: the architecture's
        with `arch`, else 0.875.
      topk: the k of the top-k accuracy.
      batch_size: images per forward pass.
      output_dir: None (nothing written) or a directory for the resumable cache and reports.
      arch: optional registered architecture name, to rebuild with its own builder.
      native_resolution: the size the model was trained at (default: its input size).
      num_examples: evaluate only the first N examples.
      precision: what the model computes in: "float32", "bfloat16" or "float16" (mixed
        precision: float32 weights and probabilities).
      verbose: 1 shows a progress line.
    """
    loaded = LoadedModel.from_model(model, arch=arch, native_resolution=native_resolution,
                                    preprocess=preprocess, crop_pct=crop_pct)
    source = from_memory(data, num_classes=loaded.num_outputs, name=_data_name(data))
    config = SweepConfig(resolutions=list(resolutions), batch_size=batch_size, topk=topk, num_examples=num_examples,
                         precision=precision)
    cache = SweepCache(sweep(loaded, source, config, output_dir, verbose=verbose))
    rows = tables.sweep_rows(cache, topk)
    title = f"{model.name} (native {cache.native}px)"
    if output_dir is not None:
        write_reports(rows, output_dir, cache.native, title)
    return Evaluation(rows=rows, cache=cache, title=title, topk=topk)


def _data_name(data):
    """How the data is named in a cache's fingerprint: arrays by a digest of their bytes."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        digest = hashlib.sha1()
        for array in data:
            digest.update(np.ascontiguousarray(array).tobytes())
        return f"arrays:sha1={digest.hexdigest()}"
    return "tf.data.Dataset"
