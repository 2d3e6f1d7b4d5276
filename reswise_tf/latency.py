"""Measured latency per resolution, beside FLOPs (FLOPs are not latency: memory traffic, kernel
launch and per-layer overheads do not shrink with the input)."""

import statistics
import time

import numpy as np
import tensorflow as tf


def median_latency(model, batch_size, *, repeats=20, warmup=3, seed=0):
    """Median wall time (seconds) of one compiled forward pass on a batch of `batch_size`.

    The forward is a `tf.function` (as the sweep runs it); `warmup` calls (tracing included)
    are not timed; each timed call waits for its result (`.numpy()`).
    """
    if batch_size < 1 or repeats < 1:
        raise ValueError(f"`batch_size` and `repeats` should be >= 1. Received {batch_size}, {repeats}")
    shape = (batch_size, *model.inputs[0].shape[1:])
    x = tf.constant(np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32"))
    forward = tf.function(lambda images: model(images, training=False))
    for _ in range(warmup):
        forward(x).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(x).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def latency_columns(models_by_resolution, native_resolution, batch_sizes=(1, 32), repeats=20):
    """{resolution: {"latency_b1_ms": .., "speedup_b1": .., ...}} with speed-ups against native."""
    ms = {
        r: {b: 1000.0 * median_latency(m, b, repeats=repeats) for b in batch_sizes}
        for r, m in models_by_resolution.items()
    }
    return {
        r: {
            **{f"latency_b{b}_ms": round(ms[r][b], 3) for b in batch_sizes},
            **{f"speedup_b{b}": round(ms[native_resolution][b] / ms[r][b], 3) for b in batch_sizes},
        }
        for r in ms
    }
