"""Forward passes without gradients: class probabilities for a whole split."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ..tasks import Task

__all__ = ["predict_proba"]


@torch.no_grad()
def predict_proba(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], task: Task,
                  tta: bool = False, loss_fn: nn.Module | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Probabilities ``(n, n_outputs)``, labels and mean loss over ``batches`` (model in eval mode).

    With ``tta`` the probabilities are averaged over each image (or volume) and its mirror along the last axis (W,
    left-right).
    The loss is NaN when ``loss_fn`` is not given.
    """
    was_training = model.training
    model.eval()
    probs, labels, loss_sum, n = [], [], 0.0, 0
    try:
        for x, y in batches:
            logits = model(x)
            if loss_fn is not None:
                loss_sum += float(loss_fn(logits, task.target(y))) * len(y)
            p = task.probabilities(logits)
            if tta:
                p = (p + task.probabilities(model(x.flip(-1)))) / 2
            probs.append(p.float().cpu())
            labels.append(y.cpu())
            n += len(y)
    finally:
        model.train(was_training)
    if not probs:
        return np.zeros((0, 0)), np.zeros((0,), dtype=np.int64), float("nan")
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), (loss_sum / n if loss_fn is not None else float("nan"))
