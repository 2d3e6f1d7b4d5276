"""The `fixed` selector: one stage for every image (the rows of the sweep table; with several
models, every model at every resolution)."""

import dataclasses

import numpy as np

from reswise_tf.selection.common import Selection, key_array
from reswise_tf.selection.pool import StagePool


@dataclasses.dataclass(frozen=True)
class Options:
    """Attributes: resolutions: the stages to report (None: every cached one)."""

    resolutions: tuple | None = None

    def __post_init__(self):
        if self.resolutions is not None:
            object.__setattr__(self, "resolutions", tuple(self.resolutions))


def fixed_select(pool, key, rows):
    """Every image of `rows` at stage `key`; it costs that stage's MACs."""
    pool = StagePool.of(pool)
    pool.check_stages([key], "resolution")
    rows = np.asarray(rows, np.int64)
    return Selection(rows=rows, chosen=key_array([key] * len(rows)), macs=np.full(len(rows), pool.cost(key)))


def setting(pool, key):
    """`28px` for a resolution of one sweep, else the stage's name."""
    return f"{key}px" if pool.single else pool.describe(key)


def run(part, options):
    """One `SelectionResult` per stage, most expensive first."""
    pool = part.pool
    keys = list(options.resolutions or pool.stages)
    pool.check_stages(keys, "resolutions")
    return [part.summarize(fixed_select(pool, k, part.rows), selector="fixed", setting=setting(pool, k)) for k in pool.order(keys)]
