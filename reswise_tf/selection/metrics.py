"""How good a stage's predictions are on a set of images: a metric object, so that selection
works for any task whose quality is a function of sums over images.

Every metric turns each image's prediction into a vector of statistics that add up over
images (`stats`), and the sum of those vectors over a set of images into a number in percent
(`value`): top-1 accuracy is the sum of correct images over the sum of images (a mean of
per-image scores); mIoU is a mean over classes of the summed intersections over the summed
unions (a ratio of sums, not a mean of per-image scores). The cascade search scores thousands
of threshold combinations from prefix sums of these vectors. `per_image` is each image's own
score (for an oracle, and for the per-class thresholds that trade it against FLOPs).
"""

import numpy as np


class TopK:
    """Top-k accuracy (%): the share of images whose label is among the k most probable classes."""

    def __init__(self, k=1):
        self.k = int(k)
        self.name = f"top{self.k}"

    def __repr__(self):
        return f"TopK({self.k})"

    def __eq__(self, other):
        return isinstance(other, TopK) and other.k == self.k

    def __hash__(self):
        return hash(("TopK", self.k))

    def per_image(self, pool, key, rows):
        """float (n,): 1 where the image's label is in the top k of `key`, else 0."""
        return pool.correct(key, self.k)[rows].astype(np.float64)

    def stats(self, pool, key, rows):
        """float (n, 2): [correct, 1] per image."""
        ok = self.per_image(pool, key, rows)
        return np.stack([ok, np.ones_like(ok)], axis=-1)

    def value(self, sums):
        """Percent from summed stats (..., 2): 100 x correct / images."""
        sums = np.asarray(sums, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * sums[..., 0] / sums[..., 1]


TOP1 = TopK(1)  # the default metric of a cascade search
