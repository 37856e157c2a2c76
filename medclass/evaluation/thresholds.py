"""Operating points: decision thresholds chosen on validation data, then applied unchanged to test.

A binary model outputs a score for the positive class; a threshold turns it into a decision
(``score >= threshold`` is positive, scikit-learn's ``roc_curve`` convention). Which threshold to use is
a clinical choice, so medclass reports several, each chosen on the *validation* split only:

- ``default``: 0.5 on the positive-class probability.
- ``youden``: maximises Youden's J = sensitivity + specificity - 1 (Youden 1950).
- ``high_sensitivity``: the highest threshold whose sensitivity reaches the target (0.95 by default), i.e.
  the most specific rule that still catches 95% of positives: a screening test.
- ``high_specificity``: the lowest threshold whose specificity reaches the target (0.95): a rule for
  high-risk decisions where false alarms are costly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_curve

__all__ = ["OperatingPoint", "choose_operating_points"]


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    threshold: float
    rule: str  # how it was chosen, in words
    val_sensitivity: float
    val_specificity: float


def _rates(y: np.ndarray, s: np.ndarray, t: float) -> tuple[float, float]:
    pred = s >= t
    pos, neg = y.sum(), (~y).sum()
    sens = float((pred & y).sum() / pos) if pos else float("nan")
    spec = float((~pred & ~y).sum() / neg) if neg else float("nan")
    return sens, spec


def choose_operating_points(y_val: np.ndarray, score_val: np.ndarray, sensitivity_target: float = 0.95,
                            specificity_target: float = 0.95, default: float = 0.5) -> list[OperatingPoint]:
    """Choose the four operating points on validation labels (positive = 1/True) and positive-class scores."""
    y = np.asarray(y_val).astype(bool)
    s = np.asarray(score_val, dtype=float)
    if y.all() or not y.any():
        raise ValueError("Operating points need both classes in the validation split; it holds only one.")
    fpr, tpr, thr = roc_curve(y, s)
    thr = np.minimum(thr, 1.0)  # roc_curve's first threshold is +inf (nothing positive)
    spec = 1 - fpr
    j = tpr - fpr
    i_youden = int(np.argmax(j))
    ok_sens = np.flatnonzero(tpr >= sensitivity_target)  # thresholds decrease along the curve
    i_sens = int(ok_sens[0])  # the first (highest threshold) reaching the target
    ok_spec = np.flatnonzero(spec >= specificity_target)
    i_spec = int(ok_spec[-1])  # the last (lowest threshold) keeping the target
    points = [("default", default, f"fixed threshold {default:g} on the positive-class probability"),
              ("youden", float(thr[i_youden]), "maximum of sensitivity + specificity - 1 on validation"),
              ("high_sensitivity", float(thr[i_sens]),
               f"highest threshold with validation sensitivity >= {sensitivity_target:g}"),
              ("high_specificity", float(thr[i_spec]),
               f"lowest threshold with validation specificity >= {specificity_target:g}")]
    out = []
    for name, t, rule in points:
        sens, sp = _rates(y, s, t)
        out.append(OperatingPoint(name, t, rule, sens, sp))
    return out
