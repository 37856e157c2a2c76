"""The report's words: display names of merged classes, and the sentences that explain each term."""

import re

import pytest

from medclass.data.medmnist import MEDMNIST
from medclass.reports.wording import TERMS, display_label, low_threshold_note, metric_meaning, operating_point_meaning


@pytest.mark.parametrize("stored, shown", [
    ("normal, benign", "benign or normal"),  # BreastMNIST
    ("Collecting Duct, Connecting Tubule", "Collecting Duct or Connecting Tubule"),  # TissueMNIST
    ("a, b, c", "a, b or c"),
    ("immature granulocytes (myelocytes, metamyelocytes and promyelocytes)",  # a comma inside parentheses
     "immature granulocytes (myelocytes, metamyelocytes and promyelocytes)"),
    ("malignant", "malignant"),
    ("<script>, x", "<script> or x"),  # escaping is the template's job, not this function's
])
def test_display_label(stored, shown):
    assert display_label(stored) == shown


def test_every_medmnist_class_reads_without_a_list_comma():
    for info in MEDMNIST.values():
        for label in info.labels:
            outside_parentheses = re.sub(r"\([^)]*\)", "", display_label(label))
            assert ", " not in outside_parentheses or " or " in outside_parentheses, (info.name, label)


def test_metric_sentences_use_the_class_names_and_prevalence():
    text = metric_meaning("ppv", "binary", "malignant", "benign or normal", 0.269)
    assert "Of the images the model calls malignant" in text and "26.9%" in text
    assert "0.197" in metric_meaning("brier", "binary", "malignant", "benign", 0.269)  # 0.269 * 0.731
    assert "averaged over the classes" in metric_meaning("auc", "multiclass")
    assert "averaged over classes" in metric_meaning("sensitivity", "ordinal")
    assert "grades" in metric_meaning("quadratic_weighted_kappa", "ordinal")
    assert metric_meaning("no_such_metric", "binary") == ""
    for key in ("interval", "undefined", "calibration", "ece", "roc", "pr"):
        assert TERMS[key].endswith(".")


def test_operating_point_sentences():
    assert "at least 95% of the malignant validation images" in operating_point_meaning(
        "high_sensitivity", "malignant", "benign")
    assert "90% of the benign" in operating_point_meaning("high_specificity", "malignant", "benign", spec_target=0.9)
    assert "Youden's index" in operating_point_meaning("youden", "malignant", "benign")


def test_low_threshold_note():
    note = low_threshold_note(0.02, ["high_sensitivity"], "malignant", "benign")
    assert note.startswith("A threshold of 0.02 means every image given a malignant probability of 2% or more")
    assert "screening" in note
    assert "screening" not in low_threshold_note(0.02, ["youden"], "malignant", "benign")
    assert low_threshold_note(0.3, ["high_sensitivity"], "malignant", "benign") == ""
