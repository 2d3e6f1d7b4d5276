"""The whole reduction study of one model on one dataset: sweep, then tables and figures."""

import os
import tempfile

from reswise_tf import distribute, reporting
from reswise_tf.sweep import sweep


def run_reduce(loaded, source, config, output_dir, *, strategy=None, verbose=1, title=None):
    """Sweeps `loaded.model` over `config.resolutions` on `source` and writes the reports.

    Writes into `output_dir`: `predictions/res_<R>.npz` (per-image cache), `results.csv`,
    `results.md`, `accuracy_vs_resolution.png`, `accuracy_vs_flops.png`. Returns the rows.
    """
    if source.num_classes > loaded.model.outputs[0].shape[-1]:
        raise ValueError(
            f"Dataset {source.name!r} has {source.num_classes} classes but the model has "
            f"{loaded.model.outputs[0].shape[-1]} outputs"
        )
    if strategy is not None and not distribute.is_chief(strategy):
        output_dir = tempfile.mkdtemp(prefix="reswise_worker_")
    tables = sweep(
        loaded.model,
        source,
        config,
        output_dir,
        arch=loaded.arch,
        identity=loaded.identity,
        strategy=strategy,
        verbose=verbose,
    )
    rows = reporting.sweep_rows(tables, config.native_resolution, config.topk)
    name = loaded.arch.name if loaded.arch else loaded.identity.get("model_path", {}).get("path", "model")
    title = title or f"{os.path.basename(str(name))} on {source.name} (native {config.native_resolution}px)"
    reporting.write_reports(rows, output_dir, config.native_resolution, title, config.topk)
    return rows
