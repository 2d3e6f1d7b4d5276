"""Measured latency: what is timed (the median of the timed calls, warm-up excluded) and the
speed-up arithmetic, with a clock the test controls; the real clock times real calls. No
wall-clock comparison here: benchmarks/ measure speed side by side."""

import itertools

import pytest

from reswise_tf.cost import latency
from reswise_tf.models import rescale
from tests.helpers import tiny_classifier


class StepClock:
    """A clock whose k-th pair of readings (start, end) is `durations[k]` seconds apart."""

    def __init__(self, durations):
        self.durations = itertools.cycle(durations)
        self.now, self.pending = 0.0, None

    def __call__(self):
        if self.pending is None:
            self.pending = next(self.durations)
            return self.now
        self.now += self.pending
        self.pending = None
        return self.now


def test_median_of_the_timed_calls():
    model = tiny_classifier(8)
    assert latency.median_latency(model, 2, repeats=5, clock=StepClock([0.5, 0.1, 0.4, 0.2, 0.3])) == pytest.approx(0.3)
    assert latency.median_latency(model, 2, repeats=4, clock=StepClock([1.0, 4.0, 2.0, 3.0])) == pytest.approx(2.5)


def test_speedups_are_native_latency_over_latency():
    models = {16: tiny_classifier(16), 8: rescale(tiny_classifier(16), 8)}
    # Timed calls in order: 3 at (16, batch 1), 3 at (16, batch 32), then the same at 8.
    clock = StepClock([0.004] * 3 + [0.040] * 3 + [0.001] * 3 + [0.008] * 3)
    columns = latency.latency_columns(models, 16, repeats=3, clock=clock)
    assert columns[16] == {"latency_b1_ms": 4.0, "latency_b32_ms": 40.0, "speedup_b1": 1.0, "speedup_b32": 1.0}
    assert columns[8] == {"latency_b1_ms": 1.0, "latency_b32_ms": 8.0, "speedup_b1": 4.0, "speedup_b32": 5.0}


def test_the_real_clock_times_real_calls():
    """With the default clock the model really runs: a positive, finite median (how fast is a
    benchmark's question, not a unit test's)."""
    value = latency.median_latency(tiny_classifier(16), 4, repeats=3)
    assert 0 < value < 60


@pytest.mark.parametrize("kw", [{"batch_size": 0}, {"batch_size": 2, "repeats": 0}])
def test_bad_arguments_are_named(kw):
    batch_size = kw.pop("batch_size")
    with pytest.raises(ValueError, match="should be a positive integer"):
        latency.median_latency(tiny_classifier(8), batch_size, **kw)
