"""Metrics computed from labels and scores; they know nothing of models or training."""

from .metrics import binary_counts, classification_metrics, medmnist_acc, medmnist_auc

__all__ = ["binary_counts", "classification_metrics", "medmnist_acc", "medmnist_auc"]
