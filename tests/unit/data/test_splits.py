
import numpy as np
import pytest

from medclass.data.splits import (
    check_split_classes,
    cross_validation_splits,
    describe_split,
    kfold,
    split_by_ratios,
)
from medclass.errors import ConfigError, DataError

RATIOS = (0.7, 0.15, 0.15)
NAMES = ("train", "val", "test")


def cohort(seed: int, n_patients: int = 100, p=(0.7, 0.2, 0.1)):
    """~350 rows: 1-6 images per patient, 3 imbalanced classes, 10% of images relabelled at random."""
    rng = np.random.default_rng(seed)
    per_patient = rng.choice(len(p), size=n_patients, p=p)
    sizes = rng.integers(1, 7, n_patients)
    groups = np.repeat([f"P{i:03d}" for i in range(n_patients)], sizes)
    labels = np.repeat(per_patient, sizes)
    flip = rng.random(len(labels)) < 0.1
    labels[flip] = rng.integers(0, len(p), flip.sum())
    return labels, groups


def groups_of(split, groups, name):
    return set(groups[split == name])


@pytest.mark.parametrize("seed", range(6))
def test_grouped_split_properties(seed):
    labels, groups = cohort(seed)
    split = split_by_ratios(labels, groups, ratios=RATIOS, seed=seed)
    assert split.shape == labels.shape and set(split) == set(NAMES)
    parts = {n: groups_of(split, groups, n) for n in NAMES}
    # no patient in two splits, and every patient somewhere
    assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"]) \
        and not (parts["val"] & parts["test"])
    assert sum(len(v) for v in parts.values()) == 100
    # patient fractions: 70/15/15 of 100 patients, exactly (the +-1 repair case aside)
    for name, r in zip(NAMES, RATIOS):
        assert abs(len(parts[name]) / 100 - r) <= 0.05
    # every class in every split; per-class row proportions close to the overall ones
    overall = np.bincount(labels, minlength=3) / len(labels)
    for name in NAMES:
        m = split == name
        counts = np.bincount(labels[m], minlength=3)
        assert (counts > 0).all(), (name, counts)
        np.testing.assert_allclose(counts / m.sum(), overall, atol=0.05)
        assert abs(m.mean() - RATIOS[NAMES.index(name)]) <= 0.05  # rows follow patients


def test_split_is_deterministic_for_a_seed():
    labels, groups = cohort(0)
    a = split_by_ratios(labels, groups, seed=3)
    np.testing.assert_array_equal(a, split_by_ratios(labels, groups, seed=3))
    assert (a != split_by_ratios(labels, groups, seed=4)).any()
    # the split depends on the patients, not on the order of the rows
    perm = np.random.default_rng(0).permutation(len(labels))
    assert groups_of(split_by_ratios(labels[perm], groups[perm], seed=3), groups[perm], "test") \
        == groups_of(a, groups, "test")


def test_other_ratios_names_and_integer_groups():
    labels, groups = cohort(1)
    ids = np.unique(groups, return_inverse=True)[1]  # ints are fine as group ids
    split = split_by_ratios(labels, ids, ratios=(0.8, 0.2), names=("fit", "holdout"), seed=0)
    assert set(split) == {"fit", "holdout"}
    assert len(set(ids[split == "holdout"])) == 20 and not set(ids[split == "fit"]) & set(ids[split == "holdout"])
    # a zero ratio gives an empty split and does not count towards the groups each class needs
    split = split_by_ratios(labels, groups, ratios=(0.75, 0.25, 0.0), seed=0)
    assert set(split) == {"train", "val"}


def test_rare_class_lands_in_every_split():
    # 3 patients of the rare class among 60: 15% of 3 rounds to 0, yet each split must get one
    labels = np.array([0] * 57 + [1] * 3)
    groups = np.arange(60)
    for seed in range(5):
        split = split_by_ratios(labels, groups, seed=seed)
        assert sorted(split[labels == 1]) == ["test", "train", "val"]
        assert [int((split == n).sum()) for n in NAMES] == [42, 9, 9]


def test_too_few_patients_for_a_class():
    labels = np.array([0] * 20 + [1, 1, 1, 1])
    groups = np.r_[np.arange(20), [20, 20, 21, 21]]
    with pytest.raises(DataError, match="class 'malignant' has 2 patients; cannot put one in each of train, val "
                                        "and test.*fewer splits"):
        split_by_ratios(labels, groups, class_names=["benign", "malignant"])
    with pytest.raises(DataError, match="class '1' has 2 patients"):
        split_by_ratios(labels, groups)
    with pytest.raises(DataError, match="has 2 patients; cannot put one in each of the 5 folds.*fewer folds"):
        kfold(labels, groups, n_folds=5)
    assert set(split_by_ratios(labels, groups, ratios=(0.8, 0.2), names=("train", "val"))) == {"train", "val"}


def test_ungrouped_split():
    y = np.random.default_rng(0).choice(3, size=500, p=[0.8, 0.15, 0.05])
    split = split_by_ratios(y, None, seed=0)
    card = describe_split(split, y)
    assert [card[n]["rows"] for n in NAMES] == [350, 75, 75]
    assert all(card[n]["rows"] == card[n]["groups"] for n in NAMES)
    for n in NAMES:
        np.testing.assert_allclose(np.array(card[n]["per_class"]) / card[n]["rows"], np.bincount(y) / 500, atol=0.02)
    unstratified = split_by_ratios(None, [f"p{i}" for i in range(40)], seed=0)
    assert [int((unstratified == n).sum()) for n in NAMES] == [28, 6, 6]


def multilabel_cohort(seed=0, n_patients=120):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, n_patients)
    groups = np.repeat(np.arange(n_patients), sizes)
    y = (rng.random((len(groups), 4)) < [0.4, 0.2, 0.08, 0.04]).astype(np.int64)
    return y, groups


@pytest.mark.parametrize("seed", range(3))
def test_multilabel_stratification(seed):
    y, groups = multilabel_cohort(seed)
    split = split_by_ratios(y, groups, seed=seed)
    assert not groups_of(split, groups, "train") & groups_of(split, groups, "test")
    check_split_classes(split, y, ["a", "b", "c", "d"], "test")  # every label positive in every split
    for n in NAMES:
        m = split == n
        np.testing.assert_allclose(y[m].mean(0), y.mean(0), atol=0.05)
    missing = y.copy()
    missing[::7, 1] = -1  # -1: a missing label, not a positive
    split = split_by_ratios(missing, groups, seed=seed)
    assert all((missing[split == n] == 1).sum(0).min() > 0 for n in NAMES)
    assert sum(describe_split(split, missing, groups)[n]["per_class"][1] for n in NAMES) == (missing[:, 1] == 1).sum()
    folds = kfold(y, groups, n_folds=3, seed=seed)
    assert all((y[folds == k].sum(0) > 0).all() for k in range(3))


def test_bad_arguments():
    labels, groups = cohort(0)
    with pytest.raises(ConfigError, match=r"summing to 1. Got \[0.7, 0.2, 0.2\] \(sum 1.1\)"):
        split_by_ratios(labels, groups, ratios=(0.7, 0.2, 0.2))
    with pytest.raises(ConfigError, match="one ratio per split name"):
        split_by_ratios(labels, groups, ratios=(0.5, 0.5))
    with pytest.raises(DataError, match="row 1 has 0.5.*binned"):
        split_by_ratios(np.array([0.0, 0.5, 1.0]))
    with pytest.raises(DataError, match=r"must be 0, 1 or -1 \(missing\); row 1, label 0 is 2"):
        split_by_ratios(np.array([[1, 0], [2, 1]]))
    with pytest.raises(DataError, match=r"2 rows have no patient id \(rows 1, 3\)"):
        split_by_ratios(np.zeros(4, int), ["a", None, "b", ""])
    with pytest.raises(DataError, match="groups have shape"):
        split_by_ratios(labels, groups[:-1])
    with pytest.raises(ConfigError, match="n_folds"):
        kfold(labels, groups, n_folds=1)


@pytest.mark.parametrize("seed", range(3))
def test_kfold_grouped_and_balanced(seed):
    labels, groups = cohort(seed)
    folds = kfold(labels, groups, n_folds=5, seed=seed)
    assert folds.dtype.kind == "i" and set(folds) == set(range(5))
    for g in np.unique(groups):  # every patient in exactly one fold
        assert len(set(folds[groups == g])) == 1
    n_groups = np.array([len(set(groups[folds == k])) for k in range(5)])
    n_rows = np.bincount(folds)
    # StratifiedGroupKFold balances rows and classes, so patient counts vary more (max 5 off over 300 seeds)
    assert n_groups.sum() == 100 and (abs(n_groups - 20) <= 6).all(), n_groups
    assert (abs(n_rows - len(labels) / 5) <= 0.1 * len(labels) / 5).all(), n_rows
    overall = np.bincount(labels) / len(labels)
    for k in range(5):
        np.testing.assert_allclose(np.bincount(labels[folds == k], minlength=3) / n_rows[k], overall, atol=0.05)
    np.testing.assert_array_equal(folds, kfold(labels, groups, n_folds=5, seed=seed))
    plain = kfold(labels, None, n_folds=4, seed=seed)  # ungrouped: StratifiedKFold
    assert (abs(np.bincount(plain) - len(labels) / 4) <= 1).all()


def test_cross_validation_splits():
    labels, groups = cohort(2)
    test_patients = np.unique(groups)[:15]
    test_mask = np.isin(groups, test_patients)
    seen_as_val = np.zeros(len(labels), int)
    for fold in range(4):
        split = cross_validation_splits(labels, groups, n_folds=4, fold=fold, test_mask=test_mask, seed=0)
        assert (split[test_mask] == "test").all() and set(split[~test_mask]) == {"train", "val"}
        assert not groups_of(split, groups, "train") & groups_of(split, groups, "val")
        seen_as_val += split == "val"
    assert (seen_as_val[~test_mask] == 1).all() and (seen_as_val[test_mask] == 0).all()
    sizes = {g: int((groups == g).sum()) for g in np.unique(groups[~test_mask])}
    leaky = test_mask.copy()
    leaky[np.flatnonzero(groups == max(sizes, key=sizes.get))[0]] = True  # one image of a multi-image patient
    with pytest.raises(DataError, match="1 patients have rows both in the test set and outside it, e.g. 'P"):
        cross_validation_splits(labels, groups, 4, 0, leaky, 0)
    with pytest.raises(ConfigError, match=r"'fold'.*0..3. Got 4"):
        cross_validation_splits(labels, groups, 4, 4, test_mask, 0)
    no_test = cross_validation_splits(labels, None, 5, 0, None, 0)
    assert set(no_test) == {"train", "val"}


def test_describe_and_check_split_classes():
    split = np.array(["train"] * 5 + ["val"] * 2 + ["test"] * 3)
    labels = np.array([0, 1, 1, 0, 0, 0, 0, 1, 0, 1])
    groups = np.array(["a", "a", "b", "c", "c", "d", "d", "e", "f", "f"])
    card = describe_split(split, labels, groups)
    assert list(card) == ["train", "val", "test"]
    assert card["train"] == {"rows": 5, "groups": 3, "per_class": [3, 2]}
    assert card["val"] == {"rows": 2, "groups": 1, "per_class": [2, 0]}
    with pytest.raises(DataError, match=r"manifest.csv: empty classes in a split: val has no example of class "
                                        r"'malignant' \(train 2, test 2\)"):
        check_split_classes(split, labels, ["benign", "malignant"], "manifest.csv")
    check_split_classes(split[:5], labels[:5], ["benign", "malignant"], "ok")
    multi = np.array([[1, 0], [0, 1], [1, 0], [1, 1]])
    with pytest.raises(DataError, match="test has no example of class 'edema' \\(train 1\\)"):
        check_split_classes(["train", "train", "test", "test"], np.array([[1, 0], [0, 1], [1, 0], [1, 0]]),
                            ["effusion", "edema"], "m")
    check_split_classes(["train", "train", "test", "test"], multi, ["effusion", "edema"], "m")
    assert describe_split(["train", "train", "test", "test"], multi)["test"]["per_class"] == [2, 1]
