"""Tensor transforms: intensity scaling and batch augmentation. They know nothing of models."""

from .augment import BatchAugment
from .intensity import Normalize, Normalizer, build_normalizer

__all__ = ["BatchAugment", "Normalize", "Normalizer", "build_normalizer"]
