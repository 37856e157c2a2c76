"""Every metric against scikit-learn (or the textbook formula) on random inputs, degenerate cases included."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from medclass.evaluation.metrics import (
    binary_metrics,
    multiclass_metrics,
    multilabel_metrics,
    ordinal_metrics,
    regression_metrics,
)

TOL = 1e-9


def _proba(rng, y, k, signal=1.0):
    z = rng.normal(size=(len(y), k)) + signal * np.eye(k)[y]
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", ["random", "ties", "perfect"])
def test_binary(seed, kind):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 150)
    s = {"random": rng.random(150), "ties": np.round(rng.random(150) + 0.3 * y, 1), "perfect": y * 0.5 + 0.25}[kind]
    m = binary_metrics(y, s, 0.5)
    pred = (s >= 0.5).astype(int)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s), abs=TOL)
    assert m["average_precision"] == pytest.approx(average_precision_score(y, s), abs=TOL)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=TOL)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=TOL)
    assert m["sensitivity"] == pytest.approx(recall_score(y, pred), abs=TOL)
    assert m["specificity"] == pytest.approx(recall_score(1 - y, 1 - pred), abs=TOL)
    assert m["ppv"] == pytest.approx(precision_score(y, pred, zero_division=np.nan), abs=TOL, nan_ok=True)
    assert m["npv"] == pytest.approx(precision_score(1 - y, 1 - pred, zero_division=np.nan), abs=TOL, nan_ok=True)
    assert m["f1"] == pytest.approx(f1_score(y, pred), abs=TOL)
    if kind == "perfect":
        assert m["auc"] == 1.0 and m["accuracy"] == 1.0


def test_binary_all_one_class():
    with pytest.warns(UserWarning, match="Only one class"):
        m = binary_metrics(np.ones(20, int), np.linspace(0, 1, 20))
    assert np.isnan(m["auc"]) and np.isnan(m["specificity"]) and np.isnan(m["balanced_accuracy"])
    assert m["sensitivity"] == pytest.approx(recall_score(np.ones(20), np.linspace(0, 1, 20) >= 0.5))


@pytest.mark.parametrize("seed", range(4))
def test_multiclass_and_relabelling(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 400)
    p = _proba(rng, y, 5)
    m = multiclass_metrics(y, p, tuple("abcde"))
    pred = p.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=TOL)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=TOL)
    assert m["macro"]["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=TOL)
    assert m["micro"]["auc"] == pytest.approx(roc_auc_score(np.eye(5)[y], p, average="micro"), abs=TOL)
    assert m["macro"]["f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=TOL)
    assert m["micro"]["f1"] == pytest.approx(f1_score(y, pred, average="micro"), abs=TOL)
    assert m["macro"]["ppv"] == pytest.approx(precision_score(y, pred, average="macro"), abs=TOL)
    assert m["macro"]["average_precision"] == pytest.approx(
        average_precision_score(np.eye(5)[y], p, average="macro"), abs=TOL)
    for i, name in enumerate("abcde"):
        assert m["per_class"][name]["auc"] == pytest.approx(roc_auc_score(y == i, p[:, i]), abs=TOL)
    perm = rng.permutation(5)
    m2 = multiclass_metrics(perm[y], p[:, np.argsort(perm)], tuple("abcde"))
    for k in ("auc", "f1", "sensitivity", "specificity", "ppv", "npv"):
        assert m2["macro"][k] == pytest.approx(m["macro"][k], abs=TOL)


def test_multilabel_masks_missing_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (300, 4))
    p = np.clip(0.3 * y + 0.7 * rng.random((300, 4)), 0, 1)
    y_missing = y.copy()
    y_missing[rng.random((300, 4)) < 0.2] = -1
    m = multilabel_metrics(y_missing, p, tuple("abcd"))
    for i, name in enumerate("abcd"):
        known = y_missing[:, i] >= 0
        assert m["per_label"][name]["auc"] == pytest.approx(roc_auc_score(y[known, i], p[known, i]), abs=TOL)
        assert m["per_label"][name]["n_missing"] == int((~known).sum())
    assert m["mean"]["auc"] == pytest.approx(np.mean([m["per_label"][n]["auc"] for n in "abcd"]), abs=TOL)


def test_ordinal():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    p = _proba(rng, y, 5, signal=1.5)
    m = ordinal_metrics(y, p, tuple("01234"))
    g = p.argmax(1)
    assert m["quadratic_weighted_kappa"] == pytest.approx(cohen_kappa_score(y, g, weights="quadratic"), abs=TOL)
    assert m["mean_absolute_grade_error"] == pytest.approx(np.mean(np.abs(y - g)), abs=TOL)
    assert m["mean_absolute_error_expected_grade"] == pytest.approx(np.mean(np.abs(y - p @ np.arange(5))), abs=TOL)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, g), abs=TOL)
    perfect = ordinal_metrics(y, np.eye(5)[y], tuple("01234"))
    assert perfect["quadratic_weighted_kappa"] == 1.0 and perfect["mean_absolute_grade_error"] == 0.0


def test_regression():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    f = y + rng.normal(scale=0.3, size=200)
    m = regression_metrics(y, f)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, f), abs=TOL)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - f) ** 2)), abs=TOL)
    assert m["r2"] == pytest.approx(r2_score(y, f), abs=TOL)
    assert regression_metrics(y, y)["r2"] == 1.0
