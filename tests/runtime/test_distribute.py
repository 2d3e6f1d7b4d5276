"""Strategies by name: the default one, an unknown name refused with the choices, and what
one process decides alone (the chief; no collectives). Several replicas and workers:
tests/evaluation/test_distributed.py."""

import pytest
import tensorflow as tf

from reswise_tf.runtime import distribute


def test_the_default_strategy_is_one_process_that_is_the_chief():
    strategy = distribute.make_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert distribute.is_chief(strategy) and distribute.num_workers(strategy) == 1
    assert distribute.decide_on_chief(strategy, lambda: [3, 1], 2) == [3, 1]


def test_an_unknown_strategy_is_named_with_the_choices():
    with pytest.raises(ValueError, match="Unknown strategy 'horovod'. Available: default, mirrored, multi_worker, tpu"):
        distribute.make_strategy("horovod")
