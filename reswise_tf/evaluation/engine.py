"""The one pass over the data: every image decoded once, resized to every resolution and run
through every job's model (a job is a (variant, resolution) pair; variant "" is the model
itself). Only the chief of a distributed run keeps results.

Distributed (`strategy`), every image is evaluated exactly once: the stream of images is cut
into global batches, each worker preprocesses only its block of every batch, and the results
are gathered on every worker (see `distribute_batches`).

Public to the other stages (the rest serves `resolution_sweep`): `top_predictions` (the
deployed cascade keeps what the cache keeps), `forward_fn` and `pipeline_options` (benchmarks
time the sweep's own forward and input pipeline).
"""

import dataclasses
import time

import numpy as np
import tensorflow as tf

from reswise_tf.data import DataError, find_bad_image
from reswise_tf.data.preprocessing import multi_resolution_fn
from reswise_tf.evaluation.tasks import Classification
from reswise_tf.runtime.logs import expect_one_trace_per_model
from reswise_tf.utils.progress import Progress

expect_one_trace_per_model("forward_fn.<locals>.forward", "_gather_fn.<locals>.gather")


def job_name(job):
    name, r = job
    return f"{name}@{r}" if name else str(r)


@dataclasses.dataclass
class PassState:
    """What a pass has evaluated so far, per job, in the order the images came.

    Attributes:
      jobs: the (variant, resolution) jobs of the pass.
      task: what each image's record holds (`tasks.Classification` or `tasks.Segmentation`).
      index, labels: one int64 array per batch (dataset positions and true classes; zeros for
        segmentation, whose labels are class maps).
      records: {job: one {key: (n, ...) array} per batch}, the task's per-image record.
      seconds, timed: {job: forward seconds, images timed} (full batches after the first).
    """

    jobs: list
    task: object = dataclasses.field(default_factory=Classification)
    index: list = dataclasses.field(default_factory=list)
    labels: list = dataclasses.field(default_factory=list)
    records: dict = dataclasses.field(default_factory=dict)
    seconds: dict = dataclasses.field(default_factory=dict)
    timed: dict = dataclasses.field(default_factory=dict)
    _tallies: dict = dataclasses.field(default_factory=dict, repr=False)  # job: (batches summed, sums)

    def __post_init__(self):
        for job in self.jobs:
            self.records.setdefault(job, [])
            self.seconds.setdefault(job, 0.0)
            self.timed.setdefault(job, 0)

    @property
    def count(self):
        return sum(len(chunk) for chunk in self.index)

    def add_batch(self, index, labels):
        self.index.append(index)
        self.labels.append(labels)

    def add_outputs(self, job, record, seconds=None):
        """The record of `job` on the batch added last (and the seconds it took)."""
        self.records[job].append(record)
        if seconds is not None:
            self.add_time(job, seconds, len(self.index[-1]))

    def add_time(self, job, seconds, images):
        self.seconds[job] += seconds
        self.timed[job] += images

    def running(self, job):
        """The task's figure of `job` so far (top-1 or mIoU, a fraction), for the progress line:
        running sums, to which each call adds only the batches since the last."""
        done, tally = self._tallies.get(job, (0, None))
        for record, labels in zip(self.records[job][done:], self.labels[done:]):
            tally = self.task.tally(tally, record, labels)
        self._tallies[job] = (len(self.records[job]), tally)
        return self.task.value(tally)

    def _record(self, job):
        return {key: _concat([r[key] for r in self.records[job]], dtype) for key, dtype in self.task.keys}

    def to_arrays(self):
        """The state as flat named arrays (saved as the partial checkpoint)."""
        arrays = {"jobs": np.array([job_name(j) for j in self.jobs]), "index": _concat(self.index, np.int64),
                  "labels": _concat(self.labels, np.int64)}
        for job in self.jobs:
            name = job_name(job)
            arrays.update({f"{key}_{name}": value for key, value in self._record(job).items()})
            arrays[f"seconds_{name}"] = np.array(self.seconds[job])
            arrays[f"timed_{name}"] = np.array(self.timed[job])
        return arrays

    @classmethod
    def resume(cls, arrays, jobs, task=None):
        """The state saved by `to_arrays` when it was for the same jobs, else an empty one."""
        state = cls(list(jobs), task or Classification())
        if arrays is None or sorted(arrays["jobs"].tolist()) != sorted(job_name(j) for j in jobs):
            return state
        state.add_batch(arrays["index"], arrays["labels"])
        for job in jobs:
            name = job_name(job)
            state.add_outputs(job, {key: arrays[f"{key}_{name}"] for key, _ in state.task.keys})
            state.seconds[job] = float(arrays[f"seconds_{name}"])
            state.timed[job] = int(arrays[f"timed_{name}"])
        return state

    def table(self, job, kept_classes, meta):
        """The table of `job` (the task's kind), sorted by dataset index."""
        index = _concat(self.index, np.int64)
        order = np.argsort(index, kind="stable")
        meta = {**meta, "forward_seconds": float(self.seconds[job]), "timed_images": int(self.timed[job])}
        record = {key: value[order] for key, value in self._record(job).items()}
        return self.task.table(job[1], index[order], _concat(self.labels, np.int64)[order], record, meta, kept_classes)


def _concat(chunks, dtype, k=None):
    if not chunks:
        return np.zeros((0,) if k is None else (0, k), dtype)
    return np.concatenate(chunks).astype(dtype)


def top_predictions(model, images, kept_classes):
    """(int32 class ids, float32 probabilities) of the `kept_classes` most probable classes of
    each image, by decreasing probability (a softmax is applied to models that end in logits)."""
    record = Classification().record(model, images, None, kept_classes)
    return record["ids"], record["probs"]


def forward_fn(model, kept_classes, strategy, task=None):
    """A compiled forward of `model` returning the task's record ({key: per-image tensor}; by
    default the top `kept_classes` ids and probabilities) of every image of a global batch,
    gathered from all replicas. Its arguments: the images and their labels (class maps for
    segmentation)."""
    task = task or Classification()

    def replica_fn(images, labels):
        return task.record(model, images, labels, kept_classes)

    @tf.function(reduce_retracing=True)
    def forward(images, labels):
        record = strategy.run(replica_fn, args=(images, labels))
        return {key: strategy.gather(value, axis=0) for key, value in record.items()}

    return forward


def _gather_fn(strategy):
    @tf.function(reduce_retracing=True)
    def gather(index):
        return strategy.gather(index, axis=0)

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
    Auto-sharding is off too: `distribute_batches` shards by itself.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options


def distribute_batches(ds, fn, batch_size, strategy):
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


def input_batches(source, config, resolutions, channels, skip, strategy, dtype="float32"):
    """The distributed batches of the pass: the first `config.num_examples` images of `source`
    from image `skip` on, each prepared at every one of `resolutions` and cast to `dtype`."""
    ds = source.dataset
    if config.num_examples is not None:
        ds = ds.take(config.num_examples)
    fn = multi_resolution_fn(resolutions, mode=config.preprocess, crop_pct=config.crop_pct,
                             direct=source.small_images, channels=channels, dtype=dtype)
    return distribute_batches(ds.skip(skip), fn, config.batch_size, strategy)


def run_pass(models, source, config, state, *, skip, strategy, expected, checkpoint=None, verbose=1,
             input_dtype="float32"):
    """Evaluates every job of `models` ({job: model}) on the images after the first `skip`
    (those already in `state` on the chief); adds the results to `state`.

    `checkpoint(state)` is called every `config.checkpoint_every` batches and before an
    unreadable image stops the pass (which raises a `DataError` naming the file when it can).
    Speed is timed on full batches after the first (which traces); a pass of one batch times
    a second call on it, so every job gets a measured speed.
    """
    jobs = list(models)
    resolutions = sorted({r for _, r in jobs}, reverse=True)
    channels = next(iter(models.values())).inputs[0].shape[-1]
    by_model = {}  # one compiled forward per model (a model shared by every size is traced once)
    for m in models.values():
        by_model.setdefault(id(m), forward_fn(m, config.kept_classes, strategy, state.task))
    forwards = {job: by_model[id(m)] for job, m in models.items()}
    gather = _gather_fn(strategy)
    iterator = iter(input_batches(source, config, resolutions, channels, skip, strategy, input_dtype))
    progress = Progress(expected, start=skip) if verbose else None
    batches, seen, last = 0, skip, None
    segmentation = state.task.name == "segmentation"
    while (batch := _next_batch(iterator, source, state, seen, checkpoint)) is not None:
        index = gather(batch["index"]).numpy()
        real = index >= 0  # placeholders that fill the last batch are dropped
        labels = np.zeros(int(real.sum()), np.int64) if segmentation else gather(batch["label"]).numpy()[real]
        state.add_batch(index[real], labels)
        seen += int(real.sum())
        for job in jobs:
            start = time.perf_counter()
            record = forwards[job](batch["images"][str(job[1])], batch["label"])
            record = {key: value.numpy()[real] for key, value in record.items()}
            state.add_outputs(job, record, time.perf_counter() - start if batches and real.all() else None)
        batches, last = batches + 1, (batch, len(real))
        if progress is not None:
            progress.update(seen, _running(state, jobs))
        if checkpoint is not None and batches % config.checkpoint_every == 0:
            checkpoint(state)
    if last is not None:
        _time_untimed(forwards, state, *last)
    if progress is not None:
        progress.close(_running(state, jobs))


def _running(state, jobs):
    return [(f"{state.task.running_metric}@{job_name(j)}", state.running(j)) for j in jobs[:4]]


def _time_untimed(forwards, state, batch, images):
    """Times one more call on `batch` (of `images` rows, placeholders included: they are
    computed too) for every job that no full batch timed (a pass of one batch, whose only
    call also traced the function)."""
    for job, forward in forwards.items():
        if state.timed[job] == 0 and images:
            start = time.perf_counter()
            record = forward(batch["images"][str(job[1])], batch["label"])
            next(iter(record.values())).numpy()
            state.add_time(job, time.perf_counter() - start, images)


def _next_batch(iterator, source, state, seen, checkpoint):
    """The next batch, None at the end; an undecodable image saves progress and raises."""
    try:
        return next(iterator)
    except StopIteration:
        return None
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        if checkpoint is not None:
            checkpoint(state)
        bad = find_bad_image(source.files, seen) if source.files else None
        where = f"image {bad}" if bad else "an image"
        raise DataError(
            f"Cannot decode {where} ({e.message.splitlines()[0]}). Fix or remove it, or pass "
            "--skip_bad_images to skip unreadable images (they are counted and reported)."
        ) from None
