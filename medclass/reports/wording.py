"""The report's plain words: class names as a reader expects them, and one sentence per statistical term.

Every number in the report is read by someone who may not be a statistician, so each term is explained
where it appears, in one sentence that uses the run's own class names. The display names only change
what the page shows; labels stored in the run folder stay as the dataset wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..evaluation.kinds import get_kind

__all__ = ["display_label", "display_labels", "metric_meaning", "TERMS", "OPERATING_POINT_NAMES",
           "operating_point_meaning", "low_threshold_note"]

# merged classes whose order reads better reversed (the benign finding first, as a radiologist says it)
_KNOWN_MERGES = {"normal, benign": "benign or normal"}


def _top_level_parts(name: str) -> list[str]:
    """``name`` split at ", " outside parentheses: "a, b" is two parts, "x (a, b and c)" one."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(name):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(name[start:i].strip())
            start = i + 1
    return [*parts, name[start:].strip()]


def display_label(name: str) -> str:
    """How a class name reads in the report.

    MedMNIST names a class merged from two findings by joining them with a comma (BreastMNIST's
    "normal, benign", TissueMNIST's "Collecting Duct, Connecting Tubule"), which reads like a list of two
    classes. The report says "benign or normal" instead; commas inside parentheses are left alone.

    Example:
        >>> display_label("normal, benign"), display_label("Collecting Duct, Connecting Tubule")
        ('benign or normal', 'Collecting Duct or Connecting Tubule')
    """
    name = str(name)
    if name in _KNOWN_MERGES:
        return _KNOWN_MERGES[name]
    parts = [p for p in _top_level_parts(name) if p]
    if len(parts) < 2:
        return name
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def display_labels(names: Sequence[str]) -> list[str]:
    return [display_label(n) for n in names]


# One sentence per term, {pos}/{neg} being the positive and negative class of a binary task.
TERMS = {
    "auc": "The probability that a randomly chosen {pos} image gets a higher {pos} score than a randomly chosen "
           "{neg} one: 0.5 is guessing, 1 is perfect; it does not depend on any threshold.",
    "auc_multi": "For each class, the probability that an image of that class scores higher for it than an image "
                 "of another class (0.5 is guessing, 1 is perfect), averaged over the classes.",
    "auc_multilabel": "For each label, the probability that an image with the finding scores higher for it than an "
                      "image without it (0.5 is guessing, 1 is perfect), averaged over the labels.",
    "average_precision": "The area under the precision-recall curve: PPV averaged over every threshold; guessing "
                         "scores the prevalence, {prevalence}.",
    "acc": "The share of images whose predicted class is the true one, {pos} called when its probability "
           "is above 0.5 (MedMNIST's rule, so the number compares with the benchmark).",
    "acc_multi": "The share of images whose most probable class is the true one.",
    "acc_multilabel": "The share of (image, label) pairs called correctly at a probability of 0.5, averaged over "
                      "the labels.",
    "balanced_accuracy": "The mean of sensitivity and specificity, so the larger class cannot dominate it.",
    "sensitivity": "Of the {pos} images, the share the model calls {pos} (1 - sensitivity are missed cases).",
    "sensitivity_multi": "Of the images of a class, the share called that class (recall), averaged over classes.",
    "specificity": "Of the {neg} images, the share the model calls {neg} (1 - specificity are false alarms).",
    "specificity_multi": "Of the images not of a class, the share not called that class, averaged over classes.",
    "ppv": "Of the images the model calls {pos}, the share that are {pos}; it falls when {pos} is rarer than "
           "here ({prevalence} of this split).",
    "ppv_multi": "Of the images called a class, the share that are of that class (precision), averaged over classes.",
    "npv": "Of the images the model calls {neg}, the share that are {neg}.",
    "npv_multi": "Of the images not called a class, the share that are not of it, averaged over classes.",
    "f1": "The harmonic mean of PPV and sensitivity: high only when both are.",
    "brier": "The mean squared difference between the predicted probability of {pos} and what happened (1 or 0): "
             "0 is perfect; always predicting the prevalence scores {brier_ref}.",
    "quadratic_weighted_kappa": "Agreement between predicted and true grades beyond what chance gives, a miss "
                                "costing the square of its distance in grades: 1 is perfect, 0 is chance.",
    "mae": "The average absolute difference between the predicted and the true value, in the target's units.",
    "rmse": "Like the mean absolute error, but large errors count more (the root of the mean squared error).",
    "r2": "The share of the variance of the true values the predictions explain: 1 is perfect, 0 is no better "
          "than predicting the mean.",
    "pearson_r": "How closely predicted and true values follow a straight line: 1 is perfect, 0 is none.",
    "interval": "95% interval: the range of values compatible with these data; it comes from the {unit}s of the "
                "split resampled with replacement {replicates} times (a percentile bootstrap), each resample "
                "scored again, keeping the middle 95% of the results. A wide interval means few images.",
    "undefined": "Undefined replicates: resamples in which a number could not be computed (for example no {pos} "
                 "image was drawn, so sensitivity has nothing to divide by); they are left out of the interval, "
                 "and a large count means the interval is unreliable.",
    "unreliable": "Why these numbers may mislead: with few images, or few of one class, a handful of other images "
                  "could give quite different values. The 95% intervals are meant to show that uncertainty, but "
                  "when many resamples lack a class they cannot: the interval is then computed from the resamples "
                  "that happened to contain every class and looks narrower, more certain, than the data allow.",
    "threshold": "Threshold: the {pos} probability from which an image is called {pos}.",
    "roc": "Each point of the ROC curve is one threshold: moving along it trades missed cases (lower "
           "sensitivity) for false alarms (lower specificity); the dashed diagonal is guessing.",
    "pr": "The precision-recall curve shows, for each threshold, the share of {pos} calls that are right (PPV) "
          "against the share of {pos} images found (sensitivity); the dashed line is the prevalence.",
    "confusion": "Rows are the true class and columns the predicted one; the row-normalised matrix shows, on its "
                 "diagonal, the share of each class called correctly.",
    "calibration": "Calibration asks whether the probabilities mean what they say: of the images given about "
                   "30% {pos}, about 30% should be {pos}. Points on the dashed diagonal are well calibrated; "
                   "points below it mean the model overstates the probability, above it understates it.",
    "ece": "Expected calibration error (ECE): the average gap between the predicted probability and the observed "
           "share of {pos} images across the bins, weighted by the number of images in each; 0 is perfect.",
    "temperature": "Temperature scaling divides the model's outputs by one number fitted on the validation split, "
                   "which softens over-confident probabilities without changing which image ranks higher.",
    "subgroups": "The same metrics within each value of a metadata column; a subgroup with few images has a wide "
                 "interval, and differences between such subgroups may be chance.",
}

OPERATING_POINT_NAMES = {"default": "default (0.5)", "youden": "Youden's index", "high_sensitivity":
                         "high sensitivity (screening)", "high_specificity": "high specificity (confirmation)"}

_OP_MEANING = {
    "default": "The fixed threshold of 0.5 (MedMNIST's rule), chosen by convention rather than on data.",
    "youden": "Youden's index: the threshold that maximises sensitivity + specificity - 1 on the validation "
              "split, weighing a missed case and a false alarm equally.",
    "high_sensitivity": "The highest threshold that still called at least {sens_target} of the {pos} validation "
                        "images {pos}: few missed cases, more false alarms, as a screening or rule-out test wants.",
    "high_specificity": "The lowest threshold that still called at least {spec_target} of the {neg} validation "
                        "images {neg}: few false alarms, more missed cases, as a confirmation or rule-in test wants.",
}


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def metric_meaning(key: str, task: str, pos: str = "positive", neg: str = "negative",
                   prevalence: float | None = None) -> str:
    """The sentence that explains metric ``key`` for a ``task`` run ('' when there is none)."""
    kind = get_kind(task)
    multi = not kind.has_positive_class
    variant = "_multilabel" if kind.multilabel else "_multi" if kind.class_index and multi else ""
    text = TERMS.get(key + variant) or (TERMS.get(key + "_multi") if multi else None) or TERMS.get(key, "")
    prev = "n/a" if prevalence is None else _pct(prevalence)
    ref = "n/a" if prevalence is None else f"{prevalence * (1 - prevalence):.3f}"
    return text.format(pos=pos, neg=neg, prevalence=prev, brier_ref=ref)


def operating_point_meaning(name: str, pos: str, neg: str, sens_target: float = 0.95,
                            spec_target: float = 0.95) -> str:
    return _OP_MEANING.get(name, "").format(pos=pos, neg=neg, sens_target=_pct(sens_target),
                                            spec_target=_pct(spec_target))


def low_threshold_note(threshold: float, names: Sequence[str], pos: str, neg: str, limit: float = 0.1) -> str:
    """A sentence for a threshold below ``limit``: what it means, and why a screening point has one."""
    if not threshold < limit:
        return ""
    text = (f"A threshold of {threshold:.2g} means every image given a {pos} probability of {100 * threshold:.2g}% or "
            f"more is called {pos}: the model calls {pos} almost everything it does not see as clearly {neg}.")
    if "high_sensitivity" in names:
        text += (" On a screening (high-sensitivity) point this is expected: the network's probabilities crowd "
                 "near 0 and 1, so finding nearly every case on validation needed a low cut-off.")
    return text
