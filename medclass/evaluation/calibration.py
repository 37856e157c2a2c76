"""Calibration: do predicted probabilities mean what they say?

- Brier score: mean squared difference between the probability and the outcome (Brier 1950).
- Expected calibration error (ECE): the bin-weighted mean gap between confidence and observed
  frequency over equal-width probability bins (Naeini et al. 2015; Guo et al. 2017).
- Reliability diagram data: per bin, mean predicted probability, observed frequency and count;
  scikit-learn's ``calibration_curve`` drops empty bins and counts, so the binning here keeps both.
- Temperature scaling (Guo et al. 2017): one scalar T dividing the logits, fitted on validation by
  minimising the negative log-likelihood with SciPy's bounded scalar minimiser.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

__all__ = ["brier_score", "expected_calibration_error", "reliability_bins", "fit_temperature", "apply_temperature"]


def brier_score(y_true: np.ndarray, prob_pos: np.ndarray) -> float:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob_pos, dtype=float)
    return float(np.mean((p - y) ** 2))


def reliability_bins(y_true: np.ndarray, prob_pos: np.ndarray, n_bins: int = 10) -> dict[str, list]:
    """Equal-width bins on [0, 1]: edges, count, mean probability and observed positive rate per bin."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob_pos, dtype=float)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / count
        freq = np.bincount(idx, weights=y, minlength=n_bins) / count
    return {"edges": edges.tolist(), "count": count.tolist(),
            "mean_predicted": [None if np.isnan(v) else float(v) for v in mean_p],
            "observed": [None if np.isnan(v) else float(v) for v in freq]}


def expected_calibration_error(y_true: np.ndarray, prob_pos: np.ndarray, n_bins: int = 10) -> float:
    b = reliability_bins(y_true, prob_pos, n_bins)
    n = sum(b["count"])
    return float(sum(c * abs(m - o) for c, m, o in zip(b["count"], b["mean_predicted"], b["observed"]) if c) / n)


def fit_temperature(probs: np.ndarray, y_true: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T > 0 minimising the validation NLL of the recalibrated probabilities.

    Works from probabilities: ``log p`` differs from the logits by a per-row constant, which the softmax
    removes, so ``softmax(log p / T) == softmax(logits / T)``.
    """
    logp = np.log(np.clip(np.asarray(probs, dtype=float), 1e-12, 1.0))
    y = np.asarray(y_true).astype(int)

    def nll(t: float) -> float:
        return float(-log_softmax(logp / t, axis=1)[np.arange(len(y)), y].mean())

    return float(minimize_scalar(nll, bounds=bounds, method="bounded").x)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities recalibrated by ``temperature`` (see :func:`fit_temperature`)."""
    logp = np.log(np.clip(np.asarray(probs, dtype=float), 1e-12, 1.0))
    return softmax(logp / temperature, axis=1)
