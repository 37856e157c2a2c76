"""Task kinds on arrays: what each kind's labels look like and how they are read, counted, decided, described
and scored. The one place that tells binary, multiclass, ordinal, multilabel, regression and multitask apart.

Every module that behaves differently per task asks the kind, ``get_kind(task).metrics(...)``, instead of
comparing task names, as scikit-learn routes its metrics through ``type_of_target``. The kinds sit in one
table, :data:`KINDS`, keyed by the names :data:`medclass.config.TASKS` declares; an import-time check keeps
the two equal. The table lives in ``evaluation/`` because it needs nothing but NumPy and the metric
functions, so predictions from any tool are graded without PyTorch; :class:`medclass.tasks.Task` adds the
network's side (output activation, loss) by the kind's :attr:`~TaskKind.output` and delegates the rest here.

Labels, by kind (``-1`` marks a missing label wherever one can be missing):

- binary, multiclass, ordinal: ``(n,)`` class indices; binary decisions use MedMNIST's rule (class 1 when its
  probability > threshold), the others the arg-max; ordinal classes are grades in order;
- multilabel: ``(n, L)`` 0/1 per label, from one 0/1 column per label;
- regression: ``(n,)`` numbers; the "probabilities" are the ``(n, 1)`` predicted values;
- multitask: ``(n, H)`` one class index per head, ``heads`` giving each head's number of classes; the
  probabilities are the heads' softmax blocks side by side.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

from ..config import TASKS, check_table_keys
from ..errors import ConfigError, DataError, did_you_mean
from ..utils.text import natural_key
from .metrics import (
    MISSING,
    auc_or_nan,
    average_precision_or_nan,
    binary_counts,
    mean_auc_standard_error,
    multiclass_metrics,
    multilabel_metrics,
    ordinal_metrics,
    regression_metrics,
)
from .weighted import (
    binary_weighted_metrics,
    multiclass_weighted_metrics,
    multilabel_weighted_metrics,
    regression_weighted_metrics,
    weighted_quadratic_kappa,
)

__all__ = [
    "KINDS",
    "OUTPUTS",
    "TaskKind",
    "class_kind",
    "classification_metrics",
    "get_kind",
    "medmnist_acc",
    "medmnist_auc",
    "medmnist_auc_se",
]

OUTPUTS = ("softmax", "sigmoid", "value", "heads")  # the network's output forms (see medclass.tasks)
_MULTILABEL_CELLS = ("0", "1", "", "-1", "0.0", "1.0")


@dataclass(frozen=True)
class TaskKind:
    """One task kind. The base class is a single-label classification over class indices (multiclass); the
    other kinds override what differs. ``heads`` is set for multitask only (:func:`get_kind`)."""

    heads: tuple[int, ...] = ()  # multitask: classes per head

    name: ClassVar[str] = ""
    output: ClassVar[str] = "softmax"  # one of OUTPUTS: what the network's outputs are
    class_index: ClassVar[bool] = True  # labels are (n,) class indices
    multilabel: ClassVar[bool] = False  # labels are (n, L) 0/1, one column per label
    multihead: ClassVar[bool] = False  # labels are (n, H) class indices, one column per head
    values: ClassVar[bool] = False  # labels are numbers, not classes
    has_positive_class: ClassVar[bool] = False  # binary: a positive class, operating points, ROC curves
    ordered: ClassVar[bool] = False  # classes are grades in order (ordinal heads such as CORAL apply)
    taxonomy: ClassVar[bool] = False  # classes can be grouped into coarse classes (eval.taxonomy)
    named_classes: ClassVar[bool] = True  # class names come from the label cells (not from column names)
    monitor: ClassVar[str] = "val_auc"  # the validation metric that chooses the checkpoint (higher is better)
    summary_keys: ClassVar[tuple[str, ...]] = ("auc", "acc")  # the two numbers a log line shows
    subgroup_keys: ClassVar[tuple[str, ...]] = ("auc", "acc", "sensitivity", "specificity", "ppv", "npv", "f1")

    @property
    def single_label(self) -> bool:
        """One label per image (a class or a value), so one heatmap explains one prediction."""
        return not (self.multilabel or self.multihead)

    @property
    def needs_classes_in_every_split(self) -> bool:
        """Every class (every label's positives) must appear in every split, or its metrics are undefined."""
        return self.class_index or self.multilabel

    @property
    def default_positive_label(self) -> int | None:
        """The class reported as positive unless the dataset says otherwise."""
        return 1 if self.has_positive_class else None

    # --- reading labels from a manifest -------------------------------------------------------------------

    def column_problem(self, columns: Sequence[str]) -> str | None:
        """Why ``data.label_columns`` does not suit this kind (``None`` when it does)."""
        if len(columns) > 1:
            return (f"data.task={self.name} takes one label column, but data.label_columns names {len(columns)}. "
                    f"Use data.task=multitask (one head per column) or multilabel (0/1 columns).")
        return None

    def cell_problem(self, values: Sequence[str], columns: Sequence[str], classes: Sequence[str]) -> str | None:
        """Why one row's label cells (stripped) cannot be used (``None`` when they can); ``classes`` are
        ``data.classes`` (empty: any value is a class)."""
        if not values[0]:
            return f"the label cell '{columns[0]}' is empty"
        if classes and values[0] not in classes:
            return (f"label {values[0]!r} is not one of the classes {', '.join(classes)} (data.classes)"
                    f"{did_you_mean(values[0], classes)}")
        return None

    def encode(self, raw: Sequence[Sequence[str]], columns: Sequence[str], classes: Sequence[str],
               where: str) -> tuple[np.ndarray, tuple[str, ...], dict]:
        """Label arrays from the rows' label cells (validated by :meth:`cell_problem`).

        Returns:
            ``(labels, class names, facts)``; facts are what a dataset card adds (multitask: heads).
        """
        values = [r[0] for r in raw]
        names = tuple(classes) or tuple(sorted(set(values), key=natural_key))
        if len(names) < 2:
            raise DataError(f"{where}: the label column '{columns[0]}' holds only one class ({names[0]!r}). A "
                            f"classifier needs at least two; check the column or the file.")
        index = {c: k for k, c in enumerate(names)}
        return np.array([index[v] for v in values], np.int64), names, {}

    def strata(self, labels: np.ndarray, classes: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
        """Labels to stratify splits on, with their names."""
        return labels, classes

    # --- counting ------------------------------------------------------------------------------------------

    def class_counts(self, labels: np.ndarray, n_classes: int) -> dict:
        """What a dataset card records about one split's labels (besides its size)."""
        return {"per_class": np.bincount(labels, minlength=n_classes).tolist()}

    def count_text(self, labels: np.ndarray, classes: Sequence[str]) -> str:
        """One split's labels in words, for ``medclass data check``."""
        return ", ".join(f"{c} {int((labels == k).sum())}" for k, c in enumerate(classes))

    def class_support(self, labels: np.ndarray, names: Sequence[str]) -> list[tuple[str, int]]:
        """The examples behind each class's numbers, e.g. ``("class 'benign'", 3)`` (none for values)."""
        counts = np.bincount(labels.astype(int), minlength=len(names)) if len(labels) else np.zeros(len(names), int)
        return [(f"class {c!r}", int(n)) for c, n in zip(names, counts)]

    def subgroup_counts(self, labels: np.ndarray, n_classes: int) -> list[int] | None:
        """Examples per class in a subgroup (``None`` where classes are not counted)."""
        return np.bincount(labels, minlength=n_classes).tolist()

    # --- decisions -----------------------------------------------------------------------------------------

    def as_scores(self, proba: np.ndarray) -> np.ndarray:
        """Probabilities from another tool in medclass's layout (binary: one column becomes two)."""
        return proba

    def decide(self, proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Decisions from probabilities: class indices, 0/1 per label, a class per head, or the value."""
        return proba.argmax(1)

    def describe(self, decisions: np.ndarray, classes: Sequence[str]) -> list[str]:
        """Each decision of :meth:`decide` in words: class name, ``;``-joined labels, value, or a class per head."""
        return [classes[int(d)] for d in decisions]

    def output_names(self, classes: Sequence[str]) -> list[str]:
        """Names of the probability columns."""
        return list(classes)

    # --- metrics -------------------------------------------------------------------------------------------

    def auc(self, y: np.ndarray, score: np.ndarray) -> float:
        """MedMNIST's AUC (``medmnist/evaluator.py`` getAUC): here the mean of one-vs-rest AUCs."""
        return float(np.mean([auc_or_nan((y == i).astype(int), score[:, i]) for i in range(score.shape[1])]))

    def acc(self, y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> float:
        """MedMNIST's accuracy (getACC): here of the arg-max."""
        return float(accuracy_score(y, score.argmax(axis=1)))

    def auc_se(self, y: np.ndarray, score: np.ndarray) -> float:
        """Standard error of :meth:`auc` (Hanley-McNeil per binary AUC, combined as independent)."""
        return mean_auc_standard_error([(y.reshape(-1) == i, score[:, i]) for i in range(score.shape[1])])

    def metrics(self, y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...], threshold: float = 0.5,
                positive_label: int | None = None) -> dict:
        """Every headline number of one split (:func:`classification_metrics`)."""
        out = self._auc_acc(y, proba, threshold)
        mc = self._details(y, proba, labels)
        out.update({k: mc["macro"][k] for k in ("sensitivity", "specificity", "ppv", "npv", "f1",
                                                 "average_precision")})
        out.update(averaging="macro (unweighted mean over classes)",
                   **{k: v for k, v in mc.items() if k not in ("n", "accuracy")})
        return out

    def _auc_acc(self, y: np.ndarray, proba: np.ndarray, threshold: float) -> dict:
        return {"task": self.name, "n": len(y), "auc": self.auc(y, proba), "acc": self.acc(y, proba, threshold)}

    def _details(self, y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> dict:
        return multiclass_metrics(y, proba, labels)

    def weighted_metrics(self, y: np.ndarray, proba: np.ndarray, positive: int, threshold: float) -> dict:
        """The headline metrics as functions of bootstrap weights (:mod:`medclass.evaluation.weighted`)."""
        return multiclass_weighted_metrics(y, proba)

    def validation_metrics(self, labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        """The per-epoch validation numbers of ``history.csv`` (besides the loss); include :attr:`monitor`."""
        return {"val_auc": self.auc(labels, probs), "val_auc_se": self.auc_se(labels, probs),
                "val_acc": self.acc(labels, probs, threshold)}


class Multiclass(TaskKind):
    name = "multiclass"
    taxonomy = True


class Ordinal(TaskKind):
    """Grades in order: scored as multi-class, plus quadratic weighted kappa and grade errors."""

    name = "ordinal"
    ordered = True

    def _details(self, y, proba, labels):
        return ordinal_metrics(y, proba, labels)

    def weighted_metrics(self, y, proba, positive, threshold):
        fns = multiclass_weighted_metrics(y, proba)
        fns["quadratic_weighted_kappa"] = weighted_quadratic_kappa(y, proba.argmax(1), proba.shape[1])
        return fns


class Binary(TaskKind):
    """Two classes with two softmax outputs, as MedMNIST: AUC on the score of class 1, class 1 when its
    probability > threshold."""

    name = "binary"
    has_positive_class = True

    def encode(self, raw, columns, classes, where):
        labels, names, facts = super().encode(raw, columns, classes, where)
        if len(names) != 2:
            raise DataError(f"data.task is binary but the manifest has {len(names)} classes: {', '.join(names)}.")
        return labels, names, facts

    def as_scores(self, proba):
        return np.hstack([1 - proba, proba]) if proba.shape[1] == 1 else proba

    def decide(self, proba, threshold=0.5):
        return (proba[:, 1] > threshold).astype(int)

    def auc(self, y, score):
        return auc_or_nan(y.reshape(-1), score[:, -1] if score.ndim == 2 else score)

    def acc(self, y, score, threshold=0.5):
        s = score[:, -1] if score.ndim == 2 else score
        return float(accuracy_score(y.reshape(-1), s > threshold))

    def auc_se(self, y, score):
        return mean_auc_standard_error([(y.reshape(-1) == 1, score[:, -1] if score.ndim == 2 else score)])

    def metrics(self, y, proba, labels, threshold=0.5, positive_label=None):
        out = self._auc_acc(y, proba, threshold)
        pos = 1 if positive_label is None else int(positive_label)
        pred = (proba[:, 1] > threshold).astype(int)  # MedMNIST's rule, so acc and the counts agree
        out.update(positive_class=labels[pos], threshold=threshold, **binary_counts(y, pred, pos))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out["balanced_accuracy"] = (float(balanced_accuracy_score(y, pred))
                                        if len(np.unique(y)) > 1 else float("nan"))
        out["average_precision"] = average_precision_or_nan((y == pos).astype(int), proba[:, pos])
        out["confusion_matrix"] = confusion_matrix(y, pred, labels=[0, 1]).tolist()
        return out

    def weighted_metrics(self, y, proba, positive, threshold):
        y_pos = y == positive
        pred_pos = (proba[:, 1] > threshold) == (positive == 1)  # MedMNIST's rule, seen from the positive class
        correct = (proba[:, 1] > threshold).astype(int) == y
        return binary_weighted_metrics(y_pos, proba[:, positive], pred_pos, correct)


class Multilabel(TaskKind):
    """Several 0/1 labels per image, one sigmoid output each; scores are means over labels."""

    name = "multilabel"
    output = "sigmoid"
    class_index = False
    multilabel = True
    named_classes = False

    def column_problem(self, columns):
        return None

    def cell_problem(self, values, columns, classes):
        wrong = [(c, v) for c, v in zip(columns, values) if v not in _MULTILABEL_CELLS]
        if wrong:
            got = ", ".join(f"{c}={v!r}" for c, v in wrong)
            return f"multi-label values must be 0, 1 or empty (unknown); got {got}"
        return None

    def encode(self, raw, columns, classes, where):
        labels = np.array([[int(float(v)) if v not in ("", "-1") else MISSING for v in r] for r in raw], np.int64)
        return labels, tuple(columns), {}

    def class_counts(self, labels, n_classes):
        return {"positives_per_label": (labels == 1).sum(0).astype(int).tolist()}

    def count_text(self, labels, classes):
        return ", ".join(f"{c} {int((labels[:, k] == 1).sum())}" for k, c in enumerate(classes))

    def class_support(self, labels, names):
        out = []
        for k, c in enumerate(names):
            out += [(f"positives of label {c!r}", int((labels[:, k] == 1).sum())),
                    (f"negatives of label {c!r}", int((labels[:, k] == 0).sum()))]
        return out

    def subgroup_counts(self, labels, n_classes):
        return None

    def decide(self, proba, threshold=0.5):
        return (proba > threshold).astype(int)

    def describe(self, decisions, classes):
        return [";".join(n for n, v in zip(classes, d) if v) or "(none)" for d in decisions]

    def auc(self, y, score):
        return float(np.mean([auc_or_nan(y[:, i], score[:, i]) for i in range(score.shape[1])]))

    def acc(self, y, score, threshold=0.5):
        pred = score > threshold
        return float(np.mean([accuracy_score(y[:, i], pred[:, i]) for i in range(y.shape[1])]))

    def auc_se(self, y, score):
        cols = [(y[:, i] == 1, score[:, i]) for i in range(score.shape[1])]
        return mean_auc_standard_error([(t[known], s[known]) for (t, s), known in zip(cols, (y >= 0).T)])

    def metrics(self, y, proba, labels, threshold=0.5, positive_label=None):
        known = y != MISSING
        if known.all():
            out = self._auc_acc(y, proba, threshold)
        else:
            out = {"task": self.name, "n": len(y),
                   "auc": float(np.nanmean([auc_or_nan(y[known[:, i], i], proba[known[:, i], i])
                                            for i in range(y.shape[1])])),
                   "acc": float(np.nanmean([accuracy_score(y[known[:, i], i], proba[known[:, i], i] > threshold)
                                            for i in range(y.shape[1])]))}
        ml = multilabel_metrics(y, proba, labels, threshold)
        out.update({k: ml["mean"][k] for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "average_precision")})
        out.update(threshold=threshold, averaging="mean over labels", per_label=ml["per_label"])
        return out

    def weighted_metrics(self, y, proba, positive, threshold):
        return multilabel_weighted_metrics(y, proba, threshold)


class Regression(TaskKind):
    """One number per image (one output, scored with MAE, RMSE, R^2 and correlation)."""

    name = "regression"
    output = "value"
    class_index = False
    values = True
    named_classes = False
    monitor = "val_r2"
    summary_keys = ("mae", "r2")
    subgroup_keys = ("mae", "rmse", "r2", "pearson_r")

    def cell_problem(self, values, columns, classes):
        try:
            if not math.isfinite(float(values[0])):
                raise ValueError
        except ValueError:
            return f"the value {values[0]!r} in '{columns[0]}' is not a finite number (data.task=regression)"
        return None

    def encode(self, raw, columns, classes, where):
        return np.array([float(r[0]) for r in raw], np.float64), (columns[0],), {}

    def strata(self, labels, classes):
        """The value's quintile, so every split spans the range."""
        edges = np.unique(np.quantile(labels, [0.2, 0.4, 0.6, 0.8]))
        bins = np.digitize(labels, edges)
        return bins, tuple(f"quintile {k + 1}" for k in range(int(bins.max()) + 1))

    def class_counts(self, labels, n_classes):
        return {"mean": float(np.mean(labels)) if len(labels) else None,
                "sd": float(np.std(labels)) if len(labels) else None}

    def count_text(self, labels, classes):
        return f"{classes[0]} mean {labels.mean():.3g}, sd {labels.std():.3g}" if len(labels) else "empty"

    def class_support(self, labels, names):
        return []

    def subgroup_counts(self, labels, n_classes):
        return None

    def decide(self, proba, threshold=0.5):
        return proba[:, 0]

    def describe(self, decisions, classes):
        return [f"{float(d):.6g}" for d in decisions]

    def output_names(self, classes):
        return ["value"]

    def metrics(self, y, proba, labels, threshold=0.5, positive_label=None):
        return regression_metrics(y, proba[:, 0])

    def weighted_metrics(self, y, proba, positive, threshold):
        return regression_weighted_metrics(np.asarray(y, float).reshape(-1), np.asarray(proba, float)[:, 0])

    def validation_metrics(self, labels, probs, threshold=0.5):
        m = regression_metrics(labels, probs[:, 0]) if len(labels) else {"mae": np.nan, "r2": np.nan}
        return {"val_mae": m["mae"], "val_r2": m["r2"]}


class Multitask(TaskKind):
    """Several classification heads on one backbone, one label column and one softmax block per head; each
    head is scored as the binary or multi-class task it is (:func:`class_kind`)."""

    name = "multitask"
    output = "heads"
    class_index = False
    multihead = True

    def column_problem(self, columns):
        if len(columns) < 2:
            return (f"data.task=multitask needs one label column per head (data.label_columns), got "
                    f"{len(columns)}: {', '.join(columns)}.")
        return None

    def cell_problem(self, values, columns, classes):
        return None if any(values) else f"every label cell ({', '.join(columns)}) is empty"

    def encode(self, raw, columns, classes, where):
        """One class index per head (column), -1 where the cell is empty; class names ``column:value``."""
        labels = np.full((len(raw), len(columns)), MISSING, np.int64)
        names: list[str] = []
        heads: list[int] = []
        for h, col in enumerate(columns):
            values = sorted({r[h] for r in raw if r[h]}, key=natural_key)
            if len(values) < 2:
                raise DataError(f"{where}: the label column '{col}' holds {len(values)} class(es); each head "
                                f"of a multi-task model needs at least two.")
            index = {v: k for k, v in enumerate(values)}
            labels[:, h] = [index[r[h]] if r[h] else MISSING for r in raw]
            names += [f"{col}:{v}" for v in values]
            heads.append(len(values))
        return labels, tuple(names), {"heads": heads, "head_names": list(columns)}

    def strata(self, labels, classes):
        """The first head's class, a missing label a stratum of its own."""
        k = self.heads[0]
        return np.where(labels[:, 0] < 0, k, labels[:, 0]), (*classes[:k], "missing")

    def _head_slices(self, classes: Sequence[str]) -> list[tuple[int, Sequence[str]]]:
        bounds = np.cumsum([0, *self.heads])
        return [(h, classes[bounds[h]:bounds[h + 1]]) for h in range(len(self.heads))]

    def class_counts(self, labels, n_classes):
        return {"per_head": [np.bincount(labels[:, h][labels[:, h] >= 0], minlength=k).tolist()
                             for h, k in enumerate(self.heads)]}

    def count_text(self, labels, classes):
        return "; ".join(", ".join(f"{c} {int((labels[:, h] == k).sum())}" for k, c in enumerate(names))
                         for h, names in self._head_slices(classes))

    def split_heads(self, probs: np.ndarray) -> list[np.ndarray]:
        """The ``(n, sum(heads))`` probabilities as one ``(n, K_h)`` block per head."""
        return np.split(np.asarray(probs), np.cumsum(self.heads)[:-1], axis=1)

    def decide(self, proba, threshold=0.5):
        return np.stack([p.argmax(1) for p in self.split_heads(proba)], axis=1)

    def describe(self, decisions, classes):
        offsets = np.cumsum([0, *self.heads])[:-1]
        return [";".join(classes[o + int(c)] for o, c in zip(offsets, d)) for d in decisions]

    def metrics(self, y, proba, labels, threshold=0.5, positive_label=None):
        raise ValueError("A multi-task model is scored head by head: call assess(..., heads=[(name, classes), ...]).")

    def weighted_metrics(self, y, proba, positive, threshold):
        raise ValueError("A multi-task model is scored head by head; bootstrap each head's task instead.")

    def validation_metrics(self, labels, probs, threshold=0.5):
        aucs, ses, accs = [], [], []
        for h, p in enumerate(self.split_heads(probs)):
            y = labels[:, h]
            known = y >= 0
            kind = class_kind(self.heads[h])
            aucs.append(kind.auc(y[known], p[known]))
            ses.append(kind.auc_se(y[known], p[known]))
            accs.append(kind.acc(y[known], p[known], threshold))
        defined = ~np.isnan(aucs)  # a head whose val labels hold one class has no AUC: mean of the rest
        auc = float(np.mean(np.asarray(aucs)[defined])) if defined.any() else float("nan")
        se = float(np.sqrt(np.sum(np.square(np.asarray(ses)[defined]))) / defined.sum()) if defined.any() \
            else float("nan")
        return {"val_auc": auc, "val_auc_se": se, "val_acc": float(np.mean(accs))}


KINDS: dict[str, TaskKind] = {k.name: k for k in (Binary(), Multiclass(), Multilabel(), Ordinal(), Regression(),
                                                   Multitask())}
check_table_keys(KINDS, TASKS, "medclass.evaluation.kinds.KINDS")
for _k in KINDS.values():
    if _k.output not in OUTPUTS:
        raise ImportError(f"task kind {_k.name} has output {_k.output!r}, not one of {', '.join(OUTPUTS)}.")


def get_kind(name: str, *, heads: Sequence[int] = ()) -> TaskKind:
    """The kind of task ``name`` (a multi-task kind with its ``heads``: the number of classes per head)."""
    if name not in KINDS:
        raise ConfigError(f"Unknown task {name!r}.{did_you_mean(name, KINDS)} Known tasks: {', '.join(KINDS)}.")
    kind = KINDS[name]
    return dataclasses.replace(kind, heads=tuple(int(h) for h in heads)) if heads else kind


def class_kind(n_classes: int) -> TaskKind:
    """The kind of a single-label classification over ``n_classes`` classes: binary for two, else multiclass
    (a multi-task head, coarse classes of a taxonomy, a manifest whose task is left to its labels)."""
    return KINDS["binary"] if n_classes == 2 else KINDS["multiclass"]


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, task: str, labels: tuple[str, ...],
                           threshold: float = 0.5, positive_label: int | None = None) -> dict:
    """Every number ``metrics/<split>.json`` holds, for one split.

    The headline keys are the same for every classification task: ``n``, ``auc`` and ``acc`` (MedMNIST's
    definitions), ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``f1`` (binary: for the positive
    class; otherwise macro averages) and ``confusion_matrix``; the task's own details follow. A regression
    task gets :func:`~medclass.evaluation.metrics.regression_metrics` of ``y_score[:, 0]``.

    Args:
        y_true: ``(n,)`` class indices, or ``(n, L)`` 0/1 (-1 = missing) for multi-label.
        y_score: ``(n, n_classes)`` probabilities.
        task: binary, multiclass, ordinal, multilabel (or regression).
        labels: class (or label) names, in index order.
        threshold: binary: MedMNIST's threshold on the class-1 probability; multi-label: per label.
        positive_label: binary only: the class reported as "positive" for sensitivity etc. (default 1).
    """
    return get_kind(task).metrics(np.asarray(y_true), np.asarray(y_score, dtype=float), labels, threshold,
                                  positive_label)


def medmnist_auc(y_true: np.ndarray, y_score: np.ndarray, task: str) -> float:
    """MedMNIST's AUC. ``y_score`` is ``(n, n_classes)`` (or ``(n,)`` for binary positive-class scores).

    Follows ``medmnist/evaluator.py`` (getAUC), so numbers compare with the MedMNIST v2 paper: binary AUC is on
    the score of class 1; multi-class AUC is the mean of one-vs-rest AUCs; multi-label AUC the mean over labels.
    """
    return get_kind(task).auc(np.asarray(y_true), np.asarray(y_score, dtype=float))


def medmnist_acc(y_true: np.ndarray, y_score: np.ndarray, task: str, threshold: float = 0.5) -> float:
    """MedMNIST's accuracy (getACC): ``score > threshold`` for binary and multi-label, arg-max otherwise."""
    return get_kind(task).acc(np.asarray(y_true), np.asarray(y_score, dtype=float), threshold)


def medmnist_auc_se(y_true: np.ndarray, y_score: np.ndarray, task: str) -> float:
    """Standard error of :func:`medmnist_auc`: Hanley-McNeil per binary AUC; for a mean over classes or labels,
    ``sqrt(sum se**2) / k`` over those with a defined AUC, treating them as independent (an approximation)."""
    return get_kind(task).auc_se(np.asarray(y_true), np.asarray(y_score, dtype=float))

