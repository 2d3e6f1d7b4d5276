"""The `random` selector (the thesis's Table 6): each image at a resolution drawn uniformly from
a set, over several seeded trials; reported as mean, std, max and min over trials.

The default set is the thesis's: the native resolution and the four next sizes of the sweep
(for ResNet50: 224, 210, 196, 182, 168).
"""

import dataclasses

import numpy as np

from reswise_tf.selection.common import Selection
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

    def resolved_choices(self, cache):
        """The resolution set on `cache` (checked to be cached)."""
        choices = list(self.choices) if self.choices else default_choices(cache)
        cache.check_resolutions(choices, "choices")
        return choices


def default_choices(cache, count=5):
    """The native resolution and the `count - 1` next sizes below it in the sweep."""
    below = [r for r in cache.resolutions if r <= cache.native]
    return below[:count]


def random_select(cache, rows, choices, rng):
    """One trial: each image of `rows` at a resolution drawn uniformly from `choices`."""
    rows = np.asarray(rows, np.int64)
    choices = np.asarray(sorted(set(choices), reverse=True), np.int64)
    pick = rng.integers(0, len(choices), size=len(rows))
    macs = np.array([cache.macs[int(r)] for r in choices], np.float64)
    return Selection(rows=rows, chosen=choices[pick], macs=macs[pick])


def expected_fraction(cache, options):
    """Mean FLOPs per image of the random selector as a fraction of native (its expectation,
    from the set alone): the budget a cascade is given to match it."""
    choices = options.resolved_choices(cache)
    return float(np.mean([cache.macs[r] for r in set(choices)])) / cache.macs[cache.native]


def setting(choices, trials, seed):
    return (
        f"uniform over {{{', '.join(map(str, sorted(choices, reverse=True)))}}}, "
        f"{trials} trials, seed {seed}"
    )


def run(part, options):
    """`trials` seeded trials summarised into one `SelectionResult` (exactly reproducible)."""
    choices = options.resolved_choices(part.cache)
    rng = np.random.default_rng(options.seed)
    selections = [random_select(part.cache, part.rows, choices, rng) for _ in range(options.trials)]
    return [part.summarize(selections, selector="random", setting=setting(choices, options.trials, options.seed))]
