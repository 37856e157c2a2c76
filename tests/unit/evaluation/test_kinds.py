"""Task kinds: one table keyed by the configuration's task names, and each kind's array behaviour."""

import sys

import numpy as np
import pytest

from medclass.config import TASKS
from medclass.errors import ConfigError, DataError
from medclass.evaluation.kinds import KINDS, OUTPUTS, class_kind, get_kind


def test_the_table_has_exactly_the_declared_tasks_and_needs_no_torch():
    assert tuple(KINDS) == TASKS
    assert all(k.name == name and k.output in OUTPUTS for name, k in KINDS.items())
    import subprocess

    code = "import sys, medclass.evaluation.kinds, medclass.evaluation.assess; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_task_and_class_kind():
    with pytest.raises(ConfigError, match=r"Unknown task 'binray'\. Did you mean 'binary'\? Known tasks: binary, "):
        get_kind("binray")
    assert class_kind(2).name == "binary" and class_kind(5).name == "multiclass"
    assert get_kind("multitask", heads=(2, 3)).heads == (2, 3) and KINDS["multitask"].heads == ()


@pytest.mark.parametrize("name", TASKS)
def test_every_kind_decides_describes_and_counts(name):
    rng = np.random.default_rng(0)
    kind = get_kind(name, heads=(2, 3) if name == "multitask" else ())
    classes = {"multitask": ("a:x", "a:y", "b:p", "b:q", "b:r"), "regression": ("value",)}.get(name, ("u", "v", "w"))
    n, k = 12, {"multitask": 5, "regression": 1, "binary": 2}.get(name, 3)
    classes = classes[:k] if name == "binary" else classes
    proba = rng.random((n, k))
    decisions = kind.decide(proba, 0.5)
    words = kind.describe(decisions, classes)
    assert len(decisions) == n and len(words) == n and all(isinstance(w, str) for w in words)
    labels = {"multilabel": (proba > 0.5).astype(int), "regression": proba[:, 0],
              "multitask": np.stack([rng.integers(0, 2, n), rng.integers(0, 3, n)], 1)}.get(
        name, rng.integers(0, k, n))
    counts = kind.class_counts(labels, len(classes))
    assert set(counts) <= {"per_class", "positives_per_label", "mean", "sd", "per_head"} and counts
    assert isinstance(kind.count_text(labels, classes), str)
    strata, names = kind.strata(labels, classes)
    assert len(strata) == n and len(names) >= 1


def test_binary_uses_medmnist_rule_and_one_column_scores():
    kind = get_kind("binary")
    assert kind.decide(np.array([[0.5, 0.5], [0.4, 0.6]])).tolist() == [0, 1]  # 0.5 is not > 0.5
    assert np.allclose(kind.as_scores(np.array([[0.2], [0.9]])), [[0.8, 0.2], [0.1, 0.9]])
    assert kind.default_positive_label == 1 and get_kind("multiclass").default_positive_label is None


def test_encoding_cells_by_kind():
    raw = [["b"], ["a"], ["b"]]
    labels, classes, facts = get_kind("multiclass").encode(raw, ("label",), (), "Manifest 'm.csv'")
    assert labels.tolist() == [1, 0, 1] and classes == ("a", "b") and facts == {}
    with pytest.raises(DataError, match="data.task is binary but the manifest has 3 classes: a, b, c"):
        get_kind("binary").encode([["a"], ["b"], ["c"]], ("label",), (), "Manifest 'm.csv'")
    labels, classes, facts = get_kind("multitask").encode([["x", "p"], ["y", ""], ["x", "q"]], ("a", "b"), (), "M")
    assert labels.tolist() == [[0, 0], [1, -1], [0, 1]] and classes == ("a:x", "a:y", "b:p", "b:q")
    assert facts == {"heads": [2, 2], "head_names": ["a", "b"]}
    assert get_kind("multilabel").cell_problem(["1", "yes"], ("a", "b"), ()) == (
        "multi-label values must be 0, 1 or empty (unknown); got b='yes'")
    assert "not a finite number" in get_kind("regression").cell_problem(["n/a"], ("age",), ())
