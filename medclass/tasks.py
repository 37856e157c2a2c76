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

from .errors import ConfigError, did_you_mean
from .evaluation.metrics import medmnist_acc, medmnist_auc, medmnist_auc_se, regression_metrics

__all__ = ["Task", "get_task", "task_from_meta", "split_heads", "TASKS", "CoralLoss", "MultiTaskLoss",
           "coral_probabilities", "attach_coral_head"]

HEADS = ("softmax", "coral")


@dataclass(frozen=True)
class Task:
    name: str
    multilabel: bool = False
    head: str = "softmax"
    heads: tuple[int, ...] = ()  # multitask: classes per head
    # regression: the network predicts (value - target_mean) / target_std, the training split's statistics, so
    # a target in months or millilitres trains like one near zero; probabilities() maps back to the value
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def regression(self) -> bool:
        return self.name == "regression"

    @property
    def monitor(self) -> str:
        """The validation metric that chooses the checkpoint (higher is better)."""
        return "val_r2" if self.regression else "val_auc"

    def to_meta(self) -> dict[str, Any]:
        """What a checkpoint records about the task (read back by :func:`task_from_meta`)."""
        out: dict[str, Any] = {"task": self.name, "head": "coral" if self.head == "coral" else "auto"}
        if self.name == "multitask":
            out["task_heads"] = list(self.heads)
        if self.regression:
            out.update(target_mean=self.target_mean, target_std=self.target_std)
        return out

    def decide(self, proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Decisions from :meth:`probabilities`: class indices (binary: class 1 when its probability >
        ``threshold``), 0/1 per label (multi-label), one class per head (multi-task), the value (regression)."""
        if self.multilabel:
            return (proba > threshold).astype(int)
        if self.regression:
            return proba[:, 0]
        if self.name == "multitask":
            return np.stack([p.argmax(1) for p in split_heads(proba, self.heads)], axis=1)
        if self.name == "binary":
            return (proba[:, 1] > threshold).astype(int)
        return proba.argmax(1)

    def describe(self, decisions: np.ndarray, classes: list[str] | tuple[str, ...]) -> list[str]:
        """Each decision of :meth:`decide` in words: class name, ``;``-joined labels, value, or a class per head."""
        if self.multilabel:
            return [";".join(n for n, v in zip(classes, d) if v) or "(none)" for d in decisions]
        if self.regression:
            return [f"{float(d):.6g}" for d in decisions]
        if self.name == "multitask":
            offsets = np.cumsum([0, *self.heads])[:-1]
            return [";".join(classes[o + int(c)] for o, c in zip(offsets, d)) for d in decisions]
        return [classes[int(d)] for d in decisions]

    def num_outputs(self, num_classes: int) -> int:
        if self.head == "coral":
            return num_classes - 1
        if self.name == "multitask":
            return sum(self.heads)
        if self.regression:
            return 1
        return num_classes

    def loss(self, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None) -> nn.Module:
        """The training loss; ``class_weights`` from :meth:`balanced_weights` (or ``None``)."""
        if self.head == "coral":
            return CoralLoss()
        if self.regression:
            return nn.MSELoss()
        if self.name == "multitask":
            return MultiTaskLoss(self.heads, label_smoothing)
        if self.multilabel:
            return nn.BCEWithLogitsLoss(pos_weight=class_weights)
        return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)

    def balanced_weights(self, labels: np.ndarray, num_classes: int) -> torch.Tensor | None:
        """Class weights inversely proportional to frequency (``None`` where the task has no classes to weight).

        Softmax tasks: ``n / (k * n_c)`` per class (scikit-learn's "balanced"), so every class carries the
        same total weight. Multi-label: ``n_negative / n_positive`` per label as the positive weight of
        the binary cross-entropy (CheXNet, Rajpurkar et al. 2017). A class absent from ``labels`` gets 1.
        Regression, multi-task and CORAL heads are trained unweighted.
        """
        if self.regression or self.name == "multitask" or self.head == "coral":
            return None
        y = np.asarray(labels)
        if self.multilabel:
            known = y >= 0
            pos = ((y == 1) & known).sum(0).astype(float)
            neg = ((y == 0) & known).sum(0).astype(float)
            w = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
        else:
            counts = np.bincount(y, minlength=num_classes).astype(float)
            w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 1.0)
        return torch.tensor(w, dtype=torch.float32)

    def target(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as the loss expects them: class indices (long), 0/1 floats (multi-label), values (regression)."""
        if self.regression:
            return (labels.float().reshape(-1, 1) - self.target_mean) / self.target_std
        return labels.float() if self.multilabel else labels.long()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``(n, K)`` probabilities (regression: the ``(n, 1)`` predictions; multi-task: the heads side by side)."""
        if self.head == "coral":
            return coral_probabilities(logits)
        if self.regression:
            return logits.float() * self.target_std + self.target_mean
        if self.name == "multitask":
            return torch.cat([torch.softmax(z, dim=1) for z in logits.split(list(self.heads), dim=1)], dim=1)
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)

    def validation_metrics(self, labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        """The per-epoch validation numbers in ``history.csv`` (besides the loss); includes :attr:`monitor`."""
        if self.regression:
            m = regression_metrics(labels, probs[:, 0]) if len(labels) else {"mae": np.nan, "r2": np.nan}
            return {"val_mae": m["mae"], "val_r2": m["r2"]}
        if self.name == "multitask":
            aucs, ses, accs = [], [], []
            for h, p in enumerate(split_heads(probs, self.heads)):
                y = labels[:, h]
                known = y >= 0
                kind = "binary" if self.heads[h] == 2 else "multiclass"
                aucs.append(medmnist_auc(y[known], p[known], kind))
                ses.append(medmnist_auc_se(y[known], p[known], kind))
                accs.append(medmnist_acc(y[known], p[known], kind, threshold))
            defined = ~np.isnan(aucs)  # a head whose val labels hold one class has no AUC: mean of the rest
            auc = float(np.mean(np.asarray(aucs)[defined])) if defined.any() else float("nan")
            se = float(np.sqrt(np.sum(np.square(np.asarray(ses)[defined]))) / defined.sum()) if defined.any() \
                else float("nan")
            return {"val_auc": auc, "val_auc_se": se, "val_acc": float(np.mean(accs))}
        return {"val_auc": medmnist_auc(labels, probs, self.name),
                "val_auc_se": medmnist_auc_se(labels, probs, self.name),
                "val_acc": medmnist_acc(labels, probs, self.name, threshold)}


def split_heads(probs: np.ndarray, heads: tuple[int, ...]) -> list[np.ndarray]:
    """The ``(n, sum(heads))`` multi-task probabilities as one ``(n, K_h)`` block per head."""
    return np.split(np.asarray(probs), np.cumsum(heads)[:-1], axis=1)


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


TASKS = {
    "binary": Task("binary"),
    "multiclass": Task("multiclass"),
    "ordinal": Task("ordinal"),
    "multilabel": Task("multilabel", multilabel=True),
    "regression": Task("regression"),
    "multitask": Task("multitask"),
}


def get_task(name: str, *, head: str = "auto", heads: tuple[int, ...] = (), target_mean: float = 0.0,
             target_std: float = 1.0) -> Task:
    """The task called ``name``; ``head="coral"`` for the CORAL ordinal head, ``heads`` for a multi-task model,
    ``target_mean``/``target_std`` for the standardised regression target."""
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r}.{did_you_mean(name, TASKS)} Known tasks: {', '.join(TASKS)}.")
    if head not in ("auto", *HEADS):
        raise ConfigError(f"Unknown model.head {head!r}. Known: auto, {', '.join(HEADS)}.")
    if head == "coral" and name != "ordinal":
        raise ConfigError(f"model.head=coral is an ordinal head (grades in order), but the task is {name}. Set "
                          f"data.task=ordinal for graded labels, or model.head=auto.")
    if name == "multitask":
        if len(heads) < 2 or min(heads) < 2:
            raise ConfigError(f"A multi-task model needs at least two heads of at least two classes each; got "
                              f"{list(heads)}. Give several label columns (data.label_columns) with "
                              f"data.task=multitask.")
        return Task("multitask", heads=tuple(int(h) for h in heads))
    if name == "regression":
        if not (math.isfinite(target_std) and target_std > 0):
            raise ConfigError(f"The regression target's sd must be a positive number, got {target_std}; are all "
                              f"training values equal?")
        return Task("regression", target_mean=float(target_mean), target_std=float(target_std))
    return Task(name, TASKS[name].multilabel, "coral" if head == "coral" else "softmax")


def task_from_meta(meta: Mapping[str, Any]) -> Task:
    """The task a checkpoint's metadata describes (older checkpoints: no head, no heads)."""
    return get_task(meta["task"], head=meta.get("head", "auto"), heads=tuple(meta.get("task_heads", ())),
                    target_mean=meta.get("target_mean", 0.0), target_std=meta.get("target_std", 1.0))
