"""The `random` selector (the thesis's Table 6): each image at a resolution drawn uniformly from
a set, over several seeded trials; reported as mean, std, max and min over trials.

The default set is the thesis's: the native resolution and the four next sizes of the sweep
(for ResNet50: 224, 210, 196, 182, 168); with several models, the reference stage and the four
next cheaper ones.
"""

import dataclasses

import numpy as np

from reswise_tf.selection.common import Selection, key_array
from reswise_tf.selection.pool import StagePool
from reswise_tf.utils.checks import check_positive_int


@dataclasses.dataclass(frozen=True)
class Options:
    """Attributes: choices: the resolution set (None: native and the four next sizes);
    trials: number of seeded trials; seed: seed of the trials."""

    choices: tuple | None = None
    trials: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        check_positive_int(self.trials, "trials")

    def resolved_choices(self, pool):
        """The stage set on `pool` (checked to be cached)."""
        pool = StagePool.of(pool)
        choices = list(self.choices) if self.choices else default_choices(pool)
        pool.check_stages(choices, "choices")
        return choices


def default_choices(pool, count=5):
    """The native resolution and the `count - 1` next sizes below it (several models: the
    reference stage and the `count - 1` next cheaper stages)."""
    pool = StagePool.of(pool)
    if pool.single:
        return [r for r in pool.stages if r <= pool.reference][:count]
    cheaper = [k for k in pool.stages if pool.macs[k] < pool.macs[pool.reference]]
    return [pool.reference, *cheaper][:count]


def random_select(pool, rows, choices, rng):
    """One trial: each image of `rows` at a stage drawn uniformly from `choices`."""
    pool = StagePool.of(pool)
    rows = np.asarray(rows, np.int64)
    choices = key_array(pool.order(set(choices)))
    pick = rng.integers(0, len(choices), size=len(rows))
    macs = np.array([pool.macs[k] for k in choices.tolist()], np.float64)
    return Selection(rows=rows, chosen=choices[pick], macs=macs[pick])


def expected_fraction(pool, options):
    """Mean FLOPs per image of the random selector as a fraction of the reference's (its
    expectation, from the set alone): the budget a cascade is given to match it."""
    pool = StagePool.of(pool)
    choices = options.resolved_choices(pool)
    return float(np.mean([pool.macs[k] for k in set(choices)])) / pool.macs[pool.reference]


def setting(pool, choices, trials, seed):
    ordered = pool.order(choices)
    return f"uniform over {{{', '.join(map(pool.describe, ordered))}}}, {trials} trials, seed {seed}"


def run(part, options):
    """`trials` seeded trials summarised into one `SelectionResult` (exactly reproducible)."""
    choices = options.resolved_choices(part.pool)
    rng = np.random.default_rng(options.seed)
    selections = [random_select(part.pool, part.rows, choices, rng) for _ in range(options.trials)]
    return [part.summarize(selections, selector="random",
                           setting=setting(part.pool, choices, options.trials, options.seed))]
