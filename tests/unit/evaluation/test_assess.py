"""assess: the warnings that say when a split is too small, or a class too rare, for its intervals to mean much."""

import numpy as np
import pytest

from medclass.evaluation.assess import RARE_CLASS, SMALL_SPLIT, UNDEFINED_SHARE, AssessConfig, assess


def _binary(y, seed=0):
    p = np.clip(0.4 * y + 0.6 * np.random.default_rng(seed).random(len(y)), 0, 1)
    return np.stack([1 - p, p], 1)


def test_two_images_warn_of_a_small_split_rare_classes_and_undefined_replicates():
    r = assess(np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]]), "binary", ("benign", "malignant"),
               cfg=AssessConfig(n_boot=2000))
    auc = r["intervals"]["auc"]
    assert (auc["estimate"], auc["low"], auc["high"]) == (1.0, 1.0, 1.0)  # looks perfect and certain ...
    assert auc["n_undefined"] == 967 and auc["undefined_share"] == pytest.approx(967 / 2000)  # ... and is not
    assert [w["code"] for w in r["warnings"]] == ["small-split", "rare-class", "undefined-replicates"]
    small, rare, undefined = (w["message"] for w in r["warnings"])
    assert small.startswith("Only 2 images in this split") and f"at least {SMALL_SPLIT} images" in small
    assert f"Fewer than {RARE_CLASS} examples behind some numbers (class 'benign': 1; class 'malignant': 1)" in rare
    assert (f"could not be computed in more than {100 * UNDEFINED_SHARE:.0f}% of the 2000 bootstrap resamples "
            "(auc 48%, balanced_accuracy 48%") in undefined and "no image of a class" in undefined


def test_three_positives_warn_of_a_rare_class_only():
    y = np.r_[np.zeros(97, int), np.ones(3, int)]
    r = assess(y, _binary(y), "binary", ("benign", "malignant"), cfg=AssessConfig(n_boot=1000))
    assert [w["code"] for w in r["warnings"]] == ["rare-class"]
    assert "(class 'malignant': 3)" in r["warnings"][0]["message"]
    assert 0 < r["intervals"]["sensitivity"]["undefined_share"] <= UNDEFINED_SHARE  # 0.97**100: about 5%


def test_a_healthy_split_has_no_warning():
    y = np.random.default_rng(1).integers(0, 2, 200)
    r = assess(y, _binary(y), "binary", ("benign", "malignant"), val=(y, _binary(y, 1)), cfg=AssessConfig(n_boot=500))
    assert r["warnings"] == [] and len(r["operating_points"]) == 4
    assert all(iv["undefined_share"] == 0 for iv in r["intervals"].values())


def test_rare_labels_and_small_regression_splits_warn_too():
    y = np.zeros((60, 2), int)
    y[:40, 0] = 1
    y[:4, 1] = 1  # label b: 4 positives
    r = assess(y, np.full((60, 2), 0.5), "multilabel", ("a", "b"), cfg=AssessConfig(n_boot=200))
    assert "positives of label 'b': 4" in r["warnings"][0]["message"]
    v = np.arange(12.0)
    r = assess(v, (v + 1)[:, None], "regression", ("value",), cfg=AssessConfig(n_boot=200))
    assert [w["code"] for w in r["warnings"]] == ["small-split"]


def test_one_class_validation_gives_a_warning_not_operating_points():
    y = np.random.default_rng(2).integers(0, 2, 100)
    r = assess(y, _binary(y), "binary", ("benign", "malignant"), val=(np.zeros(50, int), _binary(np.zeros(50))),
               cfg=AssessConfig(n_boot=200))
    assert "operating_points" not in r
    assert r["warnings"] == [{"code": "no-operating-points", "message": (
        "Operating points were not chosen: the validation predictions hold only one class, so no threshold can be "
        "tuned on them. Give validation predictions with both classes.")}]


def test_multitask_heads_carry_their_warnings_up():
    y = np.stack([np.r_[np.zeros(50, int), np.ones(50, int)], np.r_[np.zeros(95, int), np.ones(5, int)]], 1)
    p = np.concatenate([_binary(y[:, 0]), _binary(y[:, 1], 1)], 1)
    r = assess(y, p, "multitask", ("g:0", "g:1", "h:0", "h:1"), heads=[("g", ("0", "1")), ("h", ("0", "1"))],
               cfg=AssessConfig(n_boot=200))
    assert [w["message"][:24] for w in r["warnings"]] == ["Head 'h': Fewer than 10 "]
