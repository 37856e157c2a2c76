"""Reliability bins: equal-width and equal-count (quantile), and the ECE computed over either."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from medclass.evaluation.calibration import bins_ece, expected_calibration_error, reliability_bins


def _skewed(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities crowded near 0 and 1, as a trained network gives them."""
    rng = np.random.default_rng(seed)
    p = np.clip(np.concatenate([rng.beta(0.3, 8, n - n // 4), rng.beta(8, 0.3, n // 4)]), 0, 1)
    return (rng.random(n) < p).astype(int), p


def test_quantile_bins_hold_equal_counts_where_uniform_bins_are_empty():
    y, p = _skewed()
    uniform = reliability_bins(y, p, 10)
    quantile = reliability_bins(y, p, 10, strategy="quantile")
    assert min(uniform["count"]) < 5  # the middle of [0, 1] is nearly empty
    assert sum(quantile["count"]) == len(p) and max(quantile["count"]) - min(quantile["count"]) <= 1
    edges = np.asarray(quantile["edges"])
    assert edges[0] == 0 and edges[-1] == 1 and np.all(np.diff(edges) >= 0)
    for k, m in enumerate(quantile["mean_predicted"]):
        assert edges[k] <= m <= edges[k + 1]


def test_quantile_bins_agree_with_sklearn_on_distinct_probabilities():
    rng = np.random.default_rng(1)
    p = rng.random(200)
    y = (rng.random(200) < p).astype(int)
    bins = reliability_bins(y, p, 10, strategy="quantile")
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="quantile")
    assert np.allclose(bins["observed"], prob_true) and np.allclose(bins["mean_predicted"], prob_pred)


def test_ece_over_either_binning():
    y, p = _skewed(seed=2)
    for strategy in ("uniform", "quantile"):
        b = reliability_bins(y, p, 8, strategy)
        manual = sum(c * abs(m - o) for c, m, o in zip(b["count"], b["mean_predicted"], b["observed"]) if c) / len(p)
        assert expected_calibration_error(y, p, 8, strategy) == pytest.approx(manual) == pytest.approx(bins_ece(b))
        # one bin: the gap between the mean probability and the prevalence, whatever the strategy
        assert expected_calibration_error(y, p, 1, strategy) == pytest.approx(abs(p.mean() - y.mean()))


def test_quantile_bins_with_ties_and_few_examples():
    y = np.array([0, 0, 1, 0, 1])
    p = np.array([0.0, 0.0, 0.0, 0.5, 0.9])
    b = reliability_bins(y, p, 10, strategy="quantile")  # more bins than examples: one example each
    assert b["count"] == [1, 1, 1, 1, 1] and b["observed"] == [0.0, 0.0, 1.0, 0.0, 1.0]
    assert b["edges"][:4] == [0.0, 0.0, 0.0, 0.25]


def test_bad_binning_arguments_are_named():
    with pytest.raises(ValueError, match="'strategy' parameter of reliability_bins must be one of"):
        reliability_bins([0, 1], [0.2, 0.8], strategy="equal-count")
    with pytest.raises(ValueError, match="'n_bins' parameter .* at least 1. Got 0"):
        reliability_bins([0, 1], [0.2, 0.8], n_bins=0)
