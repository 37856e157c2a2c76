"""Classical baselines: hand-crafted (HOG + LBP) and deep features, each fed to a scikit-learn SVM.

Two recipes that every deep-learning result in medical imaging should be compared with:

- **Hand-crafted features.** :func:`handcrafted_features` describes each image by a histogram of oriented
  gradients (``skimage.feature.hog``: local edge directions on a coarse grid) concatenated with the
  histogram of its uniform local binary patterns (``skimage.feature.local_binary_pattern``, P=8, R=1:
  the distribution of micro-textures over the whole image). Colour images are reduced to luminance first.
- **Deep features** (Bar et al., "Chest pathology detection using deep learning with non-medical training",
  ISBI 2015): :func:`deep_features` runs a trained network (a medclass run folder) over the images with
  that run's own normalisation and returns its pooled pre-logits activations
  (:func:`medclass.models.features.extract_features`).

Either array goes to :func:`fit_classifier`: ``Pipeline(StandardScaler, CalibratedClassifierCV(SVC))`` (an
RBF SVM with Platt-scaled probabilities; ``SVC(probability=True)`` is deprecated) or a logistic regression.
Its one hyper-parameter, ``C``, is chosen from a small grid by the validation AUC of a model fitted on the
training split; that fitted model then predicts the test split. The function is given the test *features*
only, never the test labels, so nothing about the test split can steer a choice: the probabilities it
returns are scored afterwards, once, by :func:`medclass.evaluation.assess.assess`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from skimage.color import rgb2gray
from skimage.feature import hog, local_binary_pattern
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..errors import ConfigError, DataError
from ..models.features import extract_features
from ..run_folder import RunFolder
from .predict import load_run

__all__ = ["handcrafted_features", "deep_features", "fit_classifier", "BaselineResult", "CLASSIFIERS", "C_GRID"]

log = logging.getLogger(__name__)

CLASSIFIERS = ("svm", "logistic")
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _grey(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` grey images from uint8 ``(N, H, W)`` or ``(N, H, W, C)``; colour -> luminance."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        return images[..., 0]
    if images.ndim == 4 and images.shape[-1] == 3:
        return np.round(rgb2gray(images) * 255).astype(np.uint8)  # rgb2gray scales uint8 input to [0, 1]
    if images.ndim == 3:
        return images
    raise DataError(f"Hand-crafted features need uint8 images shaped (N, H, W), (N, H, W, 1) or (N, H, W, 3). "
                    f"Got an array of shape {images.shape}.")


def handcrafted_features(images: np.ndarray, *, cells: int = 4, orientations: int = 9, lbp_points: int = 8,
                         lbp_radius: float = 1.0) -> np.ndarray:
    """HOG and uniform-LBP histogram of every image, concatenated: ``(N, n_features)`` float32.

    Args:
        images: uint8 ``(N, H, W[, C])``; colour is reduced to luminance.
        cells: HOG cells along each side of the image (cell side = image side // cells; blocks of 2x2 cells,
            L2-Hys normalised). 4 cells on a 28-pixel image is 7-pixel cells, 324 HOG values.
        orientations: HOG orientation bins.
        lbp_points, lbp_radius: the LBP neighbourhood; with ``method="uniform"`` there are ``P + 2`` codes, whose
            normalised histogram over the image is appended.
    """
    grey = _grey(images)
    if len(grey) == 0:
        raise DataError("Hand-crafted features got no images (an empty split).")
    side = min(grey.shape[1:])
    cell = side // cells
    if cell < 2:
        raise DataError(f"Images of {grey.shape[1]}x{grey.shape[2]} pixels are too small for {cells} HOG cells per "
                        f"side (cells of {cell} pixels). Use fewer cells.")
    n_codes = lbp_points + 2
    out = []
    for img in grey:
        h = hog(img, orientations=orientations, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                block_norm="L2-Hys", feature_vector=True)
        codes = local_binary_pattern(img, lbp_points, lbp_radius, method="uniform")
        hist = np.bincount(codes.astype(np.int64).ravel(), minlength=n_codes)[:n_codes] / codes.size
        out.append(np.concatenate([h, hist]))
    return np.asarray(out, dtype=np.float32)


def deep_features(run_dir: str | os.PathLike, images: np.ndarray, *, device: str = "cpu", batch_size: int = 256,
                  layer: str | None = None) -> np.ndarray:
    """Pooled activations ``(N, n_features)`` of the best checkpoint of run ``run_dir`` on ``images``.

    The images (uint8 ``(N, H, W, C)``) are normalised exactly as that run normalised its own input
    (the normalisation stored with the checkpoint), so a network trained on one dataset can describe another.

    Args:
        run_dir: a medclass run folder (its ``checkpoints/best.safetensors``).
        images: uint8 ``(N, H, W, C)``, with the channel count the run was trained on.
        device: where the network runs.
        batch_size: images per forward pass.
        layer: a module name for intermediate features; ``None``: the pre-logits features.
    """
    folder = RunFolder(run_dir)
    if not folder.best_weights.is_file():
        raise ConfigError(f"'{run_dir}' has no best checkpoint ('{folder.best_weights}'). Give the --out folder "
                          f"of a finished training run.")
    model = load_run(folder.path, device=device)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] != model.in_chans_:
        raise DataError(f"The run '{run_dir}' takes {model.in_chans_}-channel images, but the images given are "
                        f"shaped {images.shape} (N, H, W, C). Use a source run trained on images with the same "
                        f"number of channels.")
    batches = (model.to_tensor(images[i:i + batch_size]) for i in range(0, len(images), batch_size))
    return extract_features(model.model, batches, layer=layer)


@dataclass
class BaselineResult:
    """What :func:`fit_classifier` chose and predicted. ``val_probs`` / ``test_probs``: ``(n, n_classes)``."""

    val_probs: np.ndarray
    test_probs: np.ndarray
    C: float
    val_auc: dict[float, float] = field(default_factory=dict)  # validation AUC of every C tried
    classifier: str = "svm"


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    if p.shape[1] == 2:
        return float(roc_auc_score(y, p[:, 1]))
    present = np.unique(y)
    q = p[:, present] / np.clip(p[:, present].sum(1, keepdims=True), 1e-12, None)  # sklearn needs rows summing to 1
    return float(roc_auc_score(y, q, multi_class="ovr", labels=present))


def _full_proba(clf, X: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` with one column per class 0..n_classes-1 (a class absent from train gets 0)."""
    p = clf.predict_proba(X)
    out = np.zeros((len(X), n_classes))
    out[:, clf.classes_.astype(int)] = p
    return out


def _make(classifier: str, C: float, cv):
    if classifier == "svm":
        # Platt scaling fitted by internal cross-validation on train (SVC(probability=True) is deprecated)
        est = CalibratedClassifierCV(SVC(C=C, kernel="rbf"), method="sigmoid", cv=cv, ensemble=False)
    else:
        est = LogisticRegression(C=C, max_iter=2000)
    return make_pipeline(StandardScaler(), est)


def fit_classifier(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                   X_test: np.ndarray, *, n_classes: int | None = None, classifier: str = "svm",
                   Cs: Sequence[float] = C_GRID, seed: int = 0) -> BaselineResult:
    """Fit one scikit-learn classifier per ``C`` on train, keep the best by validation AUC, predict val and test.

    Only the test *features* come in: the choice of ``C`` sees the training and validation labels alone.

    Args:
        X_train, y_train: training features ``(n, d)`` and integer labels ``(n,)``.
        X_val, y_val: validation features and labels: ``C`` is chosen here (ties: the smaller ``C``).
        X_test: test features, predicted once with the chosen model.
        n_classes: number of classes (default: ``max label + 1``); probabilities get one column per class.
        classifier: ``svm`` (``StandardScaler`` + RBF ``SVC``, Platt-calibrated by ``CalibratedClassifierCV`` with
            up to 5 stratified folds of train) or ``logistic``
            (``StandardScaler`` + ``LogisticRegression``).
        Cs: the grid of inverse regularisation strengths.
        seed: seed of the SVM's calibration folds.
    """
    if classifier not in CLASSIFIERS:
        raise ConfigError(f"classifier must be one of {', '.join(CLASSIFIERS)}. Got {classifier!r} instead.")
    if not Cs:
        raise ConfigError("Cs must hold at least one value of C.")
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    if y_train.ndim != 1:
        raise ConfigError(f"Classical baselines handle binary and multi-class labels (n,), not multi-label "
                          f"{y_train.shape}.")
    if len(np.unique(y_train)) < 2:
        raise DataError(f"The training split holds one class only ({np.unique(y_train).tolist()}); a classifier "
                        f"needs at least two.")
    n_classes = int(n_classes or max(y_train.max(), y_val.max()) + 1)
    folds = int(min(5, np.bincount(y_train).clip(min=1)[np.unique(y_train)].min()))
    if folds < 2:
        raise DataError(f"A class has a single training example (class counts {np.bincount(y_train).tolist()}); "
                        f"calibrating the SVM's probabilities needs at least two per class.")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    best, best_auc, scores = None, -np.inf, {}
    for C in Cs:
        clf = _make(classifier, float(C), cv).fit(X_train, y_train)
        auc = _auc(y_val, _full_proba(clf, X_val, n_classes))
        scores[float(C)] = auc
        log.info("%s C=%g: val AUC %.4f", classifier, C, auc)
        if best is None or auc > best_auc:  # strict: ties keep the smaller (more regularised) C
            best, best_auc, best_C = clf, auc, float(C)
    return BaselineResult(val_probs=_full_proba(best, X_val, n_classes),
                          test_probs=_full_proba(best, X_test, n_classes), C=best_C, val_auc=scores,
                          classifier=classifier)
