"""The clinical-reviewer evaluation of one split, from arrays: every number with its 95% interval.

:func:`assess` takes labels and probabilities (and, when available, the validation split's, for
choosing operating points and fitting a temperature) and returns one JSON-ready dict:

- ``metrics``: the headline metrics of :func:`~medclass.evaluation.kinds.classification_metrics`;
- ``intervals``: percentile bootstrap intervals for each of them (resampling patients when ``groups``
  is given), with the number of replicates where the metric was undefined;
- ``operating_points`` (binary): thresholds chosen on validation, applied unchanged, each with
  sensitivity, specificity, PPV, NPV and F1 and their intervals;
- ``curves`` (binary): ROC and precision-recall points;
- ``calibration`` (binary): Brier score, ECE, reliability bins, and optionally temperature scaling;
- ``subgroups``: the same metrics per value of each metadata column, with counts and a warning when a
  subgroup is too small to say anything;
- ``warnings``: what makes the numbers of this split unreliable, each ``{"code", "message"}`` (empty when nothing
  does): a split of fewer than ``SMALL_SPLIT`` images (or patients), a class with fewer than ``RARE_CLASS``
  examples, an interval whose metric has a value but was undefined in more than ``UNDEFINED_SHARE`` of the
  bootstrap replicates (resamples without an image of a class, or none called it; the interval then comes from the
  lucky rest and is too narrow), and operating points that could not be chosen. A test split of two images printed
  AUC 1.000 [1.000, 1.000] with 967 of 2000 replicates undefined before these warnings existed.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from .bootstrap import bootstrap, weighted_confusion
from .calibration import apply_temperature, brier_score, expected_calibration_error, fit_temperature, reliability_bins
from .kinds import class_kind, get_kind
from .metrics import MISSING
from .thresholds import choose_operating_points
from .weighted import binary_weighted_metrics, counts_metrics

# binary_weighted_metrics lives in .weighted and is re-exported for existing imports
__all__ = ["AssessConfig", "assess", "binary_weighted_metrics", "weighted_metric_functions"]

log = logging.getLogger(__name__)

SMALL_SUBGROUP = 30  # fewer examples (or fewer than 5 of either class) and a subgroup's numbers say little
SMALL_SPLIT = 30  # fewer images (patients, when resampled by patient) and every interval of a split is shaky
RARE_CLASS = 10  # fewer examples of a class (positives or negatives of a label) and its numbers say little
UNDEFINED_SHARE = 0.05  # more bootstrap replicates without a value and an interval is not to be trusted


@dataclass(frozen=True)
class AssessConfig:
    n_boot: int = 2000
    level: float = 0.95
    seed: int = 0
    sensitivity_target: float = 0.95
    specificity_target: float = 0.95
    temperature_scaling: bool = False
    threshold: float = 0.5  # MedMNIST's accuracy threshold on the class-1 probability
    unit: str = "image"  # what one example is (image, volume): the bootstrap's unit when there are no patient ids


def weighted_metric_functions(y: np.ndarray, proba: np.ndarray, task: str, positive: int, threshold: float) -> dict:
    """The headline metrics of ``task`` as functions of bootstrap weights (see :mod:`.weighted`)."""
    return get_kind(task).weighted_metrics(np.asarray(y), np.asarray(proba, dtype=float), positive, threshold)


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
    kind = get_kind(task)
    if kind.multihead:
        return _assess_heads(y, proba, heads, val=val, groups=groups, subgroups=subgroups, cfg=cfg)
    pos = 1 if positive_label is None else int(positive_label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one-class splits: NaN, reported below
        headline = kind.metrics(y, proba, labels, cfg.threshold, positive_label)
    out: dict = {"metrics": headline}
    fns = kind.weighted_metrics(y, proba, pos, cfg.threshold)
    out["intervals"] = bootstrap(fns, len(y), cfg.n_boot, cfg.level, cfg.seed, groups)
    out["bootstrap"] = {"replicates": cfg.n_boot, "level": cfg.level, "seed": cfg.seed, "method": "percentile",
                        "unit": "patient" if groups is not None else cfg.unit,
                        "n_units": int(len(np.unique(groups))) if groups is not None else int(len(y))}
    found = split_warnings(kind.class_support(y, labels), out["intervals"], out["bootstrap"]["n_units"],
                           out["bootstrap"]["unit"])
    if kind.has_positive_class:
        y_pos, score = (y == pos).astype(int), proba[:, pos]
        out["curves"] = _binary_curves(y_pos, score)
        out["calibration"] = _calibration(y_pos, score, proba, y, val, pos, cfg)
        if val is not None:
            if len(np.unique(np.asarray(val[0]) == pos)) < 2:
                found.append({"code": "no-operating-points", "message": (
                    "Operating points were not chosen: the validation predictions hold only one class, so no "
                    "threshold can be tuned on them. Give validation predictions with both classes.")})
            else:
                out["operating_points"] = _operating_points(y_pos, score, val, pos, groups, cfg)
    if subgroups:
        out["subgroups"] = {col: _subgroups(y, proba, kind, labels, positive_label, np.asarray(values), groups, cfg)
                            for col, values in subgroups.items()}
    for w in found:
        log.warning("%s", w["message"])
    out["warnings"] = found
    return out


def split_warnings(support: Sequence[tuple[str, int]], intervals: Mapping[str, dict], n_units: int,
                   unit: str = "image") -> list[dict[str, str]]:
    """What makes a split's numbers unreliable (see the module notes), each as ``{"code", "message"}``.

    Args:
        support: ``(what, count)`` per class, from :meth:`~medclass.evaluation.kinds.TaskKind.class_support`.
        intervals: from :func:`~medclass.evaluation.bootstrap.bootstrap`.
        n_units: images, or patients when the bootstrap resamples patients.
        unit: ``image`` or ``patient``.
    """
    out = []
    if n_units < SMALL_SPLIT:
        out.append({"code": "small-split", "message": (
            f"Only {n_units} {unit}{'s' if n_units != 1 else ''} in this split: every number here could change a "
            f"lot with a few other {unit}s, and the intervals cannot show how much. Read them as anecdotes; "
            f"evaluate on at least {SMALL_SPLIT} {unit}s, with at least {RARE_CLASS} of each class.")})
    rare = [f"{what}: {n}" for what, n in support if n < RARE_CLASS]
    if rare:
        out.append({"code": "rare-class", "message": (
            f"Fewer than {RARE_CLASS} examples behind some numbers ({'; '.join(rare)}): sensitivity, "
            f"specificity, AUC and their intervals rest on those few images and are not reliable.")})
    # a metric without a value on the split itself shows "n/a", which misleads no one; one with a value does
    undefined = {k: iv["undefined_share"] for k, iv in intervals.items()
                 if iv.get("undefined_share", 0) > UNDEFINED_SHARE and math.isfinite(iv["estimate"])}
    if undefined:
        worst = ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(undefined.items(), key=lambda kv: -kv[1]))
        n_boot = next(iter(intervals.values()))["n_boot"]
        out.append({"code": "undefined-replicates", "message": (
            f"Some intervals could not be computed in more than {100 * UNDEFINED_SHARE:.0f}% of the {n_boot} "
            f"bootstrap resamples ({worst}): those resamples held no image of a class, or none called it, so the "
            f"number had nothing to divide by. The intervals come from the other resamples and are narrower than "
            f"the data allow.")})
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
            return counts_metrics(weighted_confusion(y_pos.astype(bool), pred, w))

        fns = {k: (lambda key, c=counts: lambda w: c(w)[key])(k)
               for k in ("sensitivity", "specificity", "ppv", "npv", "f1")}
        ci = bootstrap(fns, len(y_pos), cfg.n_boot, cfg.level, cfg.seed, groups)
        out.append({"name": op.name, "threshold": op.threshold, "rule": op.rule,
                    "val": {"sensitivity": op.val_sensitivity, "specificity": op.val_specificity}, **ci})
    return out


def _subgroups(y, proba, kind, labels, positive_label, values, groups, cfg) -> list[dict]:
    out = []
    for v in np.unique(values.astype(str)):
        m = values.astype(str) == v
        ys, ps = y[m], proba[m]
        counts = kind.subgroup_counts(ys, len(labels))
        small = m.sum() < SMALL_SUBGROUP or (counts is not None and min(counts[:2]) < 5)
        sub_cfg = AssessConfig(**{**cfg.__dict__, "temperature_scaling": False})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            headline = kind.metrics(ys, ps, labels, cfg.threshold, positive_label)
        fns = kind.weighted_metrics(ys, ps, 1 if positive_label is None else positive_label, cfg.threshold)
        ci = bootstrap(fns, int(m.sum()), sub_cfg.n_boot, cfg.level, cfg.seed,
                       None if groups is None else np.asarray(groups)[m])
        row = {"value": v, "n": int(m.sum()), "class_counts": counts,
               "metrics": {k: headline[k] for k in kind.subgroup_keys},
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
        res = assess(y[known, h], p, class_kind(len(classes)).name, tuple(classes), val=v,
                     groups=None if groups is None else np.asarray(groups)[known],
                     subgroups=None if not subgroups else {c: np.asarray(x)[known] for c, x in subgroups.items()},
                     cfg=cfg)
        out[name] = {**res.pop("metrics"), **res}
    mean = {k: float(np.nanmean([out[name][k] for name, _ in heads])) for k in ("auc", "acc")}
    found = [{"code": w["code"], "message": f"Head {name!r}: {w['message']}"}
             for name, _ in heads for w in out[name]["warnings"]]
    return {"metrics": {"task": "multitask", "n": int(len(y)), **mean, "averaging": "mean over heads",
                        "heads": out}, "warnings": found}
