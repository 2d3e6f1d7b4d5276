"""The resolution sweep: one pass over the data evaluates a model at every resolution.

Each decoded image is resized to every resolution and fed to the model rebuilt for it
(`rescale`). Per-image predictions are kept per resolution as `PredictionTable`s in a store (a
directory, or memory). In a directory, progress is checkpointed every few batches, so an
interrupted sweep run again goes on where it stopped and gives the same table, and a cache of
another model, dataset or configuration is refused.

Distributed (`strategy`), every image is evaluated exactly once (see `engine`); only the chief
writes.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from reswise_tf.cost.flops import count_macs
from reswise_tf.data.preprocessing import check_crop_pct, check_preprocess
from reswise_tf.evaluation import engine
from reswise_tf.evaluation.store import DirectoryStore, MemoryStore, SweepMismatchError
from reswise_tf.evaluation.tasks import task_of
from reswise_tf.models.dtype_policy import with_precision
from reswise_tf.models.rescale import HEADS, rescale_all
from reswise_tf.runtime import distribute
from reswise_tf.runtime.precision import check_precision, note_if_slow
from reswise_tf.utils.checks import check_choice, check_positive_int

__all__ = ["DEFAULT_KEPT_CLASSES", "SweepConfig", "SweepMismatchError", "Variant", "sweep", "sweep_tables"]

DEFAULT_KEPT_CLASSES = 10  # classes kept per image in the cache (with their probabilities)


@dataclasses.dataclass
class SweepConfig:
    """How a sweep evaluates; everything that changes its results is in `fingerprint()`.

    Attributes:
      resolutions: input sizes (pixels) to evaluate; the model's native one is always added.
      preprocess: `preprocess_input` mode (`caffe`, `tf`, `torch`, `none`); None: the model's
        (`LoadedModel.preprocess`).
      crop_pct: centre-crop fraction for ImageNet-size images; None: the model's.
      batch_size: global batch size (a multiple of the number of replicas when distributed).
      topk: the k of top-k accuracy (default 5).
      kept_classes: classes kept per image in the cache, with their probabilities; None:
        `max(DEFAULT_KEPT_CLASSES, topk)`. A number below `topk` is an error (the cache could not
        score top-k).
      num_examples: evaluate only the first N examples (None: all).
      checkpoint_every: save progress every this many batches.
      precision: what the models compute in, `runtime.precision.PRECISIONS` (mixed precision:
        float32 variables, float32 softmax and probabilities).
      head: None, or "adaptive_pool" to run a classifier on a flattened feature map (VGG) at
        other sizes (see `models.rescale`).
    """

    resolutions: list
    preprocess: str | None = None
    crop_pct: float | None = None
    batch_size: int = 32
    topk: int = 5
    kept_classes: int | None = None
    num_examples: int | None = None
    checkpoint_every: int = 20
    precision: str = "float32"
    head: str | None = None

    def __post_init__(self):
        if not self.resolutions:
            raise ValueError("`resolutions` should name at least one resolution. Received []")
        for r in self.resolutions:
            check_positive_int(r, "resolutions")
        self.resolutions = sorted(set(self.resolutions), reverse=True)
        if self.preprocess is not None:
            check_preprocess(self.preprocess)
        if self.crop_pct is not None:
            check_crop_pct(self.crop_pct)
        for name in ("batch_size", "topk", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        if self.kept_classes is None:
            self.kept_classes = max(DEFAULT_KEPT_CLASSES, self.topk)
        check_positive_int(self.kept_classes, "kept_classes")
        if self.kept_classes < self.topk:
            raise ValueError(f"`kept_classes` should be at least topk={self.topk}: the cache keeps the classes "
                             f"top-k is scored on. Received kept_classes={self.kept_classes}")
        check_positive_int(self.num_examples, "num_examples", allow_none=True)
        check_precision(self.precision)
        check_choice(self.head, HEADS, "head")

    def for_model(self, loaded):
        """This configuration with the preprocessing and crop it leaves open (None) taken from
        `loaded` (a `models.LoadedModel`): what the sweep evaluates with."""
        return dataclasses.replace(
            self, preprocess=loaded.preprocess if self.preprocess is None else self.preprocess,
            crop_pct=loaded.crop_pct if self.crop_pct is None else self.crop_pct)

    def with_native(self, native_resolution):
        """The resolutions to evaluate, highest first, the native one included."""
        return sorted(set(self.resolutions) | {native_resolution}, reverse=True)

    def fingerprint(self):
        """The settings that change per-image results (not batch size or checkpointing)."""
        return {
            "preprocess": self.preprocess,
            "crop_pct": self.crop_pct,
            "kept_classes": self.kept_classes,
            "num_examples": self.num_examples,
            "precision": self.precision,
            **({"head": self.head} if self.head else {}),
        }


@dataclasses.dataclass(frozen=True)
class Variant:
    """Another version of every rescaled model, evaluated in the same pass over the data.

    Attributes:
      name: sub-folder of `output_dir` that holds its cache and reports (e.g. `bn_recalibrated`).
      transform: `fn(model_at_r, r) -> model` on the float32 rescaled model, e.g. BatchNorm
        re-estimation at r.
      description: JSON-serialisable facts that change its results (stored and compared on resume).
      precision: what it computes in; None: the sweep's precision.
    """

    name: str
    transform: object
    description: dict
    precision: str | None = None


def sweep(loaded, source, config, output_dir=None, *, strategy=None, verbose=1, variants=()):
    """Evaluates `loaded.model` at every resolution of `config` on `source`; returns the tables.

    Args:
      loaded: a `models.LoadedModel` (the model at its native resolution, and its facts).
      source: a `data.DataSource`.
      config: a `SweepConfig`.
      output_dir: where the prediction cache lives (`predictions/res_<R>.npz`); None keeps it
        in memory and writes nothing (a `MemoryStore`); or a store object.
      strategy: a `tf.distribute.Strategy` (default: the default strategy). With several
        workers, only the chief reads and writes `output_dir`; the others evaluate their share
        of the images, write nothing and return None.
      verbose: 1 shows a progress bar.
      variants: `Variant`s evaluated in the same pass; each keeps its own cache (in
        `output_dir/<name>/predictions/`); with a store, `sweep_tables` returns them.

    Returns:
      {resolution: PredictionTable} of the model itself, for every resolution of the config
      and the native one (None on a worker that is not the chief).
    """
    tables = sweep_tables(loaded, source, config, output_dir, strategy=strategy, verbose=verbose, variants=variants)
    return None if tables is None else tables[""]


def sweep_tables(loaded, source, config, output_dir=None, *, strategy=None, verbose=1, variants=()):
    """As `sweep`, but returns {variant name ("" for the model itself): {resolution: table}}."""
    strategy = strategy or tf.distribute.get_strategy()
    config = config.for_model(loaded)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"`batch_size` (global) should be a multiple of the {strategy.num_replicas_in_sync} replicas "
            f"of the strategy. Received batch_size={config.batch_size}"
        )
    task = check_task(loaded, source)
    store = _as_store(output_dir)
    resolutions = config.with_native(loaded.native_resolution)
    fingerprint = {"identity": loaded.identity or {}, "native_resolution": loaded.native_resolution,
                   "config": config.fingerprint(), "dataset": source.name, "split": source.split,
                   **source.fingerprint()}
    stores = {"": (store, fingerprint)}
    for v in variants:
        stores[v.name] = (store.child(v.name), {**fingerprint, "variant": v.description})
    jobs = [(name, r) for name in stores for r in resolutions]
    chief = distribute.is_chief(strategy)
    todo, state, skip = _plan(stores, jobs, strategy, task)
    if todo:
        _evaluate(loaded, source, config, stores, todo, (state, skip), strategy, variants, chief, verbose)
    if not chief:
        return None
    return {name: {r: s.load_table(r) for r in resolutions} for name, (s, _) in stores.items()}


def _as_store(output_dir):
    if output_dir is None:
        return MemoryStore()
    if isinstance(output_dir, (str, bytes)) or hasattr(output_dir, "__fspath__"):
        return DirectoryStore(str(output_dir))
    return output_dir


def check_task(loaded, source):
    """The task of `loaded`'s model (`tasks.task_of`), refused unless `source` is of it (a
    classification dataset given to a segmentation model, or the other way round)."""
    task = task_of(loaded.model)
    if task.name != source.task:
        raise ValueError(f"Dataset {source.name!r} is a {source.task} dataset, but the model "
                         f"'{loaded.model.name}' is a {task.name} model (its output is "
                         f"{tuple(loaded.model.outputs[0].shape[1:])}): pass a {task.name} dataset")
    return task


def _plan(stores, jobs, strategy, task):
    """(jobs not cached yet, the state of an interrupted pass over them, images it already
    evaluated), decided on the chief: every worker must evaluate the same jobs from the same
    image on (the same collectives); the other workers start with an empty state."""
    resumed = {}

    def decide():
        for s, fp in stores.values():
            s.check_fingerprint(fp)  # before any cached table is trusted
        todo = [job for job in jobs if not stores[job[0]][0].has(job[1])]
        resumed["state"] = engine.PassState.resume(stores[""][0].load_partial(), todo, task)
        return [job in todo for job in jobs] + [resumed["state"].count]

    *selected, done = distribute.decide_on_chief(strategy, decide, len(jobs) + 1)
    todo = [job for job, s in zip(jobs, selected) if s]
    return todo, resumed.get("state") or engine.PassState(todo, task), done


def _evaluate(loaded, source, config, stores, todo, resumed, strategy, variants, chief, verbose):
    """Builds every job's model (before anything is written), runs the pass, saves the tables."""
    if verbose:
        print(f"Evaluating: {', '.join(engine.job_name(job) for job in todo)}")
    plain = Variant("", lambda m, r: m, {})
    by_name = {"": plain, **{v.name: v for v in variants}}
    precision = {name: v.precision or config.precision for name, v in by_name.items()}
    note_if_slow(config.precision)
    with strategy.scope():
        base = rescale_all(loaded.model, sorted({r for _, r in todo}, reverse=True), arch=loaded.arch, head=config.head)
        models = _job_models(base, todo, by_name, precision)
    if chief:
        for s, fp in stores.values():
            s.record_fingerprint(fp)
    main, (state, skip) = stores[""][0], resumed
    expected = _expected(source, config)
    checkpoint = (lambda st: main.save_partial(st.to_arrays()) if st.count else None) if chief else None
    # Inputs are cast in the pipeline to what every job computes in (float32 if any job does).
    input_dtype = "float32" if "float32" in {precision[name] for name, _ in todo} else config.precision
    engine.run_pass(models, source, config, state, skip=skip, strategy=strategy, expected=expected,
                    checkpoint=checkpoint, verbose=verbose, input_dtype=input_dtype)
    if not chief:
        return
    skipped = _skipped(state, source, expected)
    if skipped and verbose:
        print(f"Skipped {len(skipped)} unreadable image(s).")
    for job in todo:
        meta = {"macs": int(count_macs(models[job], resolution=job[1])), "num_skipped": len(skipped),
                "skipped_index": skipped,
                "native_resolution": loaded.native_resolution, "num_classes": loaded.num_outputs,
                "precision": precision[job[0]],
                "resize": "direct" if source.small_images else f"crop {config.crop_pct:g}",
                **({"head": config.head} if config.head else {})}
        stores[job[0]][0].save_table(state.table(job, config.kept_classes, meta))
    main.clear_partial()


def _job_models(base, todo, variants, precision):
    """{job: model}: each variant's transform of the base model at the job's size, in the job's
    precision. A base model shared by every size (`rescale_all`) stays shared where the variant
    leaves it as it is, so its forward is traced once."""
    converted, models = {}, {}
    for name, r in todo:
        model = variants[name].transform(base[r], r)
        key = (id(model), precision[name])
        if key not in converted:
            converted[key] = (model, with_precision(model, precision[name]))  # keeps `model` alive
        models[(name, r)] = converted[key][1]
    return models


def _expected(source, config):
    expected = source.num_examples
    if config.num_examples is not None:
        expected = min(expected, config.num_examples) if expected else config.num_examples
    return expected


def _skipped(state, source, expected):
    """Dataset indices of the images not evaluated (skipped as unreadable); raises if any
    image was evaluated twice or, without `skip_bad_images`, if any is missing."""
    index = np.concatenate(state.index) if state.index else np.zeros(0, np.int64)
    if len(np.unique(index)) != len(index):
        raise RuntimeError("An image was evaluated twice; the dataset sharding is wrong")
    skipped = np.setdiff1d(np.arange(expected), index).tolist() if expected else []
    if skipped and source.num_examples and not source.skip_bad_images:
        raise RuntimeError(f"{len(skipped)} image(s) were not evaluated; the dataset sharding is wrong")
    return [int(i) for i in skipped]
