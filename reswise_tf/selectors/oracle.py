"""The `oracle` selector: per image, the smallest resolution whose prediction is correct.

It reads the labels, so it is an upper bound on what any per-image selector can reach at its
cost, not something that can be deployed. Images that no resolution gets right (top-1) take
the smallest resolution with the label in its top-k, else the native one; so it is the best
top-1 and top-k accuracy at the lowest cost among selectors that run one pass per image.
"""

import numpy as np

from reswise_tf.selectors.common import Selection, summarize

SETTING = "smallest correct resolution (reads the labels)"


def oracle_select(cache, rows, *, topk=5):
    """The oracle's choice for each image of `rows`, paying one pass at that resolution."""
    rows = np.asarray(rows, np.int64)
    chosen = np.full(len(rows), cache.native, np.int64)
    decided = np.zeros(len(rows), bool)
    for k in (1, topk):
        for r in sorted(cache.resolutions):  # smallest first
            hit = ~decided & cache.correct(r, k)[rows]
            chosen[hit] = r
            decided |= hit
    macs = np.array([cache.macs[int(r)] for r in chosen], np.float64)
    return Selection(rows=rows, chosen=chosen, macs=macs)


def run(cache, rows, *, part, topk=5):
    selection = oracle_select(cache, rows, topk=topk)
    return [
        summarize(
            cache,
            selection,
            selector="oracle",
            setting=SETTING,
            part=part,
            topk=topk,
            deployable=False,
        )
    ]
