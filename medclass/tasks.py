"""Task types: what the network outputs, which loss trains it, how logits become probabilities.

- ``binary``: two softmax outputs trained with cross-entropy, as in MedMNIST (so its AUC and accuracy
  definitions apply unchanged); ``predict_proba`` returns ``(n, 2)``.
- ``multiclass`` and ``ordinal``: one softmax output per class (MedMNIST trains its ordinal RetinaMNIST
  as multi-class; dedicated ordinal heads come with the model-zoo work).
- ``multilabel``: one sigmoid output per label, summed binary cross-entropies.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def loss(self, label_smoothing: float = 0.0) -> nn.Module:
        if self.multilabel:
            return nn.BCEWithLogitsLoss()
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)

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
