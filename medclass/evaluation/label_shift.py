"""Label-shift adaptation: re-weight a classifier's probabilities to the class balance of a new set of images.

When a test set (another hospital, another season) holds the same kinds of images in another class balance,
p(x | y) is unchanged and only the priors p(y) move; the Bayes-optimal posteriors are then the model's
posteriors re-weighted by the ratio of new to old priors. The new priors are estimated from the unlabelled
images themselves, by one of two published estimators (neither is in scikit-learn, SciPy or MONAI, hence written
here):

- ``em``: Saerens, Latinne & Decaestecker (2002), "Adjusting the outputs of a classifier to new a priori
  probabilities": expectation-maximisation over the posteriors; needs calibrated probabilities.
- ``bbse``: black-box shift estimation, Lipton, Wang & Smola (2018): solves ``C w = mu`` with ``C`` the joint
  confusion matrix (predicted x true) on validation and ``mu`` the predicted-class shares on the new images;
  needs only an invertible confusion matrix, not calibration.

The source priors are those the model's probabilities imply on the validation split (the mean predicted
probability per class), not the training counts: a model trained with class-balanced weights behaves as if the
classes were balanced. Off by default; `medclass evaluate --label-shift em|bbse` reports the adapted numbers
beside, never instead of, the headline ones.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["METHODS", "adapt_probabilities", "bbse_priors", "em_priors", "estimate_priors"]

METHODS = ("none", "em", "bbse")


def em_priors(proba: np.ndarray, source: np.ndarray, tol: float = 1e-8, max_iter: int = 1000) -> tuple[np.ndarray, int]:
    """Saerens et al.'s EM estimate of the class priors of the images behind ``proba`` ``(n, K)``; return the
    priors and the iterations used."""
    proba, source = np.asarray(proba, dtype=float), np.asarray(source, dtype=float)
    prior = source.copy()
    for it in range(1, max_iter + 1):
        post = adapt_probabilities(proba, source, prior)
        new = post.mean(axis=0)
        if np.abs(new - prior).max() < tol:
            return new, it
        prior = new
    return prior, max_iter


def bbse_priors(y_val: np.ndarray, proba_val: np.ndarray, proba_new: np.ndarray) -> np.ndarray:
    """Lipton et al.'s black-box shift estimate of the class priors of the images behind ``proba_new``."""
    k = proba_val.shape[1]
    y_val = np.asarray(y_val).astype(int)
    pred_val, pred_new = np.asarray(proba_val).argmax(1), np.asarray(proba_new).argmax(1)
    joint = np.zeros((k, k))
    np.add.at(joint, (pred_val, y_val), 1.0)
    joint /= len(y_val)
    if np.linalg.matrix_rank(joint) < k:
        raise ConfigError("Black-box shift estimation needs a validation confusion matrix of full rank (every class "
                          "predicted and present on validation); use --label-shift em instead.")
    mu = np.bincount(pred_new, minlength=k) / len(pred_new)
    weights = np.clip(np.linalg.solve(joint, mu), 0.0, None)  # w_j = p_new(y=j) / p_val(y=j)
    prior = weights * np.bincount(y_val, minlength=k) / len(y_val)
    if prior.sum() <= 0:
        raise ConfigError("Black-box shift estimation found no consistent class balance for these images (every "
                          "estimated weight was negative); use --label-shift em instead.")
    return prior / prior.sum()


def adapt_probabilities(proba: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Posteriors re-weighted from ``source`` to ``target`` priors (each row renormalised)."""
    w = np.asarray(target, dtype=float) / np.clip(np.asarray(source, dtype=float), 1e-12, None)
    out = np.asarray(proba, dtype=float) * w
    return out / np.clip(out.sum(axis=1, keepdims=True), 1e-12, None)


def estimate_priors(method: str, proba: np.ndarray, val: tuple[np.ndarray, np.ndarray]) -> dict:
    """The source priors (mean validation probability), the new priors by ``method`` and the adapted
    probabilities, as one JSON-ready dict (``adapted`` stays an array)."""
    if method not in METHODS[1:]:
        raise ConfigError(f"Unknown label-shift method {method!r}; choose one of {', '.join(METHODS[1:])}.")
    y_val, p_val = np.asarray(val[0]), np.asarray(val[1], dtype=float)
    source = p_val.mean(axis=0)
    info: dict = {"method": method, "source": "mean predicted probability on the validation split"}
    if method == "em":
        target, iters = em_priors(proba, source)
        info["iterations"] = iters
    else:
        target = bbse_priors(y_val, p_val, proba)
    info.update({"source_priors": [float(v) for v in source], "estimated_priors": [float(v) for v in target],
                 "adapted": adapt_probabilities(proba, source, target)})
    return info
