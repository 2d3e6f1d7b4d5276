"""Measured latency per resolution, beside FLOPs (FLOPs are not latency: memory traffic, kernel
launch and per-layer overheads do not shrink with the input)."""

import statistics
import time

import numpy as np
import tensorflow as tf

from reswise_tf.utils.checks import check_positive_int


def median_latency(model, batch_size, *, repeats=20, warmup=3, seed=0, clock=time.perf_counter):
    """Median wall time (seconds, read from `clock`) of one compiled forward pass on a batch of
    `batch_size` random images.

    The forward is a `tf.function` (as the sweep runs it); `warmup` calls (tracing included)
    are not timed; each timed call waits for its result (`.numpy()`).
    """
    check_positive_int(batch_size, "batch_size")
    check_positive_int(repeats, "repeats")
    shape = (batch_size, *model.inputs[0].shape[1:])
    x = tf.cast(np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32"), model.inputs[0].dtype)
    forward = tf.function(lambda images: model(images, training=False))
    for _ in range(warmup):
        forward(x).numpy()
    times = []
    for _ in range(repeats):
        start = clock()
        forward(x).numpy()
        times.append(clock() - start)
    return statistics.median(times)


def latency_columns(models_by_resolution, native_resolution, batch_sizes=(1, 32), repeats=20, clock=time.perf_counter):
    """{resolution: {"latency_b1_ms": .., "speedup_b1": .., ...}} with speed-ups against native
    (native latency / latency at the resolution, from the same measurements)."""
    ms = {
        r: {b: 1000.0 * median_latency(m, b, repeats=repeats, clock=clock) for b in batch_sizes}
        for r, m in models_by_resolution.items()
    }
    return {
        r: {
            **{f"latency_b{b}_ms": round(ms[r][b], 3) for b in batch_sizes},
            **{f"speedup_b{b}": round(ms[native_resolution][b] / ms[r][b], 3) for b in batch_sizes},
        }
        for r in ms
    }
