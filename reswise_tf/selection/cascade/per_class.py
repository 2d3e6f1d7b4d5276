"""Per-class cascade thresholds: each stage gets one threshold per class it may predict.

A low-resolution pass is not equally reliable on every class: on Fashion-MNIST at a third of
the pixels it still tells trousers from bags but confuses shirts with T-shirts, with the same
confidence. One shared threshold has to reject the reliable classes' images to stop the
unreliable ones; a threshold per predicted class does not.

Fitting (on the calibration images only). For a stage set s_1 < ... < s_m (= native) and a
price `lam` per native-FLOP, every image's value is [correct] - lam * (MACs spent / native
MACs). Going backwards from the last stage, the value of an image that reaches stage j is
  V_m = ok_m - lam * c_m,   V_j = -lam * c_j + (ok_j if accepted at j else V_{j+1}),
and stage j's thresholds are chosen class by class: among the images stage j predicts as class
k, sorted by confidence, accept the prefix that maximises the sum of ok_j - V_{j+1} (exactly
optimal for two stages, stage by stage for more). Each price gives one cascade; sweeping the
price traces accuracy against FLOPs, and `search.choose_cascade` picks the one that meets the
target, as for shared thresholds. The thresholds are midpoints between consecutive distinct
confidences, so an image's decision never rests on a tie; a class a stage never predicts on
the calibration images gets +inf (never accepted there).
"""

import numpy as np

from reswise_tf.selection.metrics import TOP1
from reswise_tf.selection.pool import StagePool
from reswise_tf.utils.checks import check_positive_int

# Prices per native FLOP swept: 0 (accept only what is at least as accurate) up to a price
# at which the first stage accepts every image.
DEFAULT_PRICES = np.concatenate([[0.0], np.geomspace(1e-3, 1e2, 160)])


def price_sweep(
    pool,
    rows,
    stage_set,
    probe,
    *,
    metric=TOP1,
    prices=DEFAULT_PRICES,
    num_classes=None,
    folds=2,
    seed=0,
    confs=None,
):
    """Per-class thresholds of `stage_set` at every price in `prices`, with cross-fitted scores.

    Fitting a threshold per class picks the best prefix of a noisy sequence, so its score on
    the images it was fitted on is optimistic (by a point or two at 2,500 images and 10
    classes). So the accuracy and FLOPs reported for each price are out-of-fold: `rows` are
    split into `folds` parts (stratified by label, seeded); the thresholds fitted on all parts
    but one are scored on that one, and the scores are summed over the parts. The thresholds
    returned are fitted on all of `rows` at the same price.

    Args:
      pool: a `StagePool` (or a `SweepCache`).
      rows: int (n,) calibration rows (only those are read).
      stage_set: stage keys, cheapest first.
      probe: a `CascadeConfig` of `stage_set` whose decision rule, confidence kind and
        temperatures are used.
      metric: the per-image score the prices trade against FLOPs (`TopK`: correct or not).
      prices: the prices per native FLOP.
      num_classes: length of each per-class threshold list; default: the largest class id seen
        in the cache (labels and predictions) + 1.
      folds: parts of the cross-fitting (1: score on the fitted images themselves).
      seed: seed of the split into parts.
      confs: the confidences (n,) of each stage but the last on `rows`, when the caller has
        them (a learned gate's out-of-fold ones); default: from `probe`.

    Returns:
      [(thresholds, correct, macs)], one per price whose thresholds differ from the previous
      price's: `thresholds` holds one tuple of `num_classes` floats per stage but the last;
      `correct` and `macs` are the (out-of-fold) correct images and total MACs over `rows`,
      decided as `CascadeConfig.accept` decides (confidence >= threshold of the predicted class).
    """
    pool = StagePool.of(pool)
    rows = np.asarray(rows, np.int64)
    if len(stage_set) < 2:
        return []
    check_positive_int(folds, "folds")
    keys = [probe.decision_key(j) for j in range(len(stage_set))]
    if num_classes is None:
        num_classes = 1 + max(int(pool.labels.max()), *(int(pool.table(k).top_ids[:, 0].max()) for k in keys))
    data = _Data(pool, rows, stage_set, keys, probe, metric, num_classes, confs)
    full = data.fit(np.arange(len(rows)), prices)
    if folds == 1:
        scores = [data.score(t, np.arange(len(rows))) for t in full]
    else:
        part = fold_of(pool.labels[rows], folds, seed)
        scores = np.zeros((len(prices), 2))
        for f in range(folds):
            fitted = data.fit(np.flatnonzero(part != f), prices)
            held_out = np.flatnonzero(part == f)
            scores += [data.score(t, held_out) for t in fitted]
    out = []
    for thresholds, (correct, macs) in zip(full, scores):
        if not out or thresholds != out[-1][0]:
            out.append((thresholds, float(correct), float(macs)))
    return out


def lookup(thresholds, predicted):
    """Threshold (n,) of each image from per-class `thresholds` by its `predicted` class id;
    +inf (never accepted) for a class beyond the list."""
    table = np.asarray(thresholds, np.float64)
    predicted = np.asarray(predicted, np.int64)
    inside = (predicted >= 0) & (predicted < len(table))
    return np.where(inside, table[np.clip(predicted, 0, len(table) - 1)], np.inf)


def fold_of(labels, folds, seed):
    """Part (0..folds-1) of each position: the images, class after class in a seeded order,
    are dealt out in turn, so every part gets each class's share and the sizes differ by at
    most one."""
    rng = np.random.default_rng(seed)
    dealt = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    ).astype(np.int64)
    part = np.zeros(len(labels), np.int64)
    part[dealt] = np.arange(len(dealt)) % folds
    return part


class _Data:
    """Confidences, predicted classes and per-image scores of each stage (what it decides on)
    on the calibration rows."""

    def __init__(self, pool, rows, stage_set, keys, probe, metric, num_classes, confs=None):
        self.num_classes = num_classes
        self.cost = [pool.macs[r] / pool.macs[pool.reference] for r in stage_set]
        self.macs = [pool.macs[r] for r in stage_set]
        self.ok = [metric.per_image(pool, k, rows) for k in keys]
        self.confs, self.predicted = [], []
        for j, key in enumerate(keys[:-1]):
            table = pool.table(key)
            previous = pool.tables[stage_set[j - 1]].top_ids[rows, 0] if j else None
            self.confs.append(confs[j] if confs is not None else
                              probe.stage_confidence(table.top_probs[rows], j, table.top_ids[rows], previous))
            self.predicted.append(table.top_ids[rows, 0].astype(np.int64))

    def fit(self, positions, prices):
        """One thresholds tuple per price, fitted on `positions` (indices into the rows)."""
        m = len(self.ok)
        ok = [x[positions] for x in self.ok]
        stages = []
        for conf, predicted in zip(self.confs, self.predicted):
            conf, predicted = conf[positions], predicted[positions]
            order = np.lexsort((-conf, predicted))  # by class, most confident first
            stages.append(_Stage(conf[order], predicted[order], order, self.num_classes))
        out = []
        for price in prices:
            value = ok[-1] - price * self.cost[-1]
            thresholds = [None] * (m - 1)
            for j in range(m - 2, -1, -1):
                accepted, thresholds[j] = stages[j].best_prefixes(ok[j] - value)
                value = np.where(accepted, ok[j], value) - price * self.cost[j]
            out.append(tuple(thresholds))
        return out

    def score(self, thresholds, positions):
        """(correct images, total MACs) of a per-class cascade on `positions`."""
        pending = np.ones(len(positions), bool)
        correct, total = 0.0, 0.0
        for j, t in enumerate(thresholds):
            total += self.macs[j] * pending.sum()
            limit = lookup(t, self.predicted[j][positions])
            accept = pending & (self.confs[j][positions] >= limit)
            correct += self.ok[j][positions][accept].sum()
            pending &= ~accept
        total += self.macs[-1] * pending.sum()
        correct += self.ok[-1][positions][pending].sum()
        return correct, total


class _Stage:
    """One non-final stage's images sorted by (predicted class, confidence descending), with
    the positions where a prefix of a class may end (not inside a tie of confidences)."""

    def __init__(self, conf, predicted, order, num_classes):
        self.conf, self.predicted, self.order = conf, predicted, order
        self.num_classes = num_classes
        n = len(conf)
        self.starts = np.flatnonzero(np.r_[True, predicted[1:] != predicted[:-1]]) if n else np.zeros(0, int)
        self.classes = predicted[self.starts]
        ends = np.r_[self.starts[1:], n]
        self.segment = np.repeat(np.arange(len(self.starts)), ends - self.starts)
        # A cut after sorted position p (accept positions <= p of its class) is allowed when
        # p is the last of its class or the next image is strictly less confident.
        last = np.r_[predicted[1:] != predicted[:-1], True] if n else np.zeros(0, bool)
        self.cut_ok = last | np.r_[conf[:-1] > conf[1:], True] if n else np.zeros(0, bool)
        self.ends = ends

    def best_prefixes(self, gain):
        """(accepted (n,) in row order, thresholds tuple): per class, the prefix with the
        largest total `gain` (gain of accepting each row here instead of going on); an empty
        prefix when no prefix gains more than zero."""
        n = len(self.conf)
        thresholds = np.full(self.num_classes, np.inf)
        accepted = np.zeros(n, bool)
        if not n:
            return accepted, tuple(thresholds)
        g = np.cumsum(gain[self.order])
        base = np.r_[0.0, g][self.starts][self.segment]  # cumulative gain before the class
        within = np.where(self.cut_ok, g - base, -np.inf)
        # Best cut per class: sort by (class, -within), first of each class.
        best = np.lexsort((-within, self.segment))[self.starts]
        take = (within[best] > 0) & (self.classes < self.num_classes)  # else accept none
        position = np.arange(n)
        accepted[self.order] = take[self.segment] & (position <= best[self.segment])
        p = best[take]
        nxt = np.minimum(p + 1, n - 1)
        below = np.where(p + 1 < self.ends[take], self.conf[nxt], -np.inf)
        thresholds[self.classes[take]] = np.where(
            np.isfinite(below), (self.conf[p] + below) / 2, -np.inf
        )
        return accepted, tuple(float(t) for t in thresholds)
