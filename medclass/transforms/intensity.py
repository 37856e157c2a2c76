"""Intensity scaling of uint8 image batches into the float tensors a network eats."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["Normalize", "to_float"]


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` -> float32 ``(N, C, H, W)`` in [0, 1]."""
    if batch.dtype != torch.uint8:
        raise TypeError(f"to_float expects a uint8 batch, got {batch.dtype}")
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


class Normalize:
    """``(x - mean) / std`` per channel on an ``(N, C, H, W)`` float batch in [0, 1].

    One value broadcasts over every channel, so ``mean=(0.5,)`` works for grey and colour images alike.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if len(self.mean) not in (1, c):
            raise ValueError(f"Normalize has {len(self.mean)} means for images with {c} channels; give 1 or {c}.")
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"
