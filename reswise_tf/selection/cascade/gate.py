"""A learned deferral rule: a small logistic regression per cascade stage that predicts, from
what the cache holds about a prediction, whether it is right, fitted on the calibration images.

The top probability says how sure a model is, not how often it is right when that sure; a
low-resolution pass is confidently wrong on some classes and reliable on others, and under
shift that is where a learned deferral rule beats confidence (Jitkrittum et al., NeurIPS 2023).
Features of a prediction (all read from the cached top-K classes and their probabilities):
the sorted top-5 probabilities, the entropy and the top-2 margin, the predicted class (one-hot),
and whether the stage agrees with the previous stage's own top-1 class (0 at the first stage).
The gate's output, P(right), is the stage's confidence: thresholds on it are searched as for any
confidence. Fitted by Newton's method on the L2-regularised log-likelihood (numpy, standardised
features), in a few milliseconds for thousands of images.
"""

import dataclasses

import numpy as np

TOP = 5  # sorted probabilities used as features
L2 = 1e-2  # ridge on the standardised weights
_TINY = 1e-12


@dataclasses.dataclass(frozen=True)
class Gate:
    """One stage's fitted gate: P(right) = sigmoid(features @ coef + intercept).

    Attributes:
      coef: weights of `features` (in raw feature units).
      intercept: the bias.
      num_classes: length of the one-hot predicted class (classes beyond it add nothing).
    """

    coef: tuple
    intercept: float
    num_classes: int

    def confidence(self, top_ids, top_probs, previous_top1=None):
        """P(right) (n,) of each prediction."""
        x = features(top_ids, top_probs, previous_top1, self.num_classes)
        return _sigmoid(x @ np.asarray(self.coef) + self.intercept)

    def to_dict(self):
        return {"coef": list(self.coef), "intercept": self.intercept, "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, d):
        return cls(tuple(float(c) for c in d["coef"]), float(d["intercept"]), int(d["num_classes"]))


def features(top_ids, top_probs, previous_top1, num_classes):
    """float (n, TOP + 3 + num_classes): sorted top probabilities, entropy, margin, agreement
    with the previous stage, one-hot predicted class."""
    p = np.asarray(top_probs, np.float64)
    n = len(p)
    top = np.zeros((n, TOP))
    top[:, : min(TOP, p.shape[1])] = p[:, :TOP]
    q = p / np.maximum(p.sum(axis=1, keepdims=True), _TINY)
    entropy = -(q * np.log(np.maximum(q, _TINY))).sum(axis=1)
    margin = p[:, 0] - (p[:, 1] if p.shape[1] > 1 else 0.0)
    predicted = np.asarray(top_ids)[:, 0].astype(np.int64)
    agree = np.zeros(n) if previous_top1 is None else (np.asarray(previous_top1) == predicted).astype(np.float64)
    onehot = np.zeros((n, num_classes))
    inside = (predicted >= 0) & (predicted < num_classes)
    onehot[np.flatnonzero(inside), predicted[inside]] = 1.0
    return np.concatenate([top, entropy[:, None], margin[:, None], agree[:, None], onehot], axis=1)


def fit_gate(top_ids, top_probs, previous_top1, target, num_classes, *, l2=L2, steps=30):
    """The `Gate` that predicts `target` (n,) in [0, 1] (1: the prediction is right)."""
    x = features(top_ids, top_probs, previous_top1, num_classes)
    y = np.asarray(target, np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)
    w = np.zeros(z.shape[1])
    ridge = np.full(z.shape[1], l2 * max(len(z), 1))
    ridge[-1] = 0.0  # no penalty on the bias
    for _ in range(steps):
        p = _sigmoid(z @ w)
        grad = z.T @ (p - y) + ridge * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(ridge + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    coef = w[:-1] / scale
    return Gate(tuple(float(c) for c in coef), float(w[-1] - coef @ mean), int(num_classes))


def cross_fitted(top_ids, top_probs, previous_top1, target, num_classes, folds):
    """Out-of-fold P(right) (n,): the gate fitted on every fold but one scores that one
    (`folds`: the fold of each image), so the thresholds fitted on these scores do not flatter
    the gate on the images it was fitted on."""
    out = np.zeros(len(target))
    for f in np.unique(folds):
        held = folds == f
        gate = fit_gate(top_ids[~held], top_probs[~held], None if previous_top1 is None else previous_top1[~held],
                        target[~held], num_classes)
        out[held] = gate.confidence(top_ids[held], top_probs[held],
                                    None if previous_top1 is None else previous_top1[held])
    return out


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-np.clip(t, -60, 60)))
