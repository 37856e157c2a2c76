"""Batches from an in-memory split: gather uint8 images, convert, augment, normalise.

The split's uint8 array is shared with torch (no copy). Each batch is gathered by index, moved to the
device, scaled to [0, 1], optionally augmented (training only), normalised and put in channels-last
layout, all on whole-batch tensors. For 28 px images this is a few percent of a training step; no
worker processes are needed, which keeps runs reproducible and start-up instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..transforms.intensity import Normalizer, to_float
from .datasets import ArraySplit

__all__ = ["BatchLoader"]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class BatchLoader:
    """Iterate over ``split`` in ``(images, labels)`` batches of float tensors.

    Args:
        split: the images (uint8 ``(N, H, W, C)``, or volumes ``(N, D, H, W, C)``) and labels.
        batch_size: images per batch.
        normalize: intensity normalisation applied after augmentation.
        shuffle: draw a new permutation from the epoch's generator each epoch.
        augment: ``fn(batch, generator)`` for training; ``None`` at evaluation.
        device: where batches are built.
        channels_last: return NHWC-strided tensors (faster CPU convolutions); images only.
    """

    def __init__(self, split: ArraySplit, batch_size: int, normalize: Normalizer, *, shuffle: bool = False,
                 augment: Augment | None = None, device: torch.device | str = "cpu", channels_last: bool = False):
        self.images = torch.from_numpy(np.ascontiguousarray(split.images))
        self.labels = torch.from_numpy(np.asarray(split.labels))
        self.batch_size = batch_size
        self.normalize = normalize
        self.shuffle = shuffle
        self.augment = augment
        self.device = torch.device(device)
        self.channels_last = channels_last

    def __len__(self) -> int:
        """Number of batches per epoch (a trailing batch of one image is dropped when shuffling)."""
        n = len(self.images)
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest > (1 if self.shuffle else 0) else 0)

    @property
    def num_samples(self) -> int:
        return len(self.images)

    def batches(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of batches. ``generator`` drives shuffling and augmentation (required if either is on)."""
        n = len(self.images)
        if self.shuffle or self.augment:
            if generator is None:
                raise ValueError("BatchLoader.batches needs a torch.Generator when shuffling or augmenting.")
        order = torch.randperm(n, generator=generator) if self.shuffle else None
        for b in range(len(self)):
            idx = slice(b * self.batch_size, (b + 1) * self.batch_size)
            if order is not None:
                sel = order[idx]
                x, y = self.images[sel], self.labels[sel]
            else:
                x, y = self.images[idx], self.labels[idx]
            x = to_float(x.to(self.device, non_blocking=True))
            if self.augment is not None:
                x = self.augment(x, generator)
            x = self.normalize(x)
            if self.channels_last and x.ndim == 4:  # NHWC is a 2D layout; volumes keep (N, C, D, H, W)
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)
