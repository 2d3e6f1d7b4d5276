"""The `fixed` selector: one resolution for every image (the rows of the sweep table)."""

import dataclasses

import numpy as np

from reswise_tf.selection.common import Selection


@dataclasses.dataclass(frozen=True)
class Options:
    """Attributes: resolutions: the sizes to report (None: every cached one)."""

    resolutions: tuple | None = None

    def __post_init__(self):
        if self.resolutions is not None:
            object.__setattr__(self, "resolutions", tuple(self.resolutions))


def fixed_select(cache, resolution, rows):
    """Every image of `rows` at `resolution`; it costs that resolution's MACs."""
    cache.check_resolutions([resolution], "resolution")
    rows = np.asarray(rows, np.int64)
    return Selection(
        rows=rows,
        chosen=np.full(len(rows), resolution, np.int64),
        macs=np.full(len(rows), cache.macs[resolution]),
    )


def run(part, options):
    """One `SelectionResult` per resolution, highest first."""
    resolutions = sorted(options.resolutions or part.cache.resolutions, reverse=True)
    part.cache.check_resolutions(resolutions, "resolutions")
    return [part.summarize(fixed_select(part.cache, r, part.rows), selector="fixed", setting=f"{r}px")
            for r in resolutions]
