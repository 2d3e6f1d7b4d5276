"""The `fixed` selector: one resolution for every image (the rows of the sweep table)."""

import numpy as np

from reswise_tf.selectors.common import Selection, summarize


def fixed_select(cache, resolution, rows):
    """Every image of `rows` at `resolution`; it costs that resolution's MACs."""
    cache.check_resolutions([resolution], "resolution")
    rows = np.asarray(rows, np.int64)
    return Selection(
        rows=rows,
        chosen=np.full(len(rows), resolution, np.int64),
        macs=np.full(len(rows), cache.macs[resolution]),
    )


def run(cache, rows, *, part, topk=5, resolutions=None):
    """One `SelectionResult` per resolution (default: all cached), highest first."""
    resolutions = sorted(resolutions or cache.resolutions, reverse=True)
    return [
        summarize(
            cache,
            fixed_select(cache, r, rows),
            selector="fixed",
            setting=f"{r}px",
            part=part,
            topk=topk,
        )
        for r in resolutions
    ]
