"""Task types: what the network outputs, which loss trains it, how logits become probabilities.

- ``binary``: two softmax outputs trained with cross-entropy, as in MedMNIST (so its AUC and accuracy
  definitions apply unchanged); ``predict_proba`` returns ``(n, 2)``.
- ``multiclass`` and ``ordinal``: one softmax output per class (MedMNIST trains its ordinal RetinaMNIST
  as multi-class; dedicated ordinal heads come with the model-zoo work).
- ``multilabel``: one sigmoid output per label, summed binary cross-entropies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, did_you_mean

__all__ = ["Task", "get_task", "TASKS"]


@dataclass(frozen=True)
class Task:
    name: str
    multilabel: bool

    def num_outputs(self, num_classes: int) -> int:
        return num_classes

    def loss(self, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None) -> nn.Module:
        """The training loss; ``class_weights`` from :meth:`balanced_weights` (or ``None``)."""
        if self.multilabel:
            return nn.BCEWithLogitsLoss(pos_weight=class_weights)
        return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)

    def balanced_weights(self, labels: np.ndarray, num_classes: int) -> torch.Tensor:
        """Class weights inversely proportional to frequency.

        Softmax tasks: ``n / (k * n_c)`` per class (scikit-learn's "balanced"), so every class carries the
        same total weight. Multi-label: ``n_negative / n_positive`` per label as the positive weight of
        the binary cross-entropy (CheXNet, Rajpurkar et al. 2017). A class absent from ``labels`` gets 1.
        """
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
        """Labels as the loss expects them: class indices (long), or 0/1 floats for multi-label."""
        return labels.float() if self.multilabel else labels.long()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)


TASKS = {
    "binary": Task("binary", multilabel=False),
    "multiclass": Task("multiclass", multilabel=False),
    "ordinal": Task("ordinal", multilabel=False),
    "multilabel": Task("multilabel", multilabel=True),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r}.{did_you_mean(name, TASKS)} Known tasks: {', '.join(TASKS)}.")
    return TASKS[name]
