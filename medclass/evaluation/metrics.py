"""Metrics as pure functions of labels and scores (so they grade any tool's output).

Which of them a task uses, and MedMNIST's AUC and accuracy definitions per task, are the task kind's
(:mod:`medclass.evaluation.kinds`, which also holds ``classification_metrics``, ``medmnist_auc`` and
``medmnist_acc``).

Everything else comes from scikit-learn where it has the metric (confusion matrix, balanced accuracy,
average precision, Cohen's kappa, MAE, R^2); only the clinical ratios (sensitivity, specificity, PPV,
NPV) are read off the confusion matrix here, so an undefined ratio is NaN instead of a warning and 0.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

__all__ = ["MISSING", "auc_or_nan", "average_precision_or_nan", "auc_standard_error", "mean_auc_standard_error",
           "binary_counts", "binary_metrics", "multiclass_metrics", "multilabel_metrics", "ordinal_metrics",
           "regression_metrics"]

MISSING = -1  # multi-label: a label that was not annotated


def auc_or_nan(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC of scores ``s`` for binary ``y``; NaN, with a warning, when ``y`` holds one class."""
    if len(np.unique(y)) < 2:
        warnings.warn("Only one class is present in y_true; ROC AUC is not defined and is reported as NaN.",
                      stacklevel=3)
        return float("nan")
    return float(roc_auc_score(y, s))


def average_precision_or_nan(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision of scores ``s`` for binary ``y``; NaN when there is no positive."""
    return float(average_precision_score(y, s)) if np.any(y) else float("nan")


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil's standard error of an ROC AUC (Radiology 143:29, 1982, eq. 2); NaN when undefined.

    Written here because scikit-learn and SciPy have no AUC standard error; it is a closed form in the AUC and
    the two class counts, cheap enough to compute after every epoch.
    """
    if not (n_pos and n_neg) or not math.isfinite(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def mean_auc_standard_error(columns: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Standard error of a mean of AUCs, one per ``(is_positive, score)`` column: Hanley-McNeil for each column
    with both classes, combined as ``sqrt(sum se**2) / k`` treating them as independent (an approximation)."""
    ses = []
    for pos, s in columns:
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos and n_neg:
            ses.append(auc_standard_error(float(roc_auc_score(pos, s)), n_pos, n_neg))
    return float(math.sqrt(sum(e * e for e in ses)) / len(ses)) if ses else float("nan")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def binary_counts(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and F1 of hard predictions, with ``positive`` as the positive class.

    An undefined ratio (no positives, or no predicted positives) is NaN, not an exception.
    """
    t = np.asarray(y_true).reshape(-1) == positive
    p = np.asarray(y_pred).reshape(-1) == positive
    tn, fp, fn, tp = confusion_matrix(t, p, labels=[False, True]).ravel()
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
    }


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict:
    """Threshold-free and thresholded metrics of positive-class scores (positive = 1/True, ``score >= t``)."""
    y = np.asarray(y_true).astype(int).reshape(-1)
    s = np.asarray(score, dtype=float).reshape(-1)
    pred = (s >= threshold).astype(int)
    out = {"n": int(len(y)), "n_positive": int(y.sum()), "auc": auc_or_nan(y, s),
           "average_precision": average_precision_or_nan(y, s),
           "threshold": float(threshold), "accuracy": float(accuracy_score(y, pred))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one-class y: sklearn warns, the value is still defined
        out["balanced_accuracy"] = float(balanced_accuracy_score(y, pred)) if len(np.unique(y)) > 1 else float("nan")
    out.update(binary_counts(y, pred, 1))
    return out


def multiclass_metrics(y_true: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Per-class one-vs-rest table, macro and micro averages, confusion matrix (arg-max decisions)."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    k = p.shape[1]
    pred = p.argmax(1)
    per = {}
    for i, name in enumerate(labels[:k]):
        t = (y == i).astype(int)
        per[name] = {"n": int(t.sum()), "auc": auc_or_nan(t, p[:, i]) if 0 < t.sum() < len(t) else float("nan"),
                     "average_precision": average_precision_or_nan(t, p[:, i]), **binary_counts(y, pred, i)}
    with warnings.catch_warnings():  # a metric undefined for every class (e.g. PPV, nothing predicted): NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        macro = {m: float(np.nanmean([v[m] for v in per.values()])) if per else float("nan")
                 for m in ("auc", "average_precision", "sensitivity", "specificity", "ppv", "npv", "f1")}
    onehot = np.eye(k)[y]
    micro_auc = auc_or_nan(onehot.ravel(), p.ravel())
    return {"n": int(len(y)), "accuracy": float(accuracy_score(y, pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "macro": macro, "micro": {"auc": micro_auc, "f1": float(accuracy_score(y, pred))},
            "per_class": per, "confusion_matrix": confusion_matrix(y, pred, labels=list(range(k))).tolist()}


def multilabel_metrics(y_true: np.ndarray, proba: np.ndarray, labels: tuple[str, ...],
                       threshold: float = 0.5) -> dict:
    """Per-label binary metrics and their mean; labels equal to -1 (not annotated) are masked out."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    per = {}
    for i, name in enumerate(labels):
        known = y[:, i] != MISSING
        m = binary_metrics(y[known, i], p[known, i], threshold) if known.any() else {}
        per[name] = {**m, "n_missing": int((~known).sum())}
    keys = ("auc", "average_precision", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = {m: float(np.nanmean([v.get(m, np.nan) for v in per.values()])) for m in keys}
    return {"n": int(len(y)), "mean": mean, "per_label": per}


def ordinal_metrics(y_true: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Grading: quadratic weighted kappa and mean absolute grade error of the arg-max grade, plus the
    multi-class view. Grades are the class indices 0..K-1 in order."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    grade = p.argmax(1)
    expected = p @ np.arange(p.shape[1])
    return {"quadratic_weighted_kappa": float(cohen_kappa_score(y, grade, weights="quadratic",
                                                                 labels=list(range(p.shape[1])))),
            "mean_absolute_grade_error": float(mean_absolute_error(y, grade)),
            "mean_absolute_error_expected_grade": float(mean_absolute_error(y, expected)),
            **multiclass_metrics(y, p, labels)}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    y = np.asarray(y_true, dtype=float).reshape(-1)
    f = np.asarray(y_pred, dtype=float).reshape(-1)
    varied = len(y) > 1 and np.ptp(y) > 0 and np.ptp(f) > 0
    return {"task": "regression", "n": int(len(y)), "mae": float(mean_absolute_error(y, f)),
            "rmse": float(np.sqrt(mean_squared_error(y, f))),
            "r2": float(r2_score(y, f)) if len(y) > 1 else float("nan"),
            "pearson_r": float(pearsonr(y, f)[0]) if varied else float("nan"),
            "spearman_r": float(spearmanr(y, f)[0]) if varied else float("nan")}
