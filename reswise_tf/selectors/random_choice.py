"""The `random` selector (the thesis's Table 6): each image at a resolution drawn uniformly from
a set, over several seeded trials; reported as mean, std, max and min over trials.

The default set is the thesis's: the native resolution and the four next sizes of the sweep
(for ResNet50: 224, 210, 196, 182, 168).
"""

import numpy as np

from reswise_tf.selectors.common import Selection, summarize


def default_choices(cache, count=5):
    """The native resolution and the `count - 1` next sizes below it in the sweep."""
    below = [r for r in cache.resolutions if r <= cache.native]
    return below[:count]


def check_trials(trials):
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"`trials` should be a positive integer. Received trials={trials!r}")


def random_select(cache, rows, choices, rng):
    """One trial: each image of `rows` at a resolution drawn uniformly from `choices`."""
    rows = np.asarray(rows, np.int64)
    choices = np.asarray(sorted(set(choices), reverse=True), np.int64)
    pick = rng.integers(0, len(choices), size=len(rows))
    macs = np.array([cache.macs[int(r)] for r in choices], np.float64)
    return Selection(rows=rows, chosen=choices[pick], macs=macs[pick])


def expected_macs(cache, choices):
    """Mean MACs per image of the random selector (its expectation, from the set alone)."""
    return float(np.mean([cache.macs[r] for r in set(choices)]))


def setting(choices, trials, seed):
    return (
        f"uniform over {{{', '.join(map(str, sorted(choices, reverse=True)))}}}, "
        f"{trials} trials, seed {seed}"
    )


def run(cache, rows, *, part, topk=5, choices=None, trials=10, seed=0):
    """`trials` seeded trials summarised into one `SelectionResult` (exactly reproducible)."""
    choices = list(choices) if choices is not None else default_choices(cache)
    cache.check_resolutions(choices, "choices")
    check_trials(trials)
    rng = np.random.default_rng(seed)
    selections = [random_select(cache, rows, choices, rng) for _ in range(trials)]
    return [
        summarize(
            cache,
            selections,
            selector="random",
            setting=setting(choices, trials, seed),
            part=part,
            topk=topk,
        )
    ]
