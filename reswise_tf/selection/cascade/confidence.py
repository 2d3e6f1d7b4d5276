"""Confidence of a prediction from its cached top-K softmax probabilities, and temperature fitting.

One numpy implementation serves the cache-based cascade selector and the deployable
`deploy.CascadeClassifier`, so both take the same decision on the same probabilities.

Kinds:
  max_prob: the largest softmax probability.
  margin: the largest minus the second largest probability.
  calibrated_max_prob, calibrated_margin: the same after temperature scaling, softmax(z / T).

Temperature scaling needs logits, and the cache keeps only the top-K probabilities. We take
z = log(p) over the kept K classes, so softmax(z / T) is the temperature-scaled softmax
renormalised over those K classes. It is exact when K is the number of classes (as for the
10-class models studied here); with fewer kept classes the probability mass outside the top K
is ignored, which slightly overstates the calibrated confidence. The plain kinds are exact for
any K.
"""

import numpy as np

CONFIDENCES = ("max_prob", "margin", "calibrated_max_prob", "calibrated_margin")
LEARNED = "learned"  # a gate fitted on the calibration images (`gate.Gate`), not a function of one prediction

_TINY = 1e-30


def check_confidence(kind, learned=False):
    """Raises unless `kind` is one of `CONFIDENCES` (or, with `learned`, "learned")."""
    kinds = (*CONFIDENCES, LEARNED) if learned else CONFIDENCES
    if kind not in kinds:
        raise ValueError(f"Unknown confidence {kind!r}. Available: {', '.join(kinds)}")


def is_calibrated(kind):
    return kind.startswith("calibrated_")


def tempered_probs(top_probs, temperature):
    """softmax(log(p) / T) over the kept classes, float64 (N, K), same column order."""
    z = np.log(np.maximum(np.asarray(top_probs, np.float64), _TINY)) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confidence(top_probs, kind, temperature=1.0):
    """Confidence (N,) float64 of each prediction; `top_probs` sorted by decreasing probability.

    The temperature is used only by the calibrated kinds.
    """
    check_confidence(kind)
    p = np.asarray(top_probs, np.float64)
    if kind.endswith("margin") and p.shape[1] < 2:
        raise ValueError(f"Confidence {kind!r} needs at least 2 classes in the cache")
    if is_calibrated(kind):
        p = tempered_probs(p, temperature)
    if kind.endswith("max_prob"):
        return p[:, 0]
    return p[:, 0] - p[:, 1]


def fit_temperature(top_ids, top_probs, labels, low=0.05, high=20.0):
    """The temperature in [`low`, `high`] minimising the negative log-likelihood of the labels.

    The NLL is convex in 1/T, so a golden-section search on log T finds the minimum. Images
    whose label is not among the kept classes (only when K < number of classes) are left out.
    Returns 1.0 when no image is left.
    """
    hit = np.asarray(top_ids) == np.asarray(labels)[:, None]
    keep = hit.any(axis=1)
    if not keep.any():
        return 1.0
    z = np.log(np.maximum(np.asarray(top_probs, np.float64)[keep], _TINY))
    z -= z.max(axis=1, keepdims=True)
    target = z[np.arange(len(z)), np.argmax(hit[keep], axis=1)]

    def nll(log_t):
        s = z / np.exp(log_t)
        return float(np.mean(np.log(np.exp(s).sum(axis=1)) - target / np.exp(log_t)))

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(60):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return float(np.exp((a + b) / 2.0))
