"""Classical baselines: HOG+LBP features, deep features of a run, and the validation-only choice of C."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medclass.data.datasets import load_npz
from medclass.errors import ConfigError, DataError
from medclass.runs import baselines
from medclass.runs.baselines import deep_features, fit_classifier, handcrafted_features
from tests.conftest import fast_config, make_npz


@pytest.fixture
def toy(tmp_path):
    return load_npz(make_npz(tmp_path / "toy.npz", n=(80, 40, 40)))


def test_handcrafted_feature_layout():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    X = handcrafted_features(grey)
    # HOG: 4x4 cells of 7 px, 3x3 blocks of 2x2 cells x 9 orientations = 324; uniform LBP P=8: 10 codes
    assert X.shape == (3, 324 + 10) and X.dtype == np.float32
    assert np.allclose(X[:, 324:].sum(1), 1.0)  # the LBP part is a normalised histogram
    assert np.array_equal(handcrafted_features(grey[..., None]), X)  # (N, H, W, 1) is the same images


def test_colour_is_reduced_to_luminance():
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (2, 16, 16), dtype=np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)  # a grey picture stored as RGB
    assert np.allclose(handcrafted_features(rgb), handcrafted_features(grey), atol=1e-6)


@pytest.mark.parametrize("images, match", [(np.zeros((2, 8, 8, 2), np.uint8), "shaped"),
                                           (np.zeros((2, 6, 6), np.uint8), "too small"),
                                           (np.zeros((0, 28, 28), np.uint8), "no images")])
def test_bad_images_are_data_errors(images, match):
    with pytest.raises(DataError, match=match):
        handcrafted_features(images)


@pytest.mark.parametrize("classifier", ["svm", "logistic"])
def test_handcrafted_svm_beats_chance(toy, classifier):
    X = {s: handcrafted_features(toy.split(s).images) for s in ("train", "val", "test")}
    fit = fit_classifier(X["train"], toy.split("train").labels, X["val"], toy.split("val").labels, X["test"],
                         n_classes=2, classifier=classifier)
    assert fit.test_probs.shape == (40, 2) and np.allclose(fit.test_probs.sum(1), 1)
    assert roc_auc_score(toy.split("test").labels, fit.test_probs[:, 1]) > 0.8


def test_C_is_chosen_on_validation_without_test_labels(toy, monkeypatch):
    """Every AUC that steers the choice is computed on the validation labels; C is their argmax."""
    X = {s: handcrafted_features(toy.split(s).images) for s in ("train", "val", "test")}
    y_val = toy.split("val").labels
    seen = []
    real_auc = baselines._auc
    monkeypatch.setattr(baselines, "_auc", lambda y, p: seen.append(y) or real_auc(y, p))
    Cs = (0.001, 0.1, 10.0)
    fit = fit_classifier(X["train"], toy.split("train").labels, X["val"], y_val, X["test"], Cs=Cs)
    assert len(seen) == len(Cs) and all(y is y_val for y in seen)
    assert set(fit.val_auc) == set(Cs)
    assert fit.val_auc[fit.C] == max(fit.val_auc.values())
    assert fit.C == min(c for c in Cs if fit.val_auc[c] == fit.val_auc[fit.C])  # ties: the smaller C
    assert roc_auc_score(y_val, fit.val_probs[:, 1]) == pytest.approx(fit.val_auc[fit.C])


def test_fit_classifier_rejects_bad_input(toy):
    X = np.zeros((4, 3))
    with pytest.raises(ConfigError, match="classifier must be one of"):
        fit_classifier(X, np.array([0, 1, 0, 1]), X, np.array([0, 1, 0, 1]), X, classifier="forest")
    with pytest.raises(DataError, match="one class only"):
        fit_classifier(X, np.zeros(4, int), X, np.array([0, 1, 0, 1]), X)


def test_deep_features_of_a_run(tmp_path, toy):
    from medclass.runs.train import train

    run = train(fast_config(make_npz(tmp_path / "src.npz", seed=3), epochs=1), tmp_path / "run")
    images = toy.split("val").images
    F = deep_features(run.path, images)
    assert F.shape[0] == len(images) and F.ndim == 2 and np.isfinite(F).all()
    assert np.array_equal(deep_features(run.path, images[:5]), F[:5])  # batching does not change the features
    with pytest.raises(DataError, match="1-channel"):
        deep_features(run.path, np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(ConfigError, match="no best checkpoint"):
        deep_features(tmp_path, images)
