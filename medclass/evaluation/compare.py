"""Comparing two models (or a model and a reader) on the same examples.

- Paired bootstrap: both models are scored on the *same* resampled examples (or patients) in every
  replicate, and the interval is taken on the difference, so the correlation between the two models'
  errors is kept (the unpaired intervals of each model would be far too wide for the difference).
- DeLong's test for two correlated ROC AUCs (DeLong, DeLong & Clarke-Pearson, Biometrics 1988), in the
  fast midrank form of Sun & Xu (IEEE SPL 2014). Neither scikit-learn nor SciPy provides it; the ranks
  come from ``scipy.stats.rankdata``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata

__all__ = ["delong_test", "delong_auc_variance"]


def _delong_components(y: np.ndarray, scores: np.ndarray):
    y = np.asarray(y).astype(bool)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = s[:, y], s[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong's test needs both classes among the examples.")
    tx = np.apply_along_axis(rankdata, 1, pos)
    ty = np.apply_along_axis(rankdata, 1, neg)
    tz = np.apply_along_axis(rankdata, 1, np.concatenate([pos, neg], 1))
    aucs = (tz[:, :m].sum(1) / m - (m + 1) / 2) / n
    v01 = (tz[:, :m] - tx) / n  # structural components of the positives
    v10 = 1 - (tz[:, m:] - ty) / m  # ... and of the negatives
    cov = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return aucs, cov


def delong_auc_variance(y_true: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong variance for one model."""
    aucs, cov = _delong_components(y_true, score)
    return float(aucs[0]), float(cov[0, 0])


def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> dict[str, float]:
    """Two-sided DeLong test of AUC(a) = AUC(b) on the same examples."""
    aucs, cov = _delong_components(y_true, np.vstack([score_a, score_b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 0:
        z, p = (0.0, 1.0) if diff == 0 else (float("inf") * np.sign(diff), 0.0)
    else:
        z = diff / np.sqrt(var)
        p = float(2 * norm.sf(abs(z)))
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": diff, "z": float(z), "p_value": p,
            "se": float(np.sqrt(max(var, 0.0)))}
