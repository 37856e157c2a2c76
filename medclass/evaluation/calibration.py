"""Calibration: do predicted probabilities mean what they say?

- Brier score: mean squared difference between the probability and the outcome (Brier 1950).
- Expected calibration error (ECE): the bin-weighted mean gap between confidence and observed
  frequency over equal-width probability bins (Naeini et al. 2015; Guo et al. 2017), or over
  equal-count bins (Nixon et al. 2019, "adaptive calibration error").
- Reliability diagram data: per bin, mean predicted probability, observed frequency and count;
  scikit-learn's ``calibration_curve`` drops empty bins and counts, so the binning here keeps both.
  A trained network's probabilities crowd near 0 and 1, which leaves equal-width middle bins empty or
  holding a handful of images; equal-count (quantile) bins put the same number of images in each.
- Temperature scaling (Guo et al. 2017): one scalar T dividing the logits, fitted on validation by
  minimising the negative log-likelihood with SciPy's bounded scalar minimiser.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

__all__ = ["BIN_STRATEGIES", "brier_score", "expected_calibration_error", "bins_ece", "reliability_bins",
           "fit_temperature", "apply_temperature"]


def brier_score(y_true: np.ndarray, prob_pos: np.ndarray) -> float:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob_pos, dtype=float)
    return float(np.mean((p - y) ** 2))


BIN_STRATEGIES = ("uniform", "quantile")


def reliability_bins(y_true: np.ndarray, prob_pos: np.ndarray, n_bins: int = 10,
                     strategy: str = "uniform") -> dict[str, list]:
    """Bins of predicted probability: edges, count, mean probability and observed positive rate per bin.

    Args:
        y_true: 0/1 outcomes.
        prob_pos: predicted probability of the outcome.
        n_bins: number of bins (``quantile``: at most one per example).
        strategy: ``uniform``, equal-width bins on [0, 1] (an empty bin has count 0 and ``None`` means);
            ``quantile``, equal-count bins: the examples sorted by probability (ties in input order) and cut
            into ``n_bins`` groups whose sizes differ by at most one. Edges are then 0, the midpoints between
            neighbouring groups, and 1.

    Raises:
        ValueError: an unknown ``strategy``, ``n_bins`` below 1, or labels and probabilities of different lengths.
    """
    y = np.asarray(y_true, dtype=float).reshape(-1)
    p = np.asarray(prob_pos, dtype=float).reshape(-1)
    if strategy not in BIN_STRATEGIES:
        raise ValueError(f"The 'strategy' parameter of reliability_bins must be one of {BIN_STRATEGIES}. "
                         f"Got {strategy!r} instead.")
    if n_bins < 1:
        raise ValueError(f"The 'n_bins' parameter of reliability_bins must be at least 1. Got {n_bins!r} instead.")
    if len(y) != len(p):
        raise ValueError(f"reliability_bins: {len(y)} labels but {len(p)} probabilities.")
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
        idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    else:
        n_bins = max(1, min(n_bins, len(p)))
        order = np.argsort(p, kind="stable")
        idx = np.empty(len(p), dtype=int)
        groups = np.array_split(order, n_bins)
        for k, members in enumerate(groups):
            idx[members] = k
        inner = [(p[a[-1]] + p[b[0]]) / 2 for a, b in itertools.pairwise(groups)]
        edges = np.array([0.0, *inner, 1.0])
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / count
        freq = np.bincount(idx, weights=y, minlength=n_bins) / count
    return {"edges": edges.tolist(), "count": count.tolist(),
            "mean_predicted": [None if np.isnan(v) else float(v) for v in mean_p],
            "observed": [None if np.isnan(v) else float(v) for v in freq]}


def bins_ece(bins: dict[str, list]) -> float:
    """ECE of bins from :func:`reliability_bins`: the count-weighted mean gap |mean predicted - observed|."""
    n = sum(bins["count"])
    return float(sum(c * abs(m - o) for c, m, o in zip(bins["count"], bins["mean_predicted"], bins["observed"])
                     if c) / n)


def expected_calibration_error(y_true: np.ndarray, prob_pos: np.ndarray, n_bins: int = 10,
                               strategy: str = "uniform") -> float:
    """The count-weighted mean gap between predicted probability and observed frequency over ``n_bins`` bins
    (``strategy`` as in :func:`reliability_bins`)."""
    return bins_ece(reliability_bins(y_true, prob_pos, n_bins, strategy))


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
