"""Non-parametric bootstrap confidence intervals, vectorised over replicates.

A bootstrap replicate is a vector of counts: how many times each example (or each patient, for a
cluster bootstrap) was drawn. Every metric here is written as a function of such count *weights*, so
thousands of replicates are computed as a few matrix operations instead of a Python loop of
``sklearn.metrics`` calls. The weighted AUC (written by hand; scikit-learn's ``roc_auc_score`` takes
sample weights but one replicate at a time) sorts the scores once; for each replicate it sums, over
positives, the weight of negatives scored strictly lower plus half the weight of tied negatives: the
Mann-Whitney statistic with ties counted one half, which equals ``roc_auc_score``.

Intervals are percentile intervals (Efron & Tibshirani 1993, ch. 13). A replicate in which a metric is
undefined (only one class drawn, no predicted positives) is NaN: it is counted and reported (``n_undefined``
and ``undefined_share``), and the interval is taken over the defined replicates. When many are undefined the
interval means little: the resamples left are the ones that happened to hold every class, so it comes out
too narrow (:func:`medclass.evaluation.assess.assess` warns).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["resample_counts", "weighted_auc", "weighted_average_precision", "weighted_confusion", "bootstrap",
           "percentile_interval"]

WeightedMetric = Callable[[np.ndarray], np.ndarray]  # (B, n) weights -> (B,) values


def resample_counts(n: int, n_boot: int, rng: np.random.Generator, groups: np.ndarray | None = None,
                    chunk: int = 256) -> Iterator[np.ndarray]:
    """Yield ``(b, n)`` float32 count matrices, ``n_boot`` rows in all, in chunks of at most ``chunk`` rows.

    With ``groups`` (one id per example, e.g. a patient id) whole groups are resampled: each example
    gets the count of its group, so correlated images of one patient move together.
    """
    if groups is None:
        codes, n_units = np.arange(n), n
    else:
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        n_units = int(codes.max()) + 1
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        draws = rng.integers(0, n_units, size=(b, n_units))
        flat = draws + (np.arange(b) * n_units)[:, None]
        unit_counts = np.bincount(flat.ravel(), minlength=b * n_units).reshape(b, n_units).astype(np.float32)
        yield unit_counts[:, codes]
        done += b


def weighted_auc(y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``y_score`` for binary ``y_true`` under each row of ``weights`` (``(B, n)`` -> ``(B,)``)."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=float)
    w = np.atleast_2d(weights)
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[:, order]
    # tie groups: [start, end) of each run of equal scores
    boundaries = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(s)]])
    group = np.repeat(np.arange(len(starts)), ends - starts)
    neg_w = np.where(y, 0.0, w)
    cum_neg = np.concatenate([np.zeros((w.shape[0], 1), w.dtype), np.cumsum(neg_w, axis=1, dtype=np.float64)], 1)
    pos = np.flatnonzero(y)
    below = cum_neg[:, starts[group[pos]]]  # negatives strictly lower than each positive
    upto = cum_neg[:, ends[group[pos]]]  # negatives lower or tied
    num = (w[:, pos] * 0.5 * (below + upto)).sum(1)
    den = w[:, pos].sum(1) * neg_w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def weighted_average_precision(y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision (scikit-learn's step-wise definition) under each row of ``weights``.

    AP = sum over distinct thresholds t (from high to low) of (recall(t) - recall(t_prev)) * precision(t).
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=float)
    w = np.atleast_2d(weights).astype(np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[:, order]
    last = np.concatenate([np.flatnonzero(np.diff(s)), [len(s) - 1]])  # last index of each tie group
    tp = np.cumsum(np.where(y, w, 0.0), axis=1)[:, last]
    fp = np.cumsum(np.where(y, 0.0, w), axis=1)[:, last]
    total = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 0.0)
        recall_step = np.diff(np.concatenate([np.zeros_like(total), tp], 1), axis=1) / total
        return np.where(total[:, 0] > 0, (recall_step * precision).sum(1), np.nan)


def weighted_confusion(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted tp, fp, tn, fn of binary predictions, one value per row of ``weights``."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    w = np.atleast_2d(weights).astype(np.float64)
    return {"tp": w @ (t & p), "fp": w @ (~t & p), "tn": w @ (~t & ~p), "fn": w @ (t & ~p)}


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2 * 100
    lo, hi = np.percentile(v, [a, 100 - a])
    return float(lo), float(hi)


def bootstrap(metrics: dict[str, WeightedMetric], n: int, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
              groups: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Point estimate and percentile interval of each weighted metric.

    Args:
        metrics: name -> ``fn(weights (B, n)) -> (B,)``; the point estimate is ``fn(ones((1, n)))``.
        n: number of examples.
        n_boot: replicates (2,000 by default; 10,000 for publication-grade intervals).
        level: coverage of the interval.
        seed: seed of the resampling, so intervals are reproducible.
        groups: optional cluster id per example (patient): resample clusters instead of examples.

    Returns:
        name -> {"estimate", "low", "high", "n_boot", "n_undefined", "undefined_share", "level"}.
    """
    rng = np.random.default_rng(seed)
    reps = {k: [] for k in metrics}
    for w in resample_counts(n, n_boot, rng, groups):
        for k, fn in metrics.items():
            reps[k].append(fn(w))
    ones = np.ones((1, n))
    out = {}
    for k, fn in metrics.items():
        values = np.concatenate(reps[k])
        lo, hi = percentile_interval(values, level)
        undefined = int(np.sum(~np.isfinite(values)))
        out[k] = {"estimate": float(fn(ones)[0]), "low": lo, "high": hi, "n_boot": int(n_boot),
                  "n_undefined": undefined, "undefined_share": undefined / n_boot if n_boot else 0.0, "level": level}
    return out
