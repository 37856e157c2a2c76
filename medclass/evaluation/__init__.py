"""Metrics computed from labels and scores; they know nothing of models or training."""

from .kinds import classification_metrics, get_kind, medmnist_acc, medmnist_auc
from .metrics import binary_counts

__all__ = ["binary_counts", "classification_metrics", "get_kind", "medmnist_acc", "medmnist_auc"]
