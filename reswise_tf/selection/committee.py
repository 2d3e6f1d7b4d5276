"""The `committee` selector: every image through several models at their native resolutions,
their probabilities averaged (an ensemble; "Wisdom of Committees", Wang et al., ICLR 2022).

With several models' sweeps it reports every committee of two or more of the models' native
stages: the accuracy a cascade that ends in a committee aims at, and the cost it avoids. One
sweep has no committee (one model). The average is over each model's cached top classes (see
`pool`).
"""

import dataclasses
import itertools

import numpy as np

from reswise_tf.selection.common import Selection, key_array
from reswise_tf.selection.pool import Committee

MAX_MODELS = 6  # every subset of the natives: 57 committees of 6 models


@dataclasses.dataclass(frozen=True)
class Options:
    """No options: the committees are every subset (of two or more) of the natives."""


def natives(pool):
    """The native stage of each model of a pool of several sweeps, cheapest first."""
    by_model = {}
    for key in pool.stages:
        model, _, resolution = str(key).rpartition("@")
        native = pool.tables[key].meta.get("native_resolution")
        if native is None or str(native) == resolution:
            if model not in by_model or pool.macs[key] > pool.macs[by_model[model]]:
                by_model[model] = key
    return sorted(by_model.values(), key=lambda k: (pool.macs[k], str(k)))


def committee_select(pool, members, rows):
    """Every image of `rows` decided by the committee of `members`, paying each of them."""
    rows = np.asarray(rows, np.int64)
    key = Committee(tuple(members))
    return Selection(rows=rows, chosen=key_array([key] * len(rows)), macs=np.full(len(rows), pool.cost(key)))


def run(part, options):
    """One row per committee of two or more natives (none for one sweep)."""
    pool = part.pool
    if pool.single or pool.task == "segmentation":  # a segmentation cache keeps no probabilities to average
        return []
    members = natives(pool)[:MAX_MODELS]
    return [part.summarize(committee_select(pool, subset, part.rows), selector="committee",
                           setting=f"committee of {'+'.join(map(pool.describe, subset))}")
            for size in range(2, len(members) + 1) for subset in itertools.combinations(members, size)]
