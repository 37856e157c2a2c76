"""The "can it overfit one mini-batch?" check: a model, loss and optimiser that work drive the loss on a
few fixed images to about zero; if they cannot, something is wrong before any real training starts.

The advice comes from Karpathy's "A Recipe for Training Neural Networks" (2019, "overfit one batch")
and the CS231n notes ("make sure you can overfit a very small portion of the training data"): train on
the same one or two batches, regularisation off, and watch the loss. It should fall to near zero. A loss
that explodes says the learning rate is too high; one that barely moves says it is too low, or that
gradients do not reach the weights; one that falls but stalls says the model is too small for even these
few images, or that the labels do not go with the images (a large model memorises shuffled labels too,
only more slowly; a small one cannot).

:func:`overfit_batches` works on copies of the model, optimiser and loss, so the caller's objects are
left as they were. :func:`medclass.runs.diagnostics.sanity_check` builds everything from a run
configuration and calls it.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..tasks import Task
from .loop import TrainStep

log = logging.getLogger(__name__)

__all__ = ["SanityResult", "overfit_batches"]


@dataclass
class SanityResult:
    """The loss curve of an overfitting run on fixed batches, and its verdict.

    ``losses[i]`` is the training loss of step ``i`` (before that step's update). ``start_loss`` and
    ``end_loss`` average the first and the last round over the batches. The check passes when
    ``end_loss <= threshold``. ``batch_accuracy`` is the share of the fixed images (or, multi-label,
    of their annotated labels) predicted right after the last step; ``advice`` says what to try on failure.
    """

    losses: list[float]
    threshold: float
    n_batches: int
    n_images: int
    lr: float
    batch_accuracy: float
    advice: list[str] = field(default_factory=list)
    stopped_early: bool = False  # the loss stayed at or below the threshold, so the remaining steps were skipped

    @property
    def start_loss(self) -> float:
        return _mean(self.losses[: self.n_batches])

    @property
    def end_loss(self) -> float:
        return _mean(self.losses[-self.n_batches:]) if len(self.losses) >= self.n_batches else float("nan")

    @property
    def passed(self) -> bool:
        return math.isfinite(self.end_loss) and len(self.losses) > 0 and self.end_loss <= self.threshold

    @property
    def steps_to_threshold(self) -> int | None:
        """The first step after which a whole round over the batches was at or below the threshold."""
        k = self.n_batches
        for i in range(k, len(self.losses) + 1):
            if _mean(self.losses[i - k:i]) <= self.threshold:
                return i
        return None

    def curve(self, points: int = 11) -> list[tuple[int, float]]:
        """``(step, loss)`` at about ``points`` evenly spaced steps, for printing."""
        n = len(self.losses)
        if n == 0:
            return []
        idx = sorted({round(i * (n - 1) / max(points - 1, 1)) for i in range(points)})
        return [(i + 1, self.losses[i]) for i in idx]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def overfit_batches(model: nn.Module, task: Task, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *, steps: int = 200,
                    threshold: float = 0.05, grad_clip: float = 0.0, amp: str = "off",
                    progress: Callable[[int, float], None] | None = None, settle: int = 3) -> SanityResult:
    """Train on the same ``batches`` (cycled) for ``steps`` optimisation steps and judge the loss curve.

    Works on deep copies of ``model``, ``optimizer`` and ``loss_fn`` (copied together, so the copied
    optimiser updates the copied model); the originals are not changed.

    Args:
        model, task, loss_fn, optimizer: what a real run would train (regularisation is the caller's to
            switch off: weight decay, dropout, augmentation, label smoothing keep the loss above zero).
        batches: the fixed ``(images, labels)`` batches, usually one or two.
        steps: optimisation steps; each uses the next batch in turn.
        threshold: the check passes when the final loss is at or below this value.
        grad_clip, amp: as in :class:`~medclass.training.TrainStep`.
        progress: ``fn(step, loss)`` after every step.
        settle: stop early once this many consecutive rounds over the batches end at or below ``threshold``
            (the check has then shown what it needs to); 0 always runs every step.
    """
    if not batches:
        raise ValueError("overfit_batches needs at least one batch; the training split is empty.")
    if steps < 1:
        raise ValueError(f"overfit_batches: steps must be >= 1, got {steps}.")
    model, optimizer, loss_fn = copy.deepcopy((model, optimizer, loss_fn))
    step = TrainStep(model, task, loss_fn, optimizer, grad_clip=grad_clip, amp=amp)
    model.train()
    losses: list[float] = []
    k = len(batches)
    stopped = False
    for i in range(steps):
        x, y = batches[i % len(batches)]
        loss = step.loss(x, y)
        value = loss.item()
        losses.append(value)
        if progress is not None:
            progress(i + 1, value)
        if not math.isfinite(value):
            break
        if settle and len(losses) >= settle * k and (len(losses) % k == 0) and all(
                _mean(losses[j - k:j]) <= threshold for j in range(len(losses), len(losses) - settle * k, -k)):
            stopped = i + 1 < steps
            break
        step.update(loss)
    acc = _accuracy(model, task, batches, step) if math.isfinite(losses[-1]) else float("nan")
    result = SanityResult(losses, threshold, len(batches), sum(len(y) for _, y in batches),
                          float(optimizer.param_groups[0]["lr"]), acc, stopped_early=stopped)
    result.advice = _advice(result, steps)
    log.info("sanity check: loss %.4g -> %.4g over %d steps (%s)", result.start_loss, result.end_loss,
             len(losses), "pass" if result.passed else "fail")
    return result


@torch.no_grad()
def _accuracy(model: nn.Module, task: Task, batches, step: TrainStep) -> float:
    right = total = 0
    for x, y in batches:
        with step.autocast():
            p = task.probabilities(model(x)).float()
        if task.multilabel:
            known = y >= 0
            right += int(((p > 0.5) == (y > 0))[known].sum())
            total += int(known.sum())
        else:
            right += int((p.argmax(1) == y.long().reshape(-1)).sum())
            total += len(y)
    return right / max(total, 1)


def _advice(r: SanityResult, steps: int) -> list[str]:
    if r.passed:
        return []
    lr = f"{r.lr:.3g}"
    if not math.isfinite(r.losses[-1]):
        return [f"The loss became {r.losses[-1]} at step {len(r.losses)}: the learning rate ({lr}) is far too "
                f"high. Lower train.lr about 10x (or find one with `medclass lr-find`), or set train.grad_clip."]
    start, end = r.start_loss, r.end_loss
    if end > start:
        return [f"The loss rose ({start:.4g} -> {end:.4g}): the learning rate ({lr}) is probably too high. "
                f"Lower train.lr about 10x, or run `medclass lr-find`."]
    if end > 0.8 * start:
        return [f"The loss barely moved ({start:.4g} -> {end:.4g}): the learning rate ({lr}) is probably too low "
                f"(raise train.lr about 10x, or run `medclass lr-find`), or the gradients do not reach the "
                f"weights (every layer frozen? check model.transfer).",
                "If the learning rate is right, check that the labels go with the images."]
    return [f"The loss fell ({start:.4g} -> {end:.4g}) but not to {r.threshold:g} in {steps} steps. Try more "
            f"steps (--steps) or a higher learning rate (now {lr}).",
            "The model may be too small to memorise even these images: try a wider or deeper model "
            "(model.width, model.name).",
            "Or the labels may not go with the images (shuffled or misread labels): a model memorises real "
            "labels much faster than random ones. Check how the labels are read (data.label_columns, "
            "data.classes) and that images and labels are in the same order."]
