import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score

from medclass.evaluation import binary_counts, classification_metrics, medmnist_acc, medmnist_auc
from medclass.evaluation.kinds import medmnist_auc_se
from medclass.evaluation.metrics import auc_standard_error


def _medmnist_reference_auc(y_true, y_score, task):
    # A literal transcription of medmnist/evaluator.py getAUC (v3.0.2), to pin our definition to theirs.
    y_true, y_score = y_true.squeeze(), y_score.squeeze()
    if task == "multilabel":
        return np.mean([roc_auc_score(y_true[:, i], y_score[:, i]) for i in range(y_score.shape[1])])
    if task == "binary":
        return roc_auc_score(y_true, y_score[:, -1])
    return np.mean([roc_auc_score((y_true == i).astype(float), y_score[:, i]) for i in range(y_score.shape[1])])


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 200
    y = rng.integers(0, 2, n)
    p1 = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
    proba = np.stack([1 - p1, p1], 1)
    m = classification_metrics(y, proba, "binary", ("neg", "pos"))
    pred = (p1 > 0.5).astype(int)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p1), abs=1e-12)
    assert m["auc"] == pytest.approx(_medmnist_reference_auc(y, proba, "binary"), abs=1e-12)
    assert m["acc"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert m["sensitivity"] == pytest.approx(recall_score(y, pred), abs=1e-12)
    assert m["specificity"] == pytest.approx(recall_score(1 - y, 1 - pred), abs=1e-12)
    assert m["ppv"] == pytest.approx(precision_score(y, pred), abs=1e-12)
    assert m["npv"] == pytest.approx(precision_score(1 - y, 1 - pred), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist() and m["n"] == n


def test_positive_label_swaps_sensitivity_and_specificity_only():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    p1 = rng.random(100)
    proba = np.stack([1 - p1, p1], 1)
    a = classification_metrics(y, proba, "binary", ("malignant", "benign"), positive_label=1)
    b = classification_metrics(y, proba, "binary", ("malignant", "benign"), positive_label=0)
    assert b["positive_class"] == "malignant"
    assert a["sensitivity"] == b["specificity"] and a["ppv"] == b["npv"] and a["auc"] == b["auc"]


def test_threshold_is_strict_like_medmnist():
    y = np.array([0, 1])
    proba = np.array([[0.5, 0.5], [0.4, 0.6]])
    assert medmnist_acc(y, proba, "binary") == 1.0  # 0.5 is not > 0.5


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_agrees_with_medmnist_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = classification_metrics(y, proba, "multiclass", tuple("abcd"))
    assert m["auc"] == pytest.approx(_medmnist_reference_auc(y, proba, "multiclass"), abs=1e-12)
    assert m["acc"] == pytest.approx(accuracy_score(y, proba.argmax(1)), abs=1e-12)
    assert m["sensitivity"] == pytest.approx(recall_score(y, proba.argmax(1), average="macro"), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"), abs=1e-12)
    # relabelling the classes (permuting columns and labels) changes nothing
    perm = np.array([2, 0, 3, 1])
    m2 = classification_metrics(perm[y], proba[:, np.argsort(perm)], "multiclass", tuple("abcd"))
    for k in ("auc", "acc", "sensitivity", "specificity", "f1"):
        assert m2[k] == pytest.approx(m[k], abs=1e-12)


def test_multilabel():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (150, 3))
    s = np.clip(y * 0.4 + rng.random((150, 3)) * 0.6, 0, 1)
    m = classification_metrics(y, s, "multilabel", ("a", "b", "c"))
    assert m["auc"] == pytest.approx(_medmnist_reference_auc(y, s, "multilabel"), abs=1e-12)
    assert m["acc"] == pytest.approx(np.mean([accuracy_score(y[:, i], s[:, i] > 0.5) for i in range(3)]), abs=1e-12)
    assert set(m["per_label"]) == {"a", "b", "c"}


def test_degenerate_cases_are_nan_not_crash():
    y = np.zeros(10, int)
    proba = np.tile([0.8, 0.2], (10, 1))
    with pytest.warns(UserWarning, match="Only one class"):
        m = classification_metrics(y, proba, "binary", ("a", "b"))
    assert np.isnan(m["auc"]) and np.isnan(m["sensitivity"]) and m["specificity"] == 1.0
    assert np.isnan(m["ppv"]) and m["npv"] == 1.0 and m["acc"] == 1.0
    c = binary_counts(np.array([1, 1]), np.array([1, 1]))
    assert c["sensitivity"] == 1.0 and np.isnan(c["specificity"])
    perfect = classification_metrics(np.array([0, 1, 0, 1]), np.array([[.9, .1], [.2, .8], [.7, .3], [0, 1]]),
                                     "binary", ("a", "b"))
    assert perfect["auc"] == 1.0 and perfect["acc"] == 1.0
    ties = medmnist_auc(np.array([0, 1, 0, 1]), np.full((4, 2), 0.5), "binary")
    assert ties == 0.5


def test_auc_standard_error_matches_hanley_mcneil_and_the_bootstrap():
    # eq. 2 of Hanley & McNeil 1982 worked by hand for AUC 0.9, 50 positives, 50 negatives: Q1 = 0.9 / 1.1,
    # Q2 = 1.62 / 1.9, SE = sqrt((0.09 + 49 (Q1 - 0.81) + 49 (Q2 - 0.81)) / 2500) = 0.0321
    assert auc_standard_error(0.9, 50, 50) == pytest.approx(0.0321, abs=1e-4)
    assert math.isnan(auc_standard_error(0.9, 0, 50)) and auc_standard_error(1.0, 10, 10) == 0.0
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(150, int), np.zeros(350, int)]
    s = rng.normal(size=500) + 1.6 * y
    se = medmnist_auc_se(y, s, "binary")
    boot = []
    for _ in range(400):
        i = rng.integers(0, 500, 500)
        boot.append(roc_auc_score(y[i], s[i]))
    assert se == pytest.approx(np.std(boot), rel=0.3)  # eq. 2 assumes exponential scores: approximate here
    # a mean over k classes: sqrt(sum se^2) / k; a class with no positives is left out
    probs = np.c_[1 - (s > 0), s > 0, np.zeros(500)].astype(float) + rng.uniform(0, 0.1, (500, 3))
    labels = y.copy()
    per = [medmnist_auc_se((labels == c).astype(int), probs[:, c], "binary") for c in (0, 1)]
    assert medmnist_auc_se(labels, probs, "multiclass") == pytest.approx(math.sqrt(sum(e * e for e in per)) / 2)
