"""Task types: what the network outputs, which loss trains it, how outputs become probabilities.

- ``binary``: two softmax outputs trained with cross-entropy, as in MedMNIST (so its AUC and accuracy
  definitions apply unchanged); ``predict_proba`` returns ``(n, 2)``.
- ``multiclass``: one softmax output per class.
- ``ordinal`` (grades in order): ``head="softmax"`` (the default) trains one softmax output per grade, as
  MedMNIST trains RetinaMNIST; ``head="coral"`` is the rank-consistent cumulative-link head of CORAL (Cao,
  Mirjalili & Raschka 2020): the classifier gives one score ``g(x)`` and ``K - 1`` learned biases make the
  logits ``g(x) + b_k`` of ``P(grade > k)``, trained with one binary cross-entropy per threshold. Both give
  ``(n, K)`` grade probabilities, scored with quadratic weighted kappa besides AUC and accuracy.
- ``multilabel``: one sigmoid output per label, summed binary cross-entropies.
- ``regression``: one output trained with squared error (``train.loss=l1`` or ``huber`` for robust variants)
  on the target standardised with the training split's mean and sd (stored with the weights);
  ``probabilities`` returns the predicted value in the target's units. Scored with MAE, RMSE, R^2 and
  correlation.
- ``multitask``: several classification heads on one backbone (e.g. two gradings of one fundus image), one
  softmax block per head in the output (``heads`` gives each head's number of classes); the loss is the sum of
  the heads' cross-entropies; labels are ``(n, n_heads)`` class indices, -1 for a missing one.

A fine-to-coarse class taxonomy is an evaluation of a ``multiclass`` model (see
:mod:`medclass.evaluation.taxonomy`), not a task of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import check_table_keys
from .errors import ConfigError
from .evaluation.kinds import KINDS, OUTPUTS, TaskKind, get_kind

__all__ = ["Task", "get_task", "task_from_meta", "split_heads", "TASKS", "CoralLoss", "MultiTaskLoss",
           "coral_probabilities", "attach_coral_head"]

HEADS = ("softmax", "coral")


@dataclass(frozen=True)
class Task:
    """A task as training needs it: its kind (:mod:`medclass.evaluation.kinds`, which decides, describes and
    scores) plus the network's side, chosen by the output form (:data:`OUTPUT_FORMS`)."""

    name: str
    multilabel: bool = False
    head: str = "softmax"
    heads: tuple[int, ...] = ()  # multitask: classes per head
    # regression: the network predicts (value - target_mean) / target_std, the training split's statistics, so
    # a target in months or millilitres trains like one near zero; probabilities() maps back to the value
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def kind(self) -> TaskKind:
        """What the labels are and how predictions are decided, described and scored."""
        return get_kind(self.name, heads=self.heads)

    @property
    def regression(self) -> bool:
        return KINDS[self.name].values

    @property
    def monitor(self) -> str:
        """The validation metric that chooses the checkpoint (higher is better)."""
        return KINDS[self.name].monitor

    @property
    def _output(self) -> _Output:
        return OUTPUT_FORMS["coral" if self.head == "coral" else KINDS[self.name].output]

    def to_meta(self) -> dict[str, Any]:
        """What a checkpoint records about the task (read back by :func:`task_from_meta`)."""
        out: dict[str, Any] = {"task": self.name, "head": "coral" if self.head == "coral" else "auto"}
        if KINDS[self.name].multihead:
            out["task_heads"] = list(self.heads)
        if self.regression:
            out.update(target_mean=self.target_mean, target_std=self.target_std)
        return out

    def decide(self, proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Decisions from :meth:`probabilities`: class indices (binary: class 1 when its probability >
        ``threshold``), 0/1 per label (multi-label), one class per head (multi-task), the value (regression)."""
        return self.kind.decide(proba, threshold)

    def describe(self, decisions: np.ndarray, classes: list[str] | tuple[str, ...]) -> list[str]:
        """Each decision of :meth:`decide` in words: class name, ``;``-joined labels, value, or a class per head."""
        return self.kind.describe(decisions, classes)

    def num_outputs(self, num_classes: int) -> int:
        return self._output.num_outputs(self, num_classes)

    def loss(self, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None) -> nn.Module:
        """The training loss; ``class_weights`` from :meth:`balanced_weights` (or ``None``)."""
        return self._output.loss(self, label_smoothing, class_weights)

    def balanced_weights(self, labels: np.ndarray, num_classes: int) -> torch.Tensor | None:
        """Class weights inversely proportional to frequency (``None`` where the task has no classes to weight).

        Softmax tasks: ``n / (k * n_c)`` per class (scikit-learn's "balanced"), so every class carries the
        same total weight. Multi-label: ``n_negative / n_positive`` per label as the positive weight of
        the binary cross-entropy (CheXNet, Rajpurkar et al. 2017). A class absent from ``labels`` gets 1.
        Regression, multi-task and CORAL heads are trained unweighted.
        """
        w = self._output.balanced_weights(np.asarray(labels), num_classes)
        return None if w is None else torch.tensor(w, dtype=torch.float32)

    def target(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as the loss expects them: class indices (long), 0/1 floats (multi-label), values (regression)."""
        return self._output.target(self, labels)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``(n, K)`` probabilities (regression: the ``(n, 1)`` predictions; multi-task: the heads side by side)."""
        return self._output.probabilities(self, logits)

    def validation_metrics(self, labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        """The per-epoch validation numbers in ``history.csv`` (besides the loss); includes :attr:`monitor`."""
        return self.kind.validation_metrics(labels, probs, threshold)


def split_heads(probs: np.ndarray, heads: tuple[int, ...]) -> list[np.ndarray]:
    """The ``(n, sum(heads))`` multi-task probabilities as one ``(n, K_h)`` block per head."""
    return get_kind("multitask", heads=heads).split_heads(probs)


# --- the network's side, by output form ----------------------------------------------------------------------


class _Output:
    """Softmax over classes: one output per class, cross-entropy, class indices as targets."""

    def num_outputs(self, task: Task, num_classes: int) -> int:
        return num_classes

    def probabilities(self, task: Task, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1)

    def target(self, task: Task, labels: torch.Tensor) -> torch.Tensor:
        return labels.long()

    def loss(self, task: Task, label_smoothing: float, class_weights: torch.Tensor | None) -> nn.Module:
        return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)

    def balanced_weights(self, y: np.ndarray, num_classes: int) -> np.ndarray | None:
        counts = np.bincount(y, minlength=num_classes).astype(float)
        return np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 1.0)


class _Sigmoid(_Output):
    """One sigmoid per label, summed binary cross-entropies, 0/1 floats as targets."""

    def probabilities(self, task, logits):
        return torch.sigmoid(logits)

    def target(self, task, labels):
        return labels.float()

    def loss(self, task, label_smoothing, class_weights):
        return nn.BCEWithLogitsLoss(pos_weight=class_weights)

    def balanced_weights(self, y, num_classes):
        known = y >= 0
        pos = ((y == 1) & known).sum(0).astype(float)
        neg = ((y == 0) & known).sum(0).astype(float)
        return np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)


class _Value(_Output):
    """One output, the standardised target, squared error."""

    def num_outputs(self, task, num_classes):
        return 1

    def probabilities(self, task, logits):
        return logits.float() * task.target_std + task.target_mean

    def target(self, task, labels):
        return (labels.float().reshape(-1, 1) - task.target_mean) / task.target_std

    def loss(self, task, label_smoothing, class_weights):
        return nn.MSELoss()

    def balanced_weights(self, y, num_classes):
        return None


class _Heads(_Output):
    """One softmax block per head, the sum of the heads' cross-entropies."""

    def num_outputs(self, task, num_classes):
        return sum(task.heads)

    def probabilities(self, task, logits):
        return torch.cat([torch.softmax(z, dim=1) for z in logits.split(list(task.heads), dim=1)], dim=1)

    def loss(self, task, label_smoothing, class_weights):
        return MultiTaskLoss(task.heads, label_smoothing)

    def balanced_weights(self, y, num_classes):
        return None


class _Coral(_Output):
    """CORAL's ``K - 1`` cumulative logits of an ordinal task (``model.head=coral``)."""

    def num_outputs(self, task, num_classes):
        return num_classes - 1

    def probabilities(self, task, logits):
        return coral_probabilities(logits)

    def loss(self, task, label_smoothing, class_weights):
        return CoralLoss()

    def balanced_weights(self, y, num_classes):
        return None


OUTPUT_FORMS: dict[str, _Output] = {"softmax": _Output(), "sigmoid": _Sigmoid(), "value": _Value(),
                                    "heads": _Heads(), "coral": _Coral()}
check_table_keys(OUTPUT_FORMS, (*OUTPUTS, "coral"), "medclass.tasks.OUTPUT_FORMS")


# --- CORAL (Cao, Mirjalili & Raschka, "Rank consistent ordinal regression", Pattern Recognit. Lett. 2020) ---
# Written here rather than taken from the coral-pytorch package: it is a bias vector, a loss and a cumulative
# difference, too small to earn a dependency. Unlike coral-pytorch's CoralLayer (its own Linear), the biases are
# attached to the zoo model's existing classifier, so transfer strategies, pretrained loading and CAM keep
# finding the classifier by its card's name.


def _add_coral_bias(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
    return output + module.coral_bias  # (n, 1) + (K - 1,) -> (n, K - 1) logits of P(grade > k)


def attach_coral_head(model: nn.Module, classifier: str, num_classes: int) -> nn.Module:
    """Give ``model``'s classifier (a one-output ``nn.Linear`` named ``classifier``) CORAL's ``K - 1`` biases.

    The biases are a parameter of the classifier (``<classifier>.coral_bias``), so they train, freeze and
    load with it; a forward hook adds them to the classifier's single score.
    """
    layer = model.get_submodule(classifier)
    out = getattr(layer, "out_features", None)
    if out != 1:
        raise ConfigError(f"The CORAL head needs a classifier with one output; {classifier!r} has {out}.")
    layer.coral_bias = nn.Parameter(torch.arange(num_classes - 1, 0, -1, dtype=torch.float32) / (num_classes - 1))
    layer.register_forward_hook(_add_coral_bias)
    return model


def coral_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``(n, K)`` grade probabilities from the ``(n, K - 1)`` logits of ``P(grade > k)``.

    CORAL's biases make the cumulative probabilities non-increasing once trained; a running minimum
    guarantees it from the first step, so every grade probability is >= 0 and each row sums to 1.
    """
    above = torch.cummin(torch.sigmoid(logits.float()), dim=1).values
    ones, zeros = torch.ones_like(above[:, :1]), torch.zeros_like(above[:, :1])
    cum = torch.cat([ones, above, zeros], dim=1)  # P(grade > k) for k = -1 .. K-1
    return cum[:, :-1] - cum[:, 1:]


class CoralLoss(nn.Module):
    """Mean over the ``K - 1`` thresholds of the binary cross-entropy of ``P(grade > k)`` (CORAL's loss)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        levels = (target.long().unsqueeze(1) > torch.arange(logits.shape[1], device=logits.device)).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, levels)


class MultiTaskLoss(nn.Module):
    """Sum over heads of each head's cross-entropy; a label of -1 (not annotated) is left out of its head."""

    def __init__(self, heads: tuple[int, ...], label_smoothing: float = 0.0):
        super().__init__()
        self.heads, self.label_smoothing = tuple(heads), label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = logits.new_zeros(())
        for h, z in enumerate(logits.split(list(self.heads), dim=1)):
            y = target[:, h].long()
            known = y >= 0
            if known.any():
                total = total + F.cross_entropy(z[known], y[known], label_smoothing=self.label_smoothing)
        return total


TASKS = {name: Task(name, multilabel=kind.multilabel) for name, kind in KINDS.items()}


def get_task(name: str, *, head: str = "auto", heads: tuple[int, ...] = (), target_mean: float = 0.0,
             target_std: float = 1.0) -> Task:
    """The task called ``name``; ``head="coral"`` for the CORAL ordinal head, ``heads`` for a multi-task model,
    ``target_mean``/``target_std`` for the standardised regression target."""
    kind = get_kind(name)
    if head not in ("auto", *HEADS):
        raise ConfigError(f"Unknown model.head {head!r}. Known: auto, {', '.join(HEADS)}.")
    if head == "coral" and not kind.ordered:
        raise ConfigError(f"model.head=coral is an ordinal head (grades in order), but the task is {name}. Set "
                          f"data.task=ordinal for graded labels, or model.head=auto.")
    if kind.multihead:
        if len(heads) < 2 or min(heads) < 2:
            raise ConfigError(f"A multi-task model needs at least two heads of at least two classes each; got "
                              f"{list(heads)}. Give several label columns (data.label_columns) with "
                              f"data.task=multitask.")
        return Task(name, heads=tuple(int(h) for h in heads))
    if kind.values:
        if not (math.isfinite(target_std) and target_std > 0):
            raise ConfigError(f"The regression target's sd must be a positive number, got {target_std}; are all "
                              f"training values equal?")
        return Task(name, target_mean=float(target_mean), target_std=float(target_std))
    return Task(name, kind.multilabel, "coral" if head == "coral" else "softmax")


def task_from_meta(meta: Mapping[str, Any]) -> Task:
    """The task a checkpoint's metadata describes (older checkpoints: no head, no heads)."""
    return get_task(meta["task"], head=meta.get("head", "auto"), heads=tuple(meta.get("task_heads", ())),
                    target_mean=meta.get("target_mean", 0.0), target_std=meta.get("target_std", 1.0))
