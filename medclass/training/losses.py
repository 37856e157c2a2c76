"""Training losses from ``train.loss``, for every task type, with class weights and missing labels.

:func:`build_loss` returns an ``nn.Module`` called as ``loss_fn(logits, task.target(labels))``. The menu:

- ``auto``: the task's own loss (:meth:`medclass.tasks.Task.loss`): cross-entropy for binary, multi-class
  and ordinal tasks; for multi-label tasks the sum of per-label binary cross-entropies (mean over labels).
- ``cross-entropy``: softmax cross-entropy with ``label_smoothing``; one label per image only.
- ``bce``: binary cross-entropy on sigmoid outputs. A binary task in medclass has two softmax outputs (as
  MedMNIST), so ``bce`` is taken on their difference, ``logit[:, 1] - logit[:, 0]``: since
  ``softmax(z)[1] == sigmoid(z1 - z0)`` this is *the same function* as two-class cross-entropy (a test
  checks it), which keeps the model, probabilities and metrics unchanged whichever name is chosen.
  Multi-label: one BCE per label. Multi-class: refused (use cross-entropy; one-vs-rest BCE would train
  sigmoids while the reported probabilities stay softmax).
- ``hinge``: the multi-class SVM margin loss (Crammer-Singer style as in ``nn.MultiMarginLoss``: the mean
  of ``max(0, 1 - z_y + z_j)`` over wrong classes ``j``); multi-label: ``max(0, 1 - s z)`` per label with
  ``s = ±1``.
- ``l1`` and ``huber``: regression only (absolute error; squared near zero and absolute beyond 1), besides
  ``auto``/``mse`` (squared error). The CORAL ordinal head and multi-task models train with their own losses
  (:mod:`medclass.tasks`): ``auto`` only.
- ``mse``: the classic squared error between the probabilities (softmax, or sigmoid per label) and the
  one-hot (or 0/1) targets, averaged over outputs (the Brier score divided by the number of classes).

Class weights (``train.class_weights=balanced``) come from :meth:`Task.balanced_weights`. Softmax tasks
weight each image by its class's weight, normalised by the weights in the batch (as
``nn.CrossEntropyLoss(weight=...)`` does; ``nn.MultiMarginLoss`` divides by the batch size instead).
Multi-label tasks weight the positive term of each label by ``n_negative / n_positive``, CheXNet's
class-weighted BCE (Rajpurkar et al. 2017), as ``pos_weight`` of ``nn.BCEWithLogitsLoss`` does.

Multi-label labels equal to ``-1`` mean *not annotated* (the convention of :mod:`medclass.evaluation`):
those entries are left out of every multi-label loss, which averages over the annotated entries only.
When every entry is annotated the multi-label BCE is exactly ``nn.BCEWithLogitsLoss``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LOSSES, TrainConfig, check_table_keys
from ..errors import ConfigError, did_you_mean
from ..tasks import Task

__all__ = [
    "LOSS_BUILDERS",
    "MISSING",
    "BinaryBCEWithLogitsLoss",
    "MaskedBCEWithLogitsLoss",
    "MultiLabelHingeLoss",
    "MultiLabelMSELoss",
    "ProbabilityMSELoss",
    "build_loss",
]

MISSING = -1  # a multi-label entry that was not annotated


def build_loss(task: Task, cfg: TrainConfig, class_weights: torch.Tensor | None = None) -> nn.Module:
    """The training loss that ``cfg.loss`` names, for ``task``.

    Args:
        task: the task being trained (decides between softmax and per-label losses).
        cfg: reads ``loss`` and ``label_smoothing``.
        class_weights: from :meth:`Task.balanced_weights` (per class, or per label as positive weights),
            or ``None`` for an unweighted loss.

    Raises:
        ConfigError: the loss does not apply to the task (e.g. ``cross-entropy`` on a multi-label task).
    """
    builder = LOSS_BUILDERS.get(cfg.loss)
    if builder is None:
        raise ConfigError(f"Unknown train.loss {cfg.loss!r}.{did_you_mean(cfg.loss, LOSSES)} "
                          f"Known: {', '.join(LOSSES)}.")
    return builder(task, None if class_weights is None else class_weights.float(), cfg.label_smoothing)


# --- one builder per name (the names are declared in medclass.config) -------------------------------------------
# Each takes (task, class weights or None, label smoothing) and refuses a task it does not apply to.


def _check_classification(task: Task, name: str) -> None:
    """Refuse a classification loss for a regression task, or for a task that trains with its own loss."""
    if task.regression:
        raise ConfigError(f"train.loss={name} is a classification loss; a regression task takes auto (squared "
                          f"error), mse, l1 or huber.")
    if task.head == "coral" or task.kind.multihead:
        what = "the CORAL head" if task.head == "coral" else "a multi-task model"
        own = ("binary cross-entropy per grade threshold" if task.head == "coral" else
               "the sum of the heads' cross-entropies")
        raise ConfigError(f"train.loss={name} does not apply to {what}; use train.loss=auto (its own loss: {own}).")


def _auto(task: Task, w: torch.Tensor | None, smoothing: float) -> nn.Module:
    if task.multilabel:
        return MaskedBCEWithLogitsLoss(pos_weight=w, label_smoothing=smoothing)
    return task.loss(smoothing, w)


def _cross_entropy(task: Task, w: torch.Tensor | None, smoothing: float) -> nn.Module:
    if task.kind.multihead:  # a multi-task model's own loss is the sum of its heads' cross-entropies
        return task.loss(smoothing)
    _check_classification(task, "cross-entropy")
    if task.multilabel:
        raise ConfigError(f"train.loss=cross-entropy needs one label per image, but the {task.name} task has "
                          f"several. Use train.loss=auto (per-label binary cross-entropy), bce, hinge or mse.")
    return nn.CrossEntropyLoss(weight=w, label_smoothing=smoothing)


def _bce(task: Task, w: torch.Tensor | None, smoothing: float) -> nn.Module:
    _check_classification(task, "bce")
    if task.multilabel:
        return MaskedBCEWithLogitsLoss(pos_weight=w, label_smoothing=smoothing)
    if not task.kind.has_positive_class:
        raise ConfigError(f"train.loss=bce applies to binary and multilabel tasks, not {task.name}. Use "
                          f"train.loss=cross-entropy (or auto) for one label among several classes.")
    return BinaryBCEWithLogitsLoss(weight=w, label_smoothing=smoothing)


def _hinge(task: Task, w: torch.Tensor | None, smoothing: float) -> nn.Module:
    _check_classification(task, "hinge")
    return MultiLabelHingeLoss(pos_weight=w) if task.multilabel else nn.MultiMarginLoss(weight=w)


def _mse(task: Task, w: torch.Tensor | None, smoothing: float) -> nn.Module:
    if task.regression:
        return nn.MSELoss()
    _check_classification(task, "mse")
    return MultiLabelMSELoss(pos_weight=w) if task.multilabel else ProbabilityMSELoss(weight=w)


def _regression_only(name: str, loss: type[nn.Module]):
    def build(task: Task, w: torch.Tensor | None, smoothing: float) -> nn.Module:
        if not task.regression:
            raise ConfigError(f"train.loss={name} is a regression loss, but the task is {task.name}. Use "
                              f"train.loss=auto.")
        return loss()
    return build


LOSS_BUILDERS: dict[str, Callable[[Task, torch.Tensor | None, float], nn.Module]] = {
    "auto": _auto,
    "cross-entropy": _cross_entropy,
    "bce": _bce,
    "hinge": _hinge,
    "mse": _mse,
    "l1": _regression_only("l1", nn.L1Loss),
    "huber": _regression_only("huber", nn.HuberLoss),
}
check_table_keys(LOSS_BUILDERS, LOSSES, "medclass.training.losses.LOSS_BUILDERS")


def _weighted_mean(per_sample: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean over the batch, each image weighted by its class's weight (normalised, as CrossEntropyLoss)."""
    if weight is None:
        return per_sample.mean()
    w = weight[target]
    return (per_sample * w).sum() / w.sum()


class BinaryBCEWithLogitsLoss(nn.Module):
    """BCE of a two-output binary model on ``logit[:, 1] - logit[:, 0]``; targets are class indices 0/1.

    ``weight`` holds the two class weights (each image weighted by its class, normalised by the batch's
    weights); ``label_smoothing`` moves the targets to ``eps/2`` and ``1 - eps/2``.
    """

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or logits.shape[1] != 2:
            raise ValueError(f"BinaryBCEWithLogitsLoss expects logits of shape (n, 2), got {tuple(logits.shape)}.")
        z = logits[:, 1] - logits[:, 0]
        t = target.to(z.dtype)
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / 2
        per = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        return _weighted_mean(per, target.long(), self.weight)


class ProbabilityMSELoss(nn.Module):
    """Mean squared error between softmax probabilities and one-hot targets (optionally class-weighted)."""

    def __init__(self, weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits.float(), dim=1)
        onehot = F.one_hot(target.long(), logits.shape[1]).to(p.dtype)
        return _weighted_mean((p - onehot).pow(2).mean(1), target.long(), self.weight)


class _MaskedMultiLabel(nn.Module):
    """Shared by the multi-label losses: entries labelled -1 are left out; positives weighted by pos_weight."""

    def __init__(self, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def elementwise(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        known = target >= 0
        t = target.clamp(min=0).to(logits.dtype)
        per = self.elementwise(logits, t)
        if self.pos_weight is not None:
            per = per * torch.where(t > 0.5, self.pos_weight.to(per.dtype), torch.ones_like(per))
        return _masked_mean(per, known)


def _masked_mean(per: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    # A batch without a single annotated entry contributes a zero loss (and zero gradient), not NaN.
    return (per * known).sum() / known.sum().clamp(min=1)


class MaskedBCEWithLogitsLoss(nn.Module):
    """Per-label binary cross-entropy (mean over annotated entries) with CheXNet's positive weights.

    Entries whose target is ``-1`` are not annotated and are left out. With every entry annotated and no
    label smoothing this computes exactly ``nn.BCEWithLogitsLoss(pos_weight=pos_weight)``.
    """

    def __init__(self, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        known = target >= 0
        if not self.label_smoothing and bool(known.all()):
            return F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)
        t = target.clamp(min=0).to(logits.dtype)
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / 2
        per = F.binary_cross_entropy_with_logits(logits, t, pos_weight=self.pos_weight, reduction="none")
        return _masked_mean(per, known)


class MultiLabelHingeLoss(_MaskedMultiLabel):
    """Binary hinge ``max(0, 1 - s * z)`` per label, ``s = +1`` for positives and ``-1`` for negatives."""

    def elementwise(self, logits, target):
        return F.relu(1 - (2 * target - 1) * logits)


class MultiLabelMSELoss(_MaskedMultiLabel):
    """Squared error between each label's sigmoid probability and its 0/1 target."""

    def elementwise(self, logits, target):
        return (torch.sigmoid(logits.float()) - target.float()).pow(2)
