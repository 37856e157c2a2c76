"""Headline metrics under bootstrap weights, one function per metric: ``fn(weights (B, n)) -> (B,)``.

A bootstrap replicate is a vector of counts (how often each example was drawn), so each metric here is
written for count weights and thousands of replicates run as a few matrix operations
(:func:`~medclass.evaluation.bootstrap.bootstrap`, paired comparisons in :mod:`medclass.runs.compare`).
Which functions a task gets is its kind's choice (:meth:`medclass.evaluation.kinds.TaskKind.weighted_metrics`).
"""

from __future__ import annotations

import warnings

import numpy as np

from .bootstrap import weighted_auc, weighted_average_precision, weighted_confusion
from .metrics import MISSING

__all__ = [
    "binary_weighted_metrics",
    "counts_metrics",
    "multiclass_weighted_metrics",
    "multilabel_weighted_metrics",
    "rate",
    "regression_weighted_metrics",
    "weighted_quadratic_kappa",
]


def rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, NaN elsewhere (an undefined ratio in a replicate)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def counts_metrics(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, PPV, NPV, F1 and balanced accuracy from weighted tp, fp, tn, fn."""
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sens, spec = rate(tp, tp + fn), rate(tn, tn + fp)
    return {"sensitivity": sens, "specificity": spec, "ppv": rate(tp, tp + fp), "npv": rate(tn, tn + fn),
            "f1": rate(2 * tp, 2 * tp + fp + fn), "balanced_accuracy": (sens + spec) / 2}


def binary_weighted_metrics(y_pos: np.ndarray, score_pos: np.ndarray, pred_pos: np.ndarray, correct: np.ndarray):
    """Weighted versions of the binary headline metrics, for :func:`~medclass.evaluation.bootstrap.bootstrap`."""
    y_pos = y_pos.astype(bool)

    def counts(w):
        return counts_metrics(weighted_confusion(y_pos, pred_pos, w))

    fns = {"auc": lambda w: weighted_auc(y_pos, score_pos, w),
           "average_precision": lambda w: weighted_average_precision(y_pos, score_pos, w),
           "acc": lambda w: rate(w @ correct, w.sum(1)),
           "brier": lambda w: rate(w @ (score_pos - y_pos) ** 2, w.sum(1))}
    for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "balanced_accuracy"):
        fns[k] = (lambda key: lambda w: counts(w)[key])(k)
    return fns


def multiclass_weighted_metrics(y: np.ndarray, proba: np.ndarray):
    """Weighted multi-class headline metrics of arg-max decisions: mean one-vs-rest AUC, accuracy, macro ratios."""
    k = proba.shape[1]
    pred = proba.argmax(1)
    per_class = [(y == i, pred == i) for i in range(k)]

    def macro(key):
        def fn(w):
            vals = np.stack([counts_metrics(weighted_confusion(t, p, w))[key] for t, p in per_class])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(vals, 0)
        return fn

    def auc(w):
        return np.mean(np.stack([weighted_auc(y == i, proba[:, i], w) for i in range(k)]), 0)

    fns = {"auc": auc, "acc": lambda w: rate(w @ (pred == y), w.sum(1))}
    for key in ("sensitivity", "specificity", "ppv", "npv", "f1"):
        fns[key] = macro(key)
    return fns


def multilabel_weighted_metrics(y: np.ndarray, proba: np.ndarray, threshold: float):
    """Weighted multi-label headline metrics: means over labels, each label's missing entries (-1) left out."""
    known = y != MISSING

    def per_label_mean(fn):
        def out(w):
            vals = np.stack([fn(i, w * known[:, i]) for i in range(y.shape[1])])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(vals, 0)
        return out

    pred = proba > threshold
    return {"auc": per_label_mean(lambda i, w: weighted_auc(y[:, i] == 1, proba[:, i], w)),
            "acc": per_label_mean(lambda i, w: rate(w @ (pred[:, i] == (y[:, i] == 1)), w.sum(1))),
            **{k: per_label_mean((lambda key: lambda i, w: counts_metrics(
                weighted_confusion(y[:, i] == 1, pred[:, i], w))[key])(k))
               for k in ("sensitivity", "specificity", "ppv", "npv", "f1")}}


def weighted_quadratic_kappa(y: np.ndarray, pred: np.ndarray, k: int):
    """Quadratic weighted kappa under bootstrap weights ``(B, n)``: the weighted confusion matrix of each
    replicate against the one expected from its margins (Cohen 1968), as sklearn's ``cohen_kappa_score``."""
    yh = np.eye(k)[np.asarray(y, int)]
    ph = np.eye(k)[np.asarray(pred, int)]
    cost = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2 / max(k - 1, 1) ** 2

    def fn(w):
        observed = np.einsum("bn,ni,nj->bij", w, yh, ph)
        total = observed.sum((1, 2), keepdims=True)
        expected = observed.sum(2, keepdims=True) * observed.sum(1, keepdims=True) / np.maximum(total, 1e-12)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1 - (observed * cost).sum((1, 2)) / (expected * cost).sum((1, 2))
    return fn


def regression_weighted_metrics(y: np.ndarray, pred: np.ndarray):
    """Weighted MAE, RMSE, R^2 and Pearson correlation of predicted values."""
    err = pred - y

    def mean(w, v):
        return (w @ v) / w.sum(1)

    def r2(w):
        sst = mean(w, y ** 2) - mean(w, y) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1 - mean(w, err ** 2) / sst

    def pearson(w):
        cov = mean(w, y * pred) - mean(w, y) * mean(w, pred)
        with np.errstate(invalid="ignore", divide="ignore"):
            return cov / np.sqrt((mean(w, y ** 2) - mean(w, y) ** 2) * (mean(w, pred ** 2) - mean(w, pred) ** 2))

    return {"mae": lambda w: mean(w, np.abs(err)), "rmse": lambda w: np.sqrt(mean(w, err ** 2)), "r2": r2,
            "pearson_r": pearson}
