import numpy as np
import pytest
from sklearn.metrics import roc_curve

from medclass.evaluation.assess import AssessConfig, assess
from medclass.evaluation.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from medclass.evaluation.thresholds import choose_operating_points


def _data(seed, n=400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=n))))
    return y, s


@pytest.mark.parametrize("seed", range(4))
def test_operating_points_meet_their_targets_on_validation(seed):
    y, s = _data(seed)
    ops = {o.name: o for o in choose_operating_points(y, s, 0.9, 0.9)}
    assert ops["default"].threshold == 0.5
    assert ops["high_sensitivity"].val_sensitivity >= 0.9 and ops["high_specificity"].val_specificity >= 0.9
    fpr, tpr, thr = roc_curve(y, s)
    assert ops["youden"].val_sensitivity + ops["youden"].val_specificity - 1 == pytest.approx(np.max(tpr - fpr))
    # the high-sensitivity point is the most specific one that keeps the target
    sens_ok = tpr >= 0.9
    assert ops["high_sensitivity"].val_specificity == pytest.approx(np.max(1 - fpr[sens_ok]))


def test_operating_points_are_frozen_on_validation_and_applied_to_test():
    yv, sv = _data(0)
    yt, st = _data(1)
    r = assess(yt, np.stack([1 - st, st], 1), "binary", ("neg", "pos"), val=(yv, np.stack([1 - sv, sv], 1)),
               cfg=AssessConfig(n_boot=200))
    chosen = {o.name: o.threshold for o in choose_operating_points(yv, sv)}
    for op in r["operating_points"]:
        assert op["threshold"] == chosen[op["name"]]
        pred = st >= op["threshold"]
        assert op["sensitivity"]["estimate"] == pytest.approx(pred[yt == 1].mean())
        assert op["specificity"]["estimate"] == pytest.approx((~pred[yt == 0]).mean())


def test_one_class_validation_is_a_clear_error():
    with pytest.raises(ValueError, match="both classes"):
        choose_operating_points(np.ones(10), np.linspace(0, 1, 10))


def test_calibration_numbers():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    assert brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))
    bins = reliability_bins(y, p, n_bins=2)
    assert bins["count"] == [3, 2]
    assert bins["mean_predicted"][0] == pytest.approx((0.1 + 0.4 + 0.35) / 3) and bins["observed"][0] == pytest.approx(1 / 3)
    ece = (3 * abs((0.85 / 3) - 1 / 3) + 2 * abs(0.85 - 1.0)) / 5
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(ece)


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 2, n)
    logit = (2 * y - 1) * 1.0 + rng.normal(size=n)  # calibrated logits: P(y=1|z) = sigmoid(2z)... then sharpened
    over = np.stack([-3 * logit, 3 * logit], 1)  # a model 3x too confident
    probs = np.exp(over) / np.exp(over).sum(1, keepdims=True)
    t = fit_temperature(probs, y)
    assert 2.0 < t < 4.5
    fixed = apply_temperature(probs, t)
    assert expected_calibration_error(y, fixed[:, 1]) < expected_calibration_error(y, probs[:, 1]) / 2
    assert np.allclose(fixed.sum(1), 1)


def test_subgroups_report_counts_intervals_and_small_warnings():
    rng = np.random.default_rng(0)
    y, s = _data(0, n=300)
    site = np.where(np.arange(300) < 280, "A", "B")  # site B: 20 images
    r = assess(y, np.stack([1 - s, s], 1), "binary", ("neg", "pos"), subgroups={"site": site},
               cfg=AssessConfig(n_boot=200))
    rows = {row["value"]: row for row in r["subgroups"]["site"]}
    assert rows["A"]["n"] == 280 and not rows["A"]["too_small"]
    assert rows["B"]["n"] == 20 and rows["B"]["too_small"] and "only 20 examples" in rows["B"]["warning"]
    assert rows["A"]["intervals"]["auc"]["low"] <= rows["A"]["metrics"]["auc"] <= rows["A"]["intervals"]["auc"]["high"]
    del rng
