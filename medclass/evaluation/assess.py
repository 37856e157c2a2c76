"""The clinical-reviewer evaluation of one split, from arrays: every number with its 95% interval.

:func:`assess` takes labels and probabilities (and, when available, the validation split's, for
choosing operating points and fitting a temperature) and returns one JSON-ready dict:

- ``metrics``: the headline metrics of :func:`~medclass.evaluation.metrics.classification_metrics`;
- ``intervals``: percentile bootstrap intervals for each of them (resampling patients when ``groups``
  is given), with the number of replicates where the metric was undefined;
- ``operating_points`` (binary): thresholds chosen on validation, applied unchanged, each with
  sensitivity, specificity, PPV, NPV and F1 and their intervals;
- ``curves`` (binary): ROC and precision-recall points;
- ``calibration`` (binary): Brier score, ECE, reliability bins, and optionally temperature scaling;
- ``subgroups``: the same metrics per value of each metadata column, with counts and a warning when a
  subgroup is too small to say anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from .bootstrap import bootstrap, weighted_auc, weighted_average_precision, weighted_confusion
from .calibration import apply_temperature, brier_score, expected_calibration_error, fit_temperature, reliability_bins
from .metrics import MISSING, classification_metrics, regression_metrics
from .thresholds import choose_operating_points

__all__ = ["AssessConfig", "assess", "binary_weighted_metrics", "weighted_metric_functions"]

SMALL_SUBGROUP = 30  # fewer examples (or fewer than 5 of either class) and a subgroup's numbers say little


@dataclass(frozen=True)
class AssessConfig:
    n_boot: int = 2000
    level: float = 0.95
    seed: int = 0
    sensitivity_target: float = 0.95
    specificity_target: float = 0.95
    temperature_scaling: bool = False
    threshold: float = 0.5  # MedMNIST's accuracy threshold on the class-1 probability


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _counts_metrics(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sens, spec = _rate(tp, tp + fn), _rate(tn, tn + fp)
    return {"sensitivity": sens, "specificity": spec, "ppv": _rate(tp, tp + fp), "npv": _rate(tn, tn + fn),
            "f1": _rate(2 * tp, 2 * tp + fp + fn), "balanced_accuracy": (sens + spec) / 2}


def binary_weighted_metrics(y_pos: np.ndarray, score_pos: np.ndarray, pred_pos: np.ndarray, correct: np.ndarray):
    """Weighted versions of the binary headline metrics, for :func:`~medclass.evaluation.bootstrap.bootstrap`."""
    y_pos = y_pos.astype(bool)

    def counts(w):
        return _counts_metrics(weighted_confusion(y_pos, pred_pos, w))

    fns = {"auc": lambda w: weighted_auc(y_pos, score_pos, w),
           "average_precision": lambda w: weighted_average_precision(y_pos, score_pos, w),
           "acc": lambda w: _rate(w @ correct, w.sum(1)),
           "brier": lambda w: _rate(w @ (score_pos - y_pos) ** 2, w.sum(1))}
    for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "balanced_accuracy"):
        fns[k] = (lambda key: lambda w: counts(w)[key])(k)
    return fns


def _multiclass_weighted(y: np.ndarray, proba: np.ndarray):
    k = proba.shape[1]
    pred = proba.argmax(1)
    per_class = [(y == i, pred == i) for i in range(k)]

    def macro(key):
        def fn(w):
            vals = np.stack([_counts_metrics(weighted_confusion(t, p, w))[key] for t, p in per_class])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(vals, 0)
        return fn

    def auc(w):
        return np.mean(np.stack([weighted_auc(y == i, proba[:, i], w) for i in range(k)]), 0)

    fns = {"auc": auc, "acc": lambda w: _rate(w @ (pred == y), w.sum(1))}
    for key in ("sensitivity", "specificity", "ppv", "npv", "f1"):
        fns[key] = macro(key)
    return fns


def _multilabel_weighted(y: np.ndarray, proba: np.ndarray, threshold: float):
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
            "acc": per_label_mean(lambda i, w: _rate(w @ (pred[:, i] == (y[:, i] == 1)), w.sum(1))),
            **{k: per_label_mean((lambda key: lambda i, w: _counts_metrics(
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


def _regression_weighted(y: np.ndarray, pred: np.ndarray):
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


def weighted_metric_functions(y, proba, task, positive, threshold):
    if task == "regression":
        return _regression_weighted(np.asarray(y, float).reshape(-1), np.asarray(proba, float)[:, 0])
    if task == "binary":
        y_pos = (y == positive)
        score = proba[:, positive]
        pred_pos = (proba[:, 1] > threshold) == (positive == 1)  # MedMNIST's rule, seen from the positive class
        correct = ((proba[:, 1] > threshold).astype(int) == y)
        return binary_weighted_metrics(y_pos, score, pred_pos, correct)
    if task == "multilabel":
        return _multilabel_weighted(y, proba, threshold)
    fns = _multiclass_weighted(y, proba)
    if task == "ordinal":
        fns["quadratic_weighted_kappa"] = weighted_quadratic_kappa(y, proba.argmax(1), proba.shape[1])
    return fns


def _thin(x: np.ndarray, y: np.ndarray, t: np.ndarray, max_points: int = 400) -> dict[str, list]:
    if len(x) > max_points:
        keep = np.unique(np.concatenate([np.linspace(0, len(x) - 1, max_points).astype(int), [len(x) - 1]]))
        x, y, t = x[keep], y[keep], t[keep]
    return {"x": [float(v) for v in x], "y": [float(v) for v in y],
            "thresholds": [float(v) if np.isfinite(v) else None for v in t]}


def assess(y: np.ndarray, proba: np.ndarray, task: str, labels: tuple[str, ...], *, positive_label: int | None = None,
           val: tuple[np.ndarray, np.ndarray] | None = None, groups: np.ndarray | None = None,
           subgroups: Mapping[str, np.ndarray] | None = None, cfg: AssessConfig = AssessConfig(),
           heads: Sequence[tuple[str, tuple[str, ...]]] = ()) -> dict:
    """Evaluate one split the way a clinical reviewer asks. See the module docstring for what comes back.

    Args:
        y: labels, ``(n,)`` (or ``(n, L)`` with -1 for missing, multi-label).
        proba: ``(n, n_classes)`` probabilities.
        task: binary, multiclass, ordinal, multilabel, regression (``proba`` is then the ``(n, 1)`` predicted
            values) or multitask (``y`` is ``(n, n_heads)``, -1 for missing; each head assessed on its own).
        labels: class names.
        positive_label: binary: the class called positive (default 1).
        val: ``(y_val, proba_val)`` of the validation split: operating points and temperature are fitted
            there, never on this split.
        groups: patient id per example; intervals then resample patients, not images.
        subgroups: metadata column name -> value per example.
        cfg: bootstrap and operating-point settings.
        heads: multitask: ``(head name, its class names)`` per head, in output order.
    """
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float)
    if task == "multitask":
        return _assess_heads(y, proba, heads, val=val, groups=groups, subgroups=subgroups, cfg=cfg)
    pos = 1 if positive_label is None else int(positive_label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one-class splits: NaN, reported below
        headline = (regression_metrics(y, proba[:, 0]) if task == "regression" else
                    classification_metrics(y, proba, task, labels, threshold=cfg.threshold,
                                           positive_label=positive_label))
    out: dict = {"metrics": headline}
    fns = weighted_metric_functions(y, proba, task, pos, cfg.threshold)
    out["intervals"] = bootstrap(fns, len(y), cfg.n_boot, cfg.level, cfg.seed, groups)
    out["bootstrap"] = {"replicates": cfg.n_boot, "level": cfg.level, "seed": cfg.seed, "method": "percentile",
                        "unit": "patient" if groups is not None else "image",
                        "n_units": int(len(np.unique(groups))) if groups is not None else int(len(y))}
    if task == "binary":
        y_pos, score = (y == pos).astype(int), proba[:, pos]
        out["curves"] = _binary_curves(y_pos, score)
        out["calibration"] = _calibration(y_pos, score, proba, y, val, pos, cfg)
        if val is not None:
            out["operating_points"] = _operating_points(y_pos, score, val, pos, groups, cfg)
    if subgroups:
        out["subgroups"] = {col: _subgroups(y, proba, task, labels, positive_label, np.asarray(values), groups, cfg)
                            for col, values in subgroups.items()}
    return out


def _binary_curves(y_pos: np.ndarray, score: np.ndarray) -> dict:
    if y_pos.all() or not y_pos.any():
        return {}
    fpr, tpr, thr = roc_curve(y_pos, score)
    prec, rec, pthr = precision_recall_curve(y_pos, score)
    return {"roc": _thin(fpr, tpr, thr), "pr": _thin(rec[::-1], prec[::-1], np.r_[pthr, np.inf][::-1]),
            "prevalence": float(y_pos.mean())}


def _calibration(y_pos, score, proba, y, val, pos, cfg) -> dict:
    cal = {"brier": brier_score(y_pos, score), "ece": expected_calibration_error(y_pos, score),
           "reliability": reliability_bins(y_pos, score)}
    if cfg.temperature_scaling and val is not None:
        t = fit_temperature(val[1], val[0])
        scaled = apply_temperature(proba, t)[:, pos]
        cal["temperature"] = {"t": t, "fitted_on": "val", "brier": brier_score(y_pos, scaled),
                              "ece": expected_calibration_error(y_pos, scaled),
                              "reliability": reliability_bins(y_pos, scaled)}
    return cal


def _operating_points(y_pos, score, val, pos, groups, cfg) -> list[dict]:
    y_val, p_val = np.asarray(val[0]), np.asarray(val[1], dtype=float)
    points = choose_operating_points(y_val == pos, p_val[:, pos], cfg.sensitivity_target, cfg.specificity_target)
    out = []
    for op in points:
        pred = score >= op.threshold

        def counts(w, pred=pred):
            return _counts_metrics(weighted_confusion(y_pos.astype(bool), pred, w))

        fns = {k: (lambda key, c=counts: lambda w: c(w)[key])(k)
               for k in ("sensitivity", "specificity", "ppv", "npv", "f1")}
        ci = bootstrap(fns, len(y_pos), cfg.n_boot, cfg.level, cfg.seed, groups)
        out.append({"name": op.name, "threshold": op.threshold, "rule": op.rule,
                    "val": {"sensitivity": op.val_sensitivity, "specificity": op.val_specificity}, **ci})
    return out


def _subgroups(y, proba, task, labels, positive_label, values, groups, cfg) -> list[dict]:
    out = []
    for v in np.unique(values.astype(str)):
        m = values.astype(str) == v
        ys, ps = y[m], proba[m]
        counts = np.bincount(ys, minlength=len(labels)).tolist() if task not in ("multilabel", "regression") else None
        small = m.sum() < SMALL_SUBGROUP or (counts is not None and min(counts[:2]) < 5)
        sub_cfg = AssessConfig(**{**cfg.__dict__, "temperature_scaling": False})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            headline = (regression_metrics(ys, ps[:, 0]) if task == "regression" else
                        classification_metrics(ys, ps, task, labels, threshold=cfg.threshold,
                                               positive_label=positive_label))
        fns = weighted_metric_functions(ys, ps, task, 1 if positive_label is None else positive_label, cfg.threshold)
        ci = bootstrap(fns, int(m.sum()), sub_cfg.n_boot, cfg.level, cfg.seed,
                       None if groups is None else np.asarray(groups)[m])
        row = {"value": v, "n": int(m.sum()), "class_counts": counts,
               "metrics": {k: headline[k] for k in (("mae", "rmse", "r2", "pearson_r") if task == "regression" else
                                                    ("auc", "acc", "sensitivity", "specificity", "ppv", "npv", "f1"))},
               "intervals": ci, "too_small": bool(small)}
        if small:
            row["warning"] = (f"only {int(m.sum())} examples{'' if counts is None else f' ({counts})'}: "
                              f"intervals are wide and differences between subgroups say little")
        out.append(row)
    return out


def _assess_heads(y, proba, heads, *, val, groups, subgroups, cfg) -> dict:
    """Multi-task: each head is a binary or multi-class task of its own (its missing labels left out); the
    headline ``auc`` and ``acc`` are the means over heads, the details sit under ``heads``."""
    if not heads:
        raise ValueError("a multitask assessment needs heads=[(name, class names), ...]")
    sizes = [len(c) for _, c in heads]
    if y.ndim != 2 or y.shape[1] != len(heads) or proba.shape[1] != sum(sizes):
        raise ValueError(f"multitask: labels {y.shape} and probabilities {proba.shape} do not match heads {sizes}")
    bounds = np.cumsum([0, *sizes])
    out: dict = {}
    for h, (name, classes) in enumerate(heads):
        known = y[:, h] != MISSING
        p = proba[known, bounds[h]:bounds[h + 1]]
        v = None
        if val is not None:
            vk = val[0][:, h] != MISSING
            v = (val[0][vk, h], val[1][vk, bounds[h]:bounds[h + 1]])
        res = assess(y[known, h], p, "binary" if len(classes) == 2 else "multiclass", tuple(classes), val=v,
                     groups=None if groups is None else np.asarray(groups)[known],
                     subgroups=None if not subgroups else {c: np.asarray(x)[known] for c, x in subgroups.items()},
                     cfg=cfg)
        out[name] = {**res.pop("metrics"), **res}
    mean = {k: float(np.nanmean([out[name][k] for name, _ in heads])) for k in ("auc", "acc")}
    return {"metrics": {"task": "multitask", "n": int(len(y)), **mean, "averaging": "mean over heads",
                        "heads": out}}
