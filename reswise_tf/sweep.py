"""The resolution sweep: every image decoded once, run through the model at every resolution.

One pass over the data evaluates all resolutions not yet cached: each decoded image is resized
to every resolution and fed to the model rebuilt for it (`rescale`). Per-image predictions are
written per resolution as `PredictionTable`s; progress is checkpointed every few batches, so an
interrupted sweep run again goes on where it stopped and gives the same table.

Distributed (`strategy`), every image is evaluated exactly once: the stream of images is cut
into global batches, each worker preprocesses only its block of every batch, and the results
are gathered on every worker; only the chief writes (see `_distribute`).
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from reswise_tf import data as data_lib
from reswise_tf import distribute, predictions, preprocessing
from reswise_tf.flops import count_macs
from reswise_tf.rescale import rescale

_PARTIAL = "partial.npz"


@dataclasses.dataclass
class SweepConfig:
    """What a sweep evaluates; everything that changes its results is in `fingerprint()`.

    Attributes:
      resolutions: input sizes (pixels) to evaluate; the native one is always included.
      native_resolution: the size the model was trained at (the reference row).
      preprocess: `preprocess_input` mode (`caffe`, `tf`, `torch`, `none`).
      crop_pct: centre-crop fraction for ImageNet-size images.
      batch_size: global batch size (a multiple of the number of replicas when distributed).
      topk: the k of top-k accuracy (default 5).
      cache_k: classes kept per image in the cache (>= topk).
      num_examples: evaluate only the first N examples (None: all).
      checkpoint_every: save progress every this many batches.
    """

    resolutions: list
    native_resolution: int
    preprocess: str = "none"
    crop_pct: float = 0.875
    batch_size: int = 32
    topk: int = 5
    cache_k: int = 10
    num_examples: int | None = None
    checkpoint_every: int = 20

    def __post_init__(self):
        if not self.resolutions:
            raise ValueError("`resolutions` should name at least one resolution. Received []")
        for r in self.resolutions:
            if isinstance(r, bool) or not isinstance(r, int) or r < 1:
                raise ValueError(
                    f"`resolutions` should be positive integers. Received resolutions={self.resolutions!r}"
                )
        self.resolutions = sorted(set(self.resolutions) | {self.native_resolution}, reverse=True)
        preprocessing.check_preprocess(self.preprocess)
        preprocessing.check_crop_pct(self.crop_pct)
        for name in ("batch_size", "topk", "cache_k", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` should be a positive integer. Received {name}={value!r}")
        if self.num_examples is not None and (
            not isinstance(self.num_examples, int) or self.num_examples < 1
        ):
            raise ValueError(
                f"`num_examples` should be a positive integer or None. Received num_examples={self.num_examples!r}"
            )
        self.cache_k = max(self.cache_k, self.topk)

    def fingerprint(self):
        """The settings that change per-image results (not batch size or checkpointing)."""
        return {
            "native_resolution": self.native_resolution,
            "preprocess": self.preprocess,
            "crop_pct": self.crop_pct,
            "cache_k": self.cache_k,
            "num_examples": self.num_examples,
        }


class SweepMismatchError(ValueError):
    """`output_dir` holds a sweep of another model, dataset or configuration."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """Another version of every rescaled model, evaluated in the same pass over the data.

    Attributes:
      name: sub-folder of `output_dir` that holds its cache and reports (e.g. `bn_recalibrated`).
      transform: `fn(model_at_r, r) -> model`, e.g. BatchNorm re-estimation at r.
      description: JSON-serialisable facts that change its results (stored and compared on resume).
    """

    name: str
    transform: object
    description: dict


def sweep(model, source, config, output_dir, *, arch=None, identity=None, strategy=None, verbose=1, variants=()):
    """Evaluates `model` at every resolution of `config` on `source`; returns the tables.

    Args:
      model: the trained classifier at its native resolution.
      source: a `data.DataSource`.
      config: a `SweepConfig`.
      output_dir: where the prediction cache lives (`predictions/res_<R>.npz`).
      arch: optional `ArchSpec` (or name) used to rebuild the model, see `rescale`.
      identity: JSON-serialisable description of model and data (stored, and compared on
        resume: a cache of another model or dataset is an error, never mixed in).
      strategy: a `tf.distribute.Strategy` (default: the default strategy). With several
        workers, only the chief reads and writes `output_dir`; the others evaluate their share
        of the images, write nothing and return None.
      verbose: 1 shows a progress bar.
      variants: `Variant`s evaluated in the same pass; each writes its own cache under
        `output_dir/<name>/predictions/` (read it with `predictions.load_tables`).

    Returns:
      {resolution: PredictionTable} of the model itself, for every resolution of the config
      (None on a worker that is not the chief).
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"`batch_size` (global) should be a multiple of the {replicas} replicas of the strategy. "
            f"Received batch_size={config.batch_size}"
        )
    chief = distribute.is_chief(strategy)
    fingerprint = {"identity": identity or {}, "config": config.fingerprint(), "dataset": source.name,
                   "split": source.split}
    folders = {"": (output_dir, fingerprint)}
    for v in variants:
        folders[v.name] = (os.path.join(output_dir, v.name), {**fingerprint, "variant": v.description})
    jobs = [(name, r) for name in folders for r in config.resolutions]
    partial = {}

    def plan():  # on the chief: what is cached, and where an interrupted pass stopped
        for folder, fp in folders.values():
            _check_fingerprint(folder, fp)  # before any cached table is trusted
        todo = [(name, r) for name, r in jobs if not os.path.exists(predictions.table_path(folders[name][0], r))]
        partial["state"] = _load_partial(output_dir, todo)
        return [job in todo for job in jobs] + [sum(len(chunk) for chunk in partial["state"]["index"])]

    # Every worker must evaluate the same jobs from the same image on (the same collectives).
    *selected, n_done = distribute.decide_on_chief(strategy, plan, len(jobs) + 1)
    todo = [job for job, s in zip(jobs, selected) if s]
    if todo:
        if verbose:
            print(f"Evaluating: {', '.join(f'{name}@{r}' if name else str(r) for name, r in todo)}")
        transforms = {v.name: v.transform for v in variants}
        models = {}
        with strategy.scope():  # every model is built before anything is written
            base = {r: rescale(model, r, arch=arch) for r in sorted({r for _, r in todo}, reverse=True)}
            for name, r in todo:
                models[(name, r)] = transforms[name](base[r], r) if name else base[r]
        if chief:
            for folder, fp in folders.values():
                _write_fingerprint(folder, fp)
        state = partial.get("state") or _empty_state(todo)
        _evaluate(models, source, config, output_dir, {n: f for n, (f, _) in folders.items()}, strategy, verbose,
                  state=state, skip=n_done, chief=chief)
    if not chief:
        return None
    return {r: predictions.PredictionTable.load(predictions.table_path(output_dir, r)) for r in config.resolutions}


def _check_fingerprint(output_dir, fingerprint):
    path = os.path.join(output_dir, "predictions", "sweep.json")
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        if previous != json.loads(json.dumps(fingerprint)):
            raise SweepMismatchError(
                f"`output_dir` {output_dir!r} holds predictions of another sweep "
                f"({json.dumps(previous, sort_keys=True)}); this one is "
                f"{json.dumps(fingerprint, sort_keys=True)}. Use another --output_dir or delete it."
            )


def _write_fingerprint(output_dir, fingerprint):
    path = os.path.join(output_dir, "predictions", "sweep.json")
    if not os.path.exists(path):
        predictions.atomic_write_text(path, json.dumps(fingerprint, indent=2, sort_keys=True))


def _forward_fn(model, cache_k, strategy):
    softmax = not outputs_probabilities(model)

    def replica_fn(images):
        outputs = model(images, training=False)
        if softmax:
            outputs = tf.nn.softmax(outputs, axis=-1)
        probs, ids = tf.math.top_k(outputs, k=min(cache_k, outputs.shape[-1]))
        return tf.cast(ids, tf.int32), probs

    @tf.function(reduce_retracing=True)
    def forward(images):
        ids, probs = strategy.run(replica_fn, args=(images,))
        return strategy.gather(ids, axis=0), strategy.gather(probs, axis=0)

    return forward


def outputs_probabilities(model):
    """Whether the model's last layer already applies a softmax (else its outputs are logits)."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(last, "activation", None) is keras.activations.softmax


def _gather_fn(strategy):
    @tf.function(reduce_retracing=True)
    def gather(labels, index):
        return strategy.gather(labels, axis=0), strategy.gather(index, axis=0)

    return gather


def _placeholders(spec, count):
    """`count` examples shaped like `spec` with index -1: they fill the last batch, and their
    results are dropped."""

    def make(_):
        example = {k: tf.zeros([1 if d is None else d for d in s.shape], s.dtype) for k, s in spec.items()}
        example["index"] = tf.constant(-1, spec["index"].dtype)
        return example

    return tf.data.Dataset.range(count).map(make)


def pipeline_options():
    """tf.data options of the sweep's input pipeline.

    Autotuning is off: deleting an autotuned iterator waits for the autotuner's next wake-up,
    and its period doubles as the pass goes on (0.01, 0.03, ... 20.5, 41 s), so a pass could
    end with a pause of tens of seconds. Without it, AUTOTUNE parallelism is one call per core.
    Auto-sharding is off too: `_distribute` shards by itself.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options


def _distribute(ds, fn, batch_size, strategy):
    """Batches of `fn(example)` for `strategy`, every example on exactly one replica.

    The stream is padded with `batch_size - 1` placeholders (index -1) and cut into full
    global batches, so every replica gets a batch of the same static shape at every step and
    every worker runs the same number of steps: no partial or empty batches (TPUs need static
    shapes; a worker out of data would leave the others waiting in a collective). Each worker
    keeps its own block of every global batch *before* `fn` (resizing to every resolution, the
    expensive part), so that work is not repeated on every worker. tf.data's auto-sharding is
    off: DATA sharding discards at the end of the pipeline (every worker would preprocess every
    image) and FILE sharding would break the global `index` and `num_examples`.
    """
    ds = ds.concatenate(_placeholders(ds.element_spec, batch_size - 1))
    global_batches = ds.window(batch_size, drop_remainder=True)

    def dataset_fn(context):
        per_worker = batch_size // context.num_input_pipelines
        start = context.input_pipeline_id * per_worker
        shard = global_batches.flat_map(lambda w: tf.data.Dataset.zip(w).skip(start).take(per_worker))
        shard = shard.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        shard = shard.batch(context.get_per_replica_batch_size(batch_size), drop_remainder=True)
        return shard.with_options(pipeline_options()).prefetch(2)

    return strategy.distribute_datasets_from_function(dataset_fn)


def _evaluate(models, source, config, output_dir, folders, strategy, verbose, *, state, skip, chief):
    """One pass over the data for every job `(variant, resolution)` of `models`, from image
    `skip` on (`state` holds the results before it on the chief); only the chief writes."""
    todo = list(models)
    resolutions = sorted({r for _, r in todo}, reverse=True)
    channels = next(iter(models.values())).inputs[0].shape[-1]
    macs = {job: count_macs(m) for job, m in models.items()}
    forwards = {job: _forward_fn(m, config.cache_k, strategy) for job, m in models.items()}
    gather = _gather_fn(strategy)

    ds = source.dataset
    if config.num_examples is not None:
        ds = ds.take(config.num_examples)
    ds = ds.skip(skip)
    fn = preprocessing.multi_resolution_fn(
        resolutions,
        mode=config.preprocess,
        crop_pct=config.crop_pct,
        direct=source.small_images,
        channels=channels,
    )
    ds = _distribute(ds, fn, config.batch_size, strategy)

    expected = source.num_examples
    if config.num_examples is not None:
        expected = min(expected, config.num_examples) if expected else config.num_examples
    bar = keras.utils.Progbar(expected or None, verbose=verbose, unit_name="image") if verbose else None
    if bar is not None and skip:
        bar.update(skip)
    iterator = iter(ds)
    batches, done = 0, skip
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        except tf.errors.InvalidArgumentError as e:
            if chief:
                _save_partial(output_dir, todo, state)
            bad = data_lib.find_bad_image(source.files, done) if source.files else None
            where = f"image {bad}" if bad else "an image"
            raise data_lib.DataError(
                f"Cannot decode {where} ({e.message.splitlines()[0]}). Fix or remove it, or pass "
                "--skip_bad_images to skip unreadable images (they are counted and reported)."
            ) from None
        labels, index = gather(batch["label"], batch["index"])
        real = index.numpy() >= 0  # placeholders that fill the last batch are dropped
        index = index.numpy()[real]
        state["labels"].append(labels.numpy()[real])
        state["index"].append(index)
        done += len(index)
        # Speed is timed on full batches after the first (which includes tracing).
        timed = batches > 0 and real.all()
        for job in todo:
            start = time.perf_counter()
            ids, probs = forwards[job](batch["images"][str(job[1])])
            ids, probs = ids.numpy()[real], probs.numpy()[real]
            if timed:
                state["seconds"][job] += time.perf_counter() - start
                state["timed"][job] += len(index)
            state["ids"][job].append(ids)
            state["probs"][job].append(probs)
        batches += 1
        if bar is not None:
            values = [(f"top1@{_job_name(job)}", _running_top1(state, job)) for job in todo[:4]]
            bar.add(len(index), values=values)
        if chief and batches % config.checkpoint_every == 0:
            _save_partial(output_dir, todo, state)
    if not chief:
        return

    index = _concat(state["index"], np.int64)
    order = np.argsort(index, kind="stable")
    if len(np.unique(index)) != len(index):
        raise RuntimeError("An image was evaluated twice; the dataset sharding is wrong")
    skipped = (expected - len(index)) if expected else 0
    if skipped and source.num_examples and not source.skip_bad_images:
        raise RuntimeError(f"{skipped} image(s) were not evaluated; the dataset sharding is wrong")
    if skipped and verbose:
        print(f"Skipped {skipped} unreadable image(s).")
    for job in todo:
        name, r = job
        table = predictions.PredictionTable(
            resolution=r,
            index=index[order],
            labels=_concat(state["labels"], np.int64)[order],
            top_ids=_concat(state["ids"][job], np.int32, config.cache_k)[order],
            top_probs=_concat(state["probs"][job], np.float32, config.cache_k)[order],
            meta={
                "macs": int(macs[job]),
                "forward_seconds": float(state["seconds"][job]),
                "timed_images": int(state["timed"][job]),
                "num_skipped": int(max(skipped, 0)),
                "native_resolution": config.native_resolution,
            },
        )
        table.save(predictions.table_path(folders[name], r))
    partial = os.path.join(output_dir, "predictions", _PARTIAL)
    if os.path.exists(partial):
        os.remove(partial)


def _job_name(job):
    name, r = job
    return f"{name}@{r}" if name else str(r)


def _running_top1(state, job):
    if not state["ids"][job]:
        return 0.0
    ids, labels = state["ids"][job][-1], state["labels"][-1]
    return float(np.mean(ids[:, 0] == labels))


def _concat(chunks, dtype, k=None):
    if not chunks:
        return np.zeros((0,) if k is None else (0, k), dtype)
    return np.concatenate(chunks).astype(dtype)


def _empty_state(todo):
    return {"index": [], "labels": [], "ids": {j: [] for j in todo}, "probs": {j: [] for j in todo},
            "seconds": {j: 0.0 for j in todo}, "timed": {j: 0 for j in todo}}


def _save_partial(output_dir, todo, state):
    if not state["index"]:
        return
    arrays = {"jobs": np.array([_job_name(j) for j in todo]), "index": np.concatenate(state["index"]),
              "labels": np.concatenate(state["labels"])}
    for job in todo:
        key = _job_name(job)
        arrays[f"ids_{key}"] = np.concatenate(state["ids"][job])
        arrays[f"probs_{key}"] = np.concatenate(state["probs"][job])
        arrays[f"seconds_{key}"] = np.array(state["seconds"][job])
        arrays[f"timed_{key}"] = np.array(state["timed"][job])
    predictions.atomic_save_npz(os.path.join(output_dir, "predictions", _PARTIAL), arrays)


def _load_partial(output_dir, todo):
    """Progress of an interrupted pass over the same jobs (else an empty state)."""
    state = _empty_state(todo)
    path = os.path.join(output_dir, "predictions", _PARTIAL)
    if not os.path.exists(path):
        return state
    with np.load(path) as saved:
        if sorted(saved["jobs"].tolist()) != sorted(_job_name(j) for j in todo):
            return state
        state["index"].append(saved["index"])
        state["labels"].append(saved["labels"])
        for job in todo:
            key = _job_name(job)
            state["ids"][job].append(saved[f"ids_{key}"])
            state["probs"][job].append(saved[f"probs_{key}"])
            state["seconds"][job] = float(saved[f"seconds_{key}"])
            state["timed"][job] = int(saved[f"timed_{key}"])
    return state
