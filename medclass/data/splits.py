"""Patient-level, stratified train/val/test splits and K-fold cross-validation.

An example is a patient (or a scan), not a slice: rows that share a group id (a patient) always land in
the same split, so no patient's images are seen in training and graded in test. Everything here works
at group level first and maps the result back to rows.

**Stratifying groups.** A group has one stratum:

- single-label (``labels`` of shape ``(N,)``): the group's majority label; a tie goes to the class with
  fewer rows overall (a patient with one benign and one malignant image counts towards the rarer class);
- multi-label (``(N, L)`` 0/1, -1 for a missing label): the group's *rarest positive label*, the positive
  label that the fewest groups carry; a group with no positive label is its own stratum ("no finding").
  Stratifying on the full label combination would give one stratum per combination (up to 2**14 for
  chest X-ray findings), most of them a single patient; the rarest label is what needs spreading, the
  common ones follow.

**What :func:`split_by_ratios` guarantees** (all tested):

- no group in two splits;
- the number of groups in each split is ``ratio * n_groups`` rounded by largest remainder (every split with a
  positive ratio gets at least one group), exact except for a rare ±1 where the presence repair below
  has to move a group without a partner to swap back;
- within each stratum, groups are shared out in the same proportions (±1 group); then groups of one
  stratum are swapped between splits so that rows per class also follow the ratios (patients hold 1 to
  many images; on 100 patients with 1-6 images each, per-class row fractions land within 0.02 of the
  overall ones);
- every class (every positive label, for multi-label) is present in every split. A class carried by fewer
  groups than there are splits cannot be; that raises :class:`~medclass.errors.DataError` naming the class;
- the same inputs and seed give the same split.

**Where scikit-learn is used, and where not.** :func:`kfold` is scikit-learn's ``StratifiedGroupKFold`` (or
``StratifiedKFold`` when there are no groups). :func:`split_by_ratios` is hand-written at group level:
``GroupShuffleSplit`` does not stratify, and ``StratifiedShuffleSplit`` (on one row per group) cuts in two,
refuses strata of one group and may leave a rare class out of a small split. On top of both we add the
same repair step: when a split lacks a class, one group carrying it is swapped in from the split with
the most such groups. scikit-learn only warns in that case ("The least populated class in y has only 2
members"); an empty class in validation or test makes sensitivity or AUC undefined for it.

Saving a split to ``split.csv`` and reapplying it is :mod:`medclass.data.split_files`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..errors import ConfigError, DataError

__all__ = [
    "SPLIT_NAMES",
    "check_split_classes",
    "cross_validation_splits",
    "describe_split",
    "kfold",
    "split_by_ratios",
]

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
_SHOW = 5  # how many offending keys or rows an error message lists


# --------------------------------------------------------------------------------------------------------
# Making splits
# --------------------------------------------------------------------------------------------------------

def split_by_ratios(labels: np.ndarray | None, groups: Sequence | None = None,
                    ratios: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                    names: Sequence[str] = SPLIT_NAMES, *, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Split rows into named parts by fractions of groups, grouped and stratified.

    Args:
        labels: ``(N,)`` integer class labels, ``(N, L)`` 0/1 multi-label targets (-1: missing, counted as
            not positive), or ``None`` to split without stratifying (regression targets: pass binned values).
        groups: ``(N,)`` group (patient) ids; ``None``: every row is its own group.
        ratios: fraction of groups per split, non-negative, summing to 1. A zero ratio gives an empty split.
        seed: seed of the shuffling; the same seed gives the same split.
        names: one name per ratio.
        class_names: names used in error messages (``class_names[i]`` names class/label ``i``); default: the
            class value.

    Returns:
        ``(N,)`` array of split names, one per row.

    Raises:
        DataError: a class has fewer groups than there are splits with a positive ratio, or bad labels/groups.
        ConfigError: ``ratios`` and ``names`` are not valid.

    Example:
        >>> split = split_by_ratios(labels, groups=patient_ids, ratios=(0.7, 0.15, 0.15), seed=0)
        >>> (split == "test").mean()
    """
    ratios_arr = np.asarray(ratios, dtype=float)
    names = [str(n) for n in names]
    if ratios_arr.ndim != 1 or len(ratios_arr) != len(names) or len(set(names)) != len(names):
        raise ConfigError(f"split_by_ratios needs one ratio per split name and distinct names. "
                          f"Got ratios={list(ratios)!r} and names={names!r}.")
    if (ratios_arr < 0).any() or not np.isfinite(ratios_arr).all() or abs(ratios_arr.sum() - 1) > 1e-6:
        raise ConfigError(f"The 'ratios' parameter of split_by_ratios must be non-negative fractions summing to 1. "
                          f"Got {list(ratios)!r} (sum {ratios_arr.sum():.4g}) instead.")
    table = _GroupTable.build(labels, groups)
    active = np.flatnonzero(ratios_arr > 0)
    table.check_enough_groups([names[i] for i in active], class_names, "split")
    rng = np.random.default_rng(seed)

    targets = _largest_remainder(table.n_groups * ratios_arr, table.n_groups, minimum=(ratios_arr > 0).astype(int))
    assign = _allocate(table.strata, ratios_arr, targets, rng)
    assign = _balance_rows(assign, table.row_counts, table.strata, ratios_arr, rng)
    assign = _ensure_presence(assign, table.presence, active, table.strata, rng)
    return np.asarray(names)[assign[table.inverse]]


def kfold(labels: np.ndarray | None, groups: Sequence | None = None, n_folds: int = 5, seed: int = 0, *,
          class_names: Sequence[str] | None = None) -> np.ndarray:
    """Assign each row to one of ``n_folds`` folds, grouped and stratified.

    scikit-learn's ``StratifiedGroupKFold`` (``StratifiedKFold`` without groups) with ``shuffle=True``,
    stratified on row labels (on the group's rarest positive label for multi-label), then the repair
    step of this module so every class is in every fold.

    Args:
        labels: as in :func:`split_by_ratios`.
        groups: as in :func:`split_by_ratios`.
        n_folds: number of folds, at least 2 and at most the number of groups.
        seed: seed of the shuffling.
        class_names: names used in error messages.

    Returns:
        ``(N,)`` int array, the fold index (``0 .. n_folds - 1``) of each row.
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"The 'n_folds' parameter of kfold must be an int >= 2. Got {n_folds!r} instead.")
    table = _GroupTable.build(labels, groups)
    if n_folds > table.n_groups:
        raise DataError(f"Cannot make {n_folds} folds from {table.n_groups} {table.unit}; "
                        f"use at most {table.n_groups} folds.")
    table.check_enough_groups([f"fold {k}" for k in range(n_folds)], class_names, "fold", n_folds=n_folds)
    # Row-level target for scikit-learn: the row's class (single-label), else its group's stratum.
    y = table.row_labels if table.row_labels is not None else table.strata[table.inverse]
    with warnings.catch_warnings():
        # Strata smaller than n_folds only draw a warning; the presence of real classes is repaired below.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        try:
            row_fold = _sklearn_folds(y, table, n_folds, seed)
        except ValueError:  # every stratum smaller than n_folds (tiny multi-label data): fold unstratified
            row_fold = _sklearn_folds(np.zeros_like(y), table, n_folds, seed)
    assign = np.empty(table.n_groups, dtype=np.int64)
    assign[table.inverse] = row_fold
    assign = _ensure_presence(assign, table.presence, np.arange(n_folds), table.strata,
                              np.random.default_rng(seed))
    return assign[table.inverse]


def _sklearn_folds(y: np.ndarray, table: _GroupTable, n_folds: int, seed: int) -> np.ndarray:
    if table.grouped:
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        folds = cv.split(np.zeros(len(y)), y, groups=table.inverse)
    else:
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    row_fold = np.empty(len(y), dtype=np.int64)
    for k, (_, idx) in enumerate(folds):
        row_fold[idx] = k
    return row_fold


def cross_validation_splits(labels: np.ndarray | None, groups: Sequence | None, n_folds: int, fold: int,
                            test_mask: np.ndarray | None, seed: int = 0, *,
                            class_names: Sequence[str] | None = None) -> np.ndarray:
    """Train/val/test names for one fold of K-fold cross-validation over the non-test rows.

    Rows in ``test_mask`` are ``"test"``; the others are split into ``n_folds`` grouped, stratified folds
    by :func:`kfold`; rows of fold ``fold`` are ``"val"`` and the rest ``"train"``. The same seed gives
    the same folds for every ``fold``, so running ``fold = 0 .. n_folds - 1`` covers each row once as val.

    Raises:
        DataError: a group has rows both inside and outside ``test_mask`` (a patient would leak).
    """
    n = _n_rows(labels, groups)
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < n_folds:
        raise ConfigError(f"The 'fold' parameter of cross_validation_splits must be in 0..{n_folds - 1}. "
                          f"Got {fold!r} instead.")
    test = np.zeros(n, dtype=bool) if test_mask is None else np.asarray(test_mask, dtype=bool)
    if test.shape != (n,):
        raise DataError(f"test_mask has shape {test.shape}; expected ({n},), one flag per row.")
    if groups is not None:
        g = _as_groups(groups, n)
        mixed = np.intersect1d(g[test], g[~test])
        if len(mixed):
            raise DataError(f"{len(mixed)} patients have rows both in the test set and outside it, e.g. "
                            f"{', '.join(repr(str(x)) for x in mixed[:_SHOW])}. A patient must be wholly in "
                            f"test or wholly out; fix the test rows (or the patient ids).")
    rest = ~test
    if not rest.any():
        raise DataError("Every row is in the test set; nothing is left for cross-validation.")
    sub_labels = None if labels is None else np.asarray(labels)[rest]
    sub_groups = None if groups is None else np.asarray(groups)[rest]
    folds = kfold(sub_labels, sub_groups, n_folds=n_folds, seed=seed, class_names=class_names)
    out = np.full(n, "test", dtype="<U5")
    out[rest] = np.where(folds == fold, "val", "train")
    return out


# --------------------------------------------------------------------------------------------------------
# Describing and checking splits
# --------------------------------------------------------------------------------------------------------

def describe_split(split: Sequence[str], labels: np.ndarray | None, groups: Sequence | None = None) -> dict:
    """Counts per split, for reports: ``{name: {"rows", "groups", "per_class"}}``.

    ``per_class`` lists rows per class (single-label, indexed by class value) or positive rows per label
    (multi-label; missing labels, -1, are not counted); it is absent when ``labels`` is None. Splits
    come in train/val/test order, then others.
    """
    split = np.asarray(split).astype(str)
    n = len(split)
    g = np.arange(n) if groups is None else _as_groups(groups, n)
    y = None if labels is None else _as_labels(labels, n)
    n_classes = 0
    if y is not None:
        n_classes = y.shape[1] if y.ndim == 2 else int(y.max(initial=-1)) + 1
    present = set(split.tolist())
    order = [s for s in SPLIT_NAMES if s in present] + sorted(present - set(SPLIT_NAMES))
    out: dict[str, dict] = {}
    for name in order:
        m = split == name
        entry = {"rows": int(m.sum()), "groups": len(np.unique(g[m]))}
        if y is not None:
            entry["per_class"] = (y[m].sum(0) if y.ndim == 2 else np.bincount(y[m], minlength=n_classes)).tolist()
        out[name] = entry
    return out


def check_split_classes(split: Sequence[str], labels: np.ndarray, class_names: Sequence[str], where: str) -> None:
    """Refuse a split that has no example of some class (no positive of some label, for multi-label).

    Raises:
        DataError: listing each empty (split, class), with the class's counts in the other splits.
    """
    split = np.asarray(split).astype(str)
    y = _as_labels(labels, len(split))
    n_classes = len(class_names)
    if y.ndim == 2 and y.shape[1] != n_classes:
        raise DataError(f"{where}: labels have {y.shape[1]} columns but there are {n_classes} class names.")
    if y.ndim == 1 and len(y) and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise DataError(f"{where}: label {bad} is outside 0..{n_classes - 1} ({n_classes} classes).")
    names = [s for s in SPLIT_NAMES if s in set(split.tolist())] + sorted(set(split.tolist()) - set(SPLIT_NAMES))
    counts = {s: (y[split == s].sum(0) if y.ndim == 2 else np.bincount(y[split == s], minlength=n_classes))
              for s in names}
    problems = []
    for s in names:
        for c in np.flatnonzero(counts[s] == 0):
            others = ", ".join(f"{o} {int(counts[o][c])}" for o in names if o != s)
            problems.append(f"{s} has no example of class {class_names[c]!r}" + (f" ({others})" if others else ""))
    if problems:
        raise DataError(f"{where}: empty classes in a split: " + "; ".join(problems) + ". Metrics for such a class "
                        "are undefined there. Make a new split (another seed, fewer splits or folds), merge rare "
                        "classes, or add examples.")


# --------------------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------------------

class _GroupTable:
    """Rows collapsed to groups: which classes each group carries and the group's stratum."""

    def __init__(self, inverse: np.ndarray, counts: np.ndarray, strata: np.ndarray, grouped: bool,
                 class_labels: list, row_labels: np.ndarray | None):
        self.inverse = inverse  # (N,) group index of each row
        self.presence = counts > 0  # (G, C) bool: group carries class c
        # (G, C + 1): rows per class (positive rows per label), then all rows, of each group
        self.row_counts = np.column_stack([counts, np.bincount(inverse, minlength=len(strata))]).astype(float)
        self.strata = strata  # (G,) int
        self.grouped = grouped
        self.class_labels = class_labels  # what column c of presence stands for (class value or label index)
        self.row_labels = row_labels  # (N,) single-label classes, else None
        self.n_groups = len(strata)
        self.unit = "patients" if grouped else "rows"

    @classmethod
    def build(cls, labels: np.ndarray | None, groups: Sequence | None) -> _GroupTable:
        n = _n_rows(labels, groups)
        if groups is None:
            inverse = np.arange(n)
        else:
            _, inverse = np.unique(_as_groups(groups, n), return_inverse=True)
        n_groups = int(inverse.max(initial=-1)) + 1
        if n_groups == 0:
            raise DataError("Cannot split zero rows.")
        if labels is None:
            return cls(inverse, np.zeros((n_groups, 0), np.int64), np.zeros(n_groups, np.int64), groups is not None,
                       [], None)
        y = _as_labels(labels, n)
        if y.ndim == 1:
            classes, y_idx = np.unique(y, return_inverse=True)
            counts = np.zeros((n_groups, len(classes)), np.int64)
            np.add.at(counts, (inverse, y_idx), 1)
            # Majority label; ties go to the class with fewer rows overall (argmax keeps the first maximum).
            rarest_first = np.argsort(np.bincount(y_idx), kind="stable")
            strata = rarest_first[np.argmax(counts[:, rarest_first], axis=1)]
            return cls(inverse, counts, strata, groups is not None, classes.tolist(), y_idx)
        counts = np.zeros((n_groups, y.shape[1]), np.int64)
        np.add.at(counts, inverse, y.astype(np.int64))
        presence = counts > 0
        # Rarest positive label of each group (ties: lower index); no positive label: stratum L.
        freq = np.where(presence, presence.sum(0)[None, :], np.iinfo(np.int64).max)
        strata = np.where(presence.any(1), np.argmin(freq, axis=1), y.shape[1])
        return cls(inverse, counts, strata, groups is not None, list(range(y.shape[1])), None)

    def check_enough_groups(self, split_names: list[str], class_names: Sequence[str] | None, what: str,
                            n_folds: int | None = None) -> None:
        n_splits = len(split_names)
        if self.n_groups < n_splits:
            raise DataError(f"Cannot make {n_splits} non-empty {what}s ({', '.join(split_names)}) from "
                            f"{self.n_groups} {self.unit}.")
        have = self.presence.sum(0)
        short = [(c, int(have[c])) for c in np.flatnonzero(have < n_splits)]
        if not short:
            return
        parts = [f"class {_class_name(self.class_labels[c], class_names)!r} has {k} {self.unit}" for c, k in short]
        where = f"each of the {n_folds} folds" if n_folds else "each of " + _join_and(split_names)
        fix = ("use fewer folds" if n_folds else "use fewer splits (e.g. ratios=(0.8, 0.2), names=('train', 'val'))")
        raise DataError(f"{'; '.join(parts)}; cannot put one in {where}. Every class needs at least {n_splits} "
                        f"{self.unit}: {fix}, merge or drop the rare class, or add {self.unit}.")


def _n_rows(labels: np.ndarray | None, groups: Sequence | None) -> int:
    if labels is not None:
        return len(labels)
    if groups is not None:
        return len(groups)
    raise DataError("Pass labels, groups or both; got neither.")


def _as_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """Validate labels: (N,) integers or (N, L) 0/1/-1. Returns int64 (N,) or bool positives (N, L)."""
    y = np.asarray(labels)
    if y.ndim not in (1, 2) or len(y) != n:
        raise DataError(f"labels have shape {y.shape}; expected ({n},) class indices or ({n}, L) 0/1 multi-label "
                        f"targets.")
    if y.dtype.kind not in "biuf":
        raise DataError(f"labels have dtype {y.dtype}; expected integers (class indices) or 0/1.")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(bad):
            row = np.unravel_index(bad[0], y.shape)[0]
            raise DataError(f"labels must be whole numbers to stratify on; row {row} has {y.flat[bad[0]].item()!r}. "
                            f"For a continuous target pass binned values (e.g. quartiles via np.digitize) "
                            f"or labels=None.")
    if y.ndim == 2:
        bad = np.flatnonzero((y != 0) & (y != 1) & (y != -1))
        if len(bad):
            row, col = np.unravel_index(bad[0], y.shape)
            raise DataError(f"multi-label targets must be 0, 1 or -1 (missing); row {row}, label {col} is "
                            f"{y[row, col].item()!r}. Map other codes (e.g. uncertain) to one of these first.")
        return y == 1  # a missing label (-1) counts as not positive
    return y.astype(np.int64)


def _as_groups(groups: Sequence, n: int) -> np.ndarray:
    g = np.asarray(groups, dtype=object)
    if g.shape != (n,):
        raise DataError(f"groups have shape {g.shape}; expected ({n},), one patient id per row.")
    blank = [i for i, v in enumerate(g)
             if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""]
    if blank:
        raise DataError(f"{len(blank)} rows have no patient id (rows {', '.join(map(str, blank[:_SHOW]))}). "
                        f"Fill them in, or give each such image an id of its own.")
    return g.astype(str)


def _largest_remainder(ideal: np.ndarray, total: int, minimum: np.ndarray) -> np.ndarray:
    """Round ``ideal`` (summing to ``total``) to integers with that sum, each at least ``minimum``."""
    out = np.floor(ideal + 1e-9).astype(np.int64)
    order = np.argsort(-(ideal - out), kind="stable")
    for i in order[: total - out.sum()]:
        out[i] += 1
    while (short := np.flatnonzero(out < minimum)).size:  # tiny data: take from the largest part
        out[short[0]] += 1
        out[np.argmax(out - minimum)] -= 1
    return out


def _allocate(strata: np.ndarray, ratios: np.ndarray, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split index per group: per stratum counts near ``n_k * ratio`` whose column sums equal ``targets``.

    Controlled rounding by hand (scikit-learn's StratifiedShuffleSplit rounds one cut, and refuses strata
    of one group): floors first, then the leftover groups go to the cells with the largest remainders,
    preferring a split that has none of that stratum yet.
    """
    kinds, inv = np.unique(strata, return_inverse=True)
    n_k = np.bincount(inv)
    ideal = n_k[:, None] * ratios[None, :]
    cells = np.floor(ideal + 1e-9).astype(np.int64)
    col_left = targets - cells.sum(0)
    for s in np.flatnonzero(col_left < 0):  # only when a minimum of one group forced a part below its floor
        for k in np.argsort(ideal[:, s] - cells[:, s], kind="stable"):
            while col_left[s] < 0 and cells[k, s] > 0:
                cells[k, s] -= 1
                col_left[s] += 1
    row_left = n_k - cells.sum(1)
    priority = ideal - cells + ((cells == 0) & (ratios > 0)[None, :]) + rng.random(cells.shape) * 1e-6
    flat = np.argsort(-priority, axis=None, kind="stable")
    for repeat in (False, True):  # first pass: one extra group per cell; second: whatever is still left
        for k, s in zip(*np.unravel_index(flat, cells.shape)):
            take = min(row_left[k], col_left[s]) if repeat else int(row_left[k] > 0 and col_left[s] > 0)
            cells[k, s] += take
            row_left[k] -= take
            col_left[s] -= take
    assign = np.empty(len(strata), dtype=np.int64)
    for k in range(len(kinds)):
        members = rng.permutation(np.flatnonzero(inv == k))
        assign[members] = np.repeat(np.arange(len(ratios)), cells[k])
    return assign


def _balance_rows(assign: np.ndarray, row_counts: np.ndarray, strata: np.ndarray, ratios: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Swap same-stratum groups between splits to bring each split's rows per class near ``ratio * total``.

    Groups hold 1 to many rows, so a split with the right number of groups per stratum can still be
    off in rows (a val split whose rare-class patients each have one image). scikit-learn's
    StratifiedGroupKFold balances rows greedily but only for equal folds; here a short random
    hill-climb swaps two groups of the same stratum (group counts and stratification stay exact) when
    that lowers the chi-square distance between the split's row counts and the expected ones.

    ``row_counts`` is ``(G, C)``: rows per class (positive rows per label) and total rows, per group.
    """
    assign = assign.copy()
    expected = ratios[:, None] * row_counts.sum(0)[None, :]  # (S, C)
    scale = 1.0 / np.maximum(expected, 1.0)
    current = np.zeros_like(expected)
    np.add.at(current, assign, row_counts)
    _, inv = np.unique(strata, return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(inv.max(initial=-1) + 1)]
    members = [m for m in members if len(m) > 1]
    if not members:
        return assign
    weights = np.array([len(m) for m in members], dtype=float)
    n_iter = int(min(20 * len(assign), 20_000))
    picks = rng.choice(len(members), size=n_iter, p=weights / weights.sum())
    pairs = rng.random((n_iter, 2))
    for k, (u, v) in zip(picks, pairs):
        m = members[k]
        g, h = m[int(u * len(m))], m[int(v * len(m))]
        a, b = assign[g], assign[h]
        if a == b:
            continue
        diff = row_counts[h] - row_counts[g]  # split a gains diff, b loses it
        if not diff.any():
            continue
        before = ((current[a] - expected[a]) ** 2 * scale[a]).sum() + ((current[b] - expected[b]) ** 2 * scale[b]).sum()
        new_a, new_b = current[a] + diff, current[b] - diff
        after = ((new_a - expected[a]) ** 2 * scale[a]).sum() + ((new_b - expected[b]) ** 2 * scale[b]).sum()
        if after < before:
            current[a], current[b] = new_a, new_b
            assign[g], assign[h] = b, a
    return assign


def _ensure_presence(assign: np.ndarray, presence: np.ndarray, active: np.ndarray, strata: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Swap groups between splits until every class is in every active split (when possible).

    For a split ``s`` lacking class ``c``: move a group carrying ``c`` from the split with the most such
    groups (whose other classes are not lost there by the move) into ``s``, and move back a group of ``s``
    whose departure loses ``s`` no class, preferring one of the same stratum so the counts and the
    stratification hold. Without such a partner the move alone is made (that split gains a group).
    """
    assign = assign.copy()
    n_splits = int(max(assign.max(initial=0), active.max(initial=0))) + 1
    for c in np.argsort(presence.sum(0), kind="stable"):  # rarest class first
        for s in active:
            carriers = presence[:, c]
            if (carriers & (assign == s)).any():
                continue
            per_split = np.bincount(assign[carriers], minlength=n_splits)
            donor = int(np.argmax(per_split))
            if per_split[donor] < 2:
                continue  # fewer carriers than splits; check_enough_groups has refused this already
            counts = np.stack([presence[assign == t].sum(0) for t in range(n_splits)])  # (splits, classes)
            # A group may leave split t without emptying a class there if t keeps >= 1 other carrier.
            movable = [g for g in np.flatnonzero(carriers & (assign == donor))
                       if (counts[donor][presence[g]] >= 2).all()]
            if not movable:
                continue
            g = movable[int(rng.integers(len(movable)))]
            partners = [h for h in np.flatnonzero(assign == s) if (counts[s][presence[h]] >= 2).all()]
            same = [h for h in partners if strata[h] == strata[g]]
            pool = same or partners
            assign[g] = s
            if pool:
                assign[pool[int(rng.integers(len(pool)))]] = donor
    missing = [(c, s) for c in range(presence.shape[1]) for s in active
               if not (presence[:, c] & (assign == s)).any()]
    if missing:
        log.warning("Could not put every class in every split (%d class/split pairs left empty); "
                    "check_split_classes will report them.", len(missing))
    return assign


def _class_name(value, class_names: Sequence[str] | None) -> str:
    if class_names is not None and isinstance(value, (int, np.integer)) and 0 <= value < len(class_names):
        return str(class_names[value])
    return str(value)


def _join_and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
