"""What changed between the data a model was trained on and a new data set (an external site, a new scanner).

Pure functions on arrays, used by external validation (:mod:`medclass.runs.external`):

- :func:`intensity_shift`: per-channel intensity statistics (:func:`medclass.data.statistics.intensity_statistics`)
  compared as a standardised mean difference (the difference of means in training standard deviations);
- :func:`prevalence_shift`: each class's share in the training split and in the new set (a different case mix
  changes PPV, NPV and accuracy even when the model is unchanged);
- :func:`operating_point_shift`: calibration at each operating point chosen on validation: how many images the
  model calls positive (expected) against how many are positive (observed), here and on validation, and the
  mean predicted probability against the observed prevalence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["intensity_shift", "prevalence_shift", "operating_point_shift"]


def intensity_shift(train: dict[str, list[float]], new: dict[str, list[float]]) -> dict[str, Any]:
    """Both sets' statistics and, per channel, the standardised mean difference
    ``(mean_new - mean_train) / sd_train``."""
    smd = [round((n - t) / s, 3) if s and s > 0 else float("nan")
           for t, n, s in zip(train["mean"], new["mean"], train["sd"])]
    return {"train": train, "new": new, "standardised_mean_difference": smd}


def prevalence_shift(train_counts: Sequence[int], new_labels: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Each class's share of the training split and of the new set (single-label tasks)."""
    train = np.asarray(train_counts, float)
    new = np.bincount(np.asarray(new_labels, int), minlength=len(classes)).astype(float)
    return {"classes": list(classes), "train_counts": train.astype(int).tolist(),
            "new_counts": new.astype(int).tolist(),
            "train_share": np.round(train / max(train.sum(), 1), 4).tolist(),
            "new_share": np.round(new / max(new.sum(), 1), 4).tolist()}


def operating_point_shift(y: np.ndarray, p_pos: np.ndarray, y_val: np.ndarray, p_val_pos: np.ndarray,
                          thresholds: dict[str, float], positive: int = 1) -> dict[str, Any]:
    """Expected (called positive by the model) against observed positives at each operating point, here and on
    validation, and the mean predicted probability against the observed prevalence (binary tasks)."""
    y, y_val = np.asarray(y) == positive, np.asarray(y_val) == positive
    p_pos, p_val_pos = np.asarray(p_pos, float), np.asarray(p_val_pos, float)
    rows = []
    for name, t in thresholds.items():
        rows.append({"operating_point": name, "threshold": float(t),
                     "called_positive": int((p_pos >= t).sum()), "observed_positive": int(y.sum()), "n": len(y),
                     "val_called_positive_rate": round(float((p_val_pos >= t).mean()), 4) if len(y_val) else None,
                     "val_observed_positive_rate": round(float(y_val.mean()), 4) if len(y_val) else None})
    return {"mean_predicted_probability": round(float(p_pos.mean()), 4) if len(p_pos) else None,
            "observed_prevalence": round(float(y.mean()), 4) if len(y) else None,
            "expected_positives": round(float(p_pos.sum()), 1), "observed_positives": int(y.sum()),
            "at_operating_points": rows}
