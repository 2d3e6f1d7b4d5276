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

from reswise_tf.evaluation.predictions import mean_iou


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


class MeanIoU:
    """mIoU (%) of a segmentation: each class's intersection over union, summed over the images,
    averaged over the classes whose union is not empty (a ratio of sums, not a mean of
    per-image scores)."""

    name = "miou"

    def __repr__(self):
        return "MeanIoU()"

    def __eq__(self, other):
        return isinstance(other, MeanIoU)

    def __hash__(self):
        return hash("MeanIoU")

    def stats(self, pool, key, rows):
        """(n, 2C): each image's per-class intersections, then unions."""
        t = pool.table(key)
        return np.concatenate([t.intersection[rows], t.union[rows]], axis=1).astype(np.float64)

    def value(self, sums):
        sums = np.asarray(sums, np.float64)
        c = sums.shape[-1] // 2
        return mean_iou(sums[..., :c], sums[..., c:])

    def per_image(self, pool, key, rows):
        """Each image's own mIoU, as a fraction (over the classes in its union)."""
        return self.value(self.stats(pool, key, rows)) / 100.0


class PixelAccuracy:
    """Pixel accuracy (%) of a segmentation: right pixels over scored pixels, over the images."""

    name = "pixel_acc"

    def __repr__(self):
        return "PixelAccuracy()"

    def __eq__(self, other):
        return isinstance(other, PixelAccuracy)

    def __hash__(self):
        return hash("PixelAccuracy")

    def stats(self, pool, key, rows):
        t = pool.table(key)
        return np.stack([t.pixel_correct[rows], t.pixels[rows]], axis=-1).astype(np.float64)

    def value(self, sums):
        sums = np.asarray(sums, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * sums[..., 0] / sums[..., 1]

    def per_image(self, pool, key, rows):
        return self.value(self.stats(pool, key, rows)) / 100.0


def column_metrics(pool, topk):
    """The metrics of a report's two columns: top-1 and top-k accuracy, or a segmentation's
    mIoU and pixel accuracy."""
    return (MeanIoU(), PixelAccuracy()) if pool.task == "segmentation" else (TOP1, TopK(topk))


METRIC_NAMES = ("top1", "top5", "miou", "pixel_acc")


def metric_named(name, pool, topk):
    """The metric a target is measured in: `top1`, `top5` (the table's top-k), `miou`,
    `pixel_acc`, or `auto` (top-1, or mIoU for a segmentation)."""
    segmentation = pool.task == "segmentation"
    if name == "auto":
        return MeanIoU() if segmentation else TOP1
    allowed = ("miou", "pixel_acc") if segmentation else ("top1", "top5")
    if name not in allowed:
        raise ValueError(f"Unknown metric {name!r} for a {pool.task} cache. Available: auto, {', '.join(allowed)}")
    return {"top1": TOP1, "top5": TopK(topk), "miou": MeanIoU(), "pixel_acc": PixelAccuracy()}[name]
