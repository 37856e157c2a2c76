"""Classification metrics as pure functions of labels and scores (so they grade any tool's output).

``medmnist_auc`` and ``medmnist_acc`` follow ``medmnist/evaluator.py`` (getAUC, getACC) exactly, so
numbers compare with the MedMNIST v2 paper: binary AUC is on the score of class 1; multi-class AUC is
the mean of one-vs-rest AUCs; multi-label AUC and accuracy are means over labels; binary and
multi-label accuracy use ``score > 0.5``, multi-class accuracy the arg-max. The clinical counts
(sensitivity, specificity, PPV, NPV, F1) come from scikit-learn's confusion matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

__all__ = ["medmnist_auc", "medmnist_acc", "binary_counts", "classification_metrics"]


def _safe_auc(y: np.ndarray, s: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        warnings.warn("Only one class is present in y_true; ROC AUC is not defined and is reported as NaN.",
                      stacklevel=3)
        return float("nan")
    return float(roc_auc_score(y, s))


def medmnist_auc(y_true: np.ndarray, y_score: np.ndarray, task: str) -> float:
    """MedMNIST's AUC. ``y_score`` is ``(n, n_classes)`` (or ``(n,)`` for binary positive-class scores)."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if task == "multilabel":
        return float(np.mean([_safe_auc(y_true[:, i], y_score[:, i]) for i in range(y_score.shape[1])]))
    if task == "binary":
        return _safe_auc(y_true.reshape(-1), y_score[:, -1] if y_score.ndim == 2 else y_score)
    return float(np.mean([_safe_auc((y_true == i).astype(int), y_score[:, i]) for i in range(y_score.shape[1])]))


def medmnist_acc(y_true: np.ndarray, y_score: np.ndarray, task: str, threshold: float = 0.5) -> float:
    """MedMNIST's accuracy (``score > threshold`` for binary and multi-label, arg-max otherwise)."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if task == "multilabel":
        pred = y_score > threshold
        return float(np.mean([accuracy_score(y_true[:, i], pred[:, i]) for i in range(y_true.shape[1])]))
    if task == "binary":
        s = y_score[:, -1] if y_score.ndim == 2 else y_score
        return float(accuracy_score(y_true.reshape(-1), s > threshold))
    return float(accuracy_score(y_true, y_score.argmax(axis=1)))


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def binary_counts(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and F1 of hard predictions, with ``positive`` as the positive class.

    An undefined ratio (no positives, or no predicted positives) is NaN, not an exception.
    """
    t = np.asarray(y_true).reshape(-1) == positive
    p = np.asarray(y_pred).reshape(-1) == positive
    tn, fp, fn, tp = confusion_matrix(t, p, labels=[False, True]).ravel()
    sens, ppv = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    return {
        "sensitivity": sens,
        "specificity": _ratio(tn, tn + fp),
        "ppv": ppv,
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
    }


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, task: str, labels: tuple[str, ...],
                           threshold: float = 0.5, positive_label: int | None = None) -> dict:
    """Every number ``metrics/<split>.json`` holds, for one split.

    Args:
        y_true: ``(n,)`` class indices, or ``(n, L)`` 0/1 for multi-label.
        y_score: ``(n, n_classes)`` probabilities.
        task: binary, multiclass, ordinal or multilabel.
        labels: class (or label) names, in index order.
        threshold: decision threshold on the class-1 probability (binary) or each label (multi-label).
        positive_label: binary only: the class reported as "positive" for sensitivity etc. (default 1).
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    out: dict = {"n": int(len(y_true)), "auc": medmnist_auc(y_true, y_score, task),
                 "acc": medmnist_acc(y_true, y_score, task, threshold)}
    if task == "binary":
        pred = (y_score[:, 1] > threshold).astype(int)
        pos = 1 if positive_label is None else int(positive_label)
        out.update(positive_class=labels[pos], threshold=threshold, **binary_counts(y_true, pred, pos))
        out["confusion_matrix"] = confusion_matrix(y_true, pred, labels=[0, 1]).tolist()
    elif task == "multilabel":
        pred = (y_score > threshold).astype(int)
        per = {name: {"auc": _safe_auc(y_true[:, i], y_score[:, i]), "n_positive": int(y_true[:, i].sum()),
                      **binary_counts(y_true[:, i], pred[:, i], 1)} for i, name in enumerate(labels)}
        out["threshold"] = threshold
        out["per_label"] = per
        for k in ("sensitivity", "specificity", "ppv", "npv", "f1"):
            out[k] = float(np.nanmean([v[k] for v in per.values()])) if per else float("nan")
    else:
        pred = y_score.argmax(axis=1)
        k = y_score.shape[1]
        per = {name: binary_counts(y_true, pred, i) for i, name in enumerate(labels[:k])}
        out["per_class"] = per
        for m in ("sensitivity", "specificity", "ppv", "npv", "f1"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN classes
                out[m] = float(np.nanmean([v[m] for v in per.values()]))
        out["averaging"] = "macro (unweighted mean over classes)"
        out["confusion_matrix"] = confusion_matrix(y_true, pred, labels=list(range(k))).tolist()
    return out
