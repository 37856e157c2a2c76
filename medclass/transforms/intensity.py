"""Intensity scaling of uint8 image batches into the float tensors a network eats.

Batches arrive as uint8 and are scaled to [0, 1] by :func:`to_float`; a normaliser then maps them to what
the network trains on. The choices (``data.normalize``):

- ``fixed``: ``(x - mean) / std`` with the configured per-channel values (MedMNIST's 0.5 / 0.5 default, or
  ImageNet's statistics for pretrained models).
- ``dataset``: the same with per-channel mean and std measured on the training split.
- ``image-zscore``: each image minus its own mean, divided by its own std.
- ``image-minmax``: each image stretched to [0, 1] from its own minimum and maximum.
- ``mean-image``: the mean training image subtracted pixel by pixel (then divided by the training std).

Statistics measured on training data are stored with the weights (:meth:`Normalizer.to_meta`), so
evaluation and prediction normalise exactly as training did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["Normalize", "Normalizer", "build_normalizer", "to_float", "NORMALIZE_KINDS"]

NORMALIZE_KINDS = ("fixed", "dataset", "image-zscore", "image-minmax", "mean-image")
_EPS = 1e-6


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` -> float32 ``(N, C, H, W)`` in [0, 1]; volumes ``(N, D, H, W, C)`` -> ``(N, C, D, H, W)``
    likewise."""
    if batch.dtype != torch.uint8:
        raise TypeError(f"to_float expects a uint8 batch, got {batch.dtype}")
    if batch.ndim not in (4, 5):
        raise ValueError(f"to_float expects images (N, H, W, C) or volumes (N, D, H, W, C); got shape "
                         f"{tuple(batch.shape)}")
    last = batch.ndim - 1  # explicit axes (not movedim(-1, 1)): ONNX export needs a non-negative permutation
    return batch.permute(0, last, *range(1, last)).float().div_(255.0)


class Normalizer:
    """Normalise an ``(N, C, H, W)`` (or volumes' ``(N, C, D, H, W)``) float batch in [0, 1]; see the module
    docstring for ``kind``."""

    def __init__(self, kind: str = "fixed", mean: Sequence[float] = (0.5,), std: Sequence[float] = (0.5,),
                 mean_image: np.ndarray | None = None):
        if kind not in NORMALIZE_KINDS:
            raise ValueError(f"normalisation must be one of {', '.join(NORMALIZE_KINDS)}; got {kind!r}")
        if kind == "mean-image" and mean_image is None:
            raise ValueError("mean-image normalisation needs the mean training image")
        self.kind = kind
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.mean_image = None if mean_image is None else np.asarray(mean_image, dtype=np.float32)  # (C, H, W)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.ndim))  # every axis but the batch: channels and 2 or 3 spatial axes
        if self.kind == "image-zscore":
            m = x.mean(dim=dims, keepdim=True)
            return (x - m) / x.std(dim=dims, keepdim=True).clamp_min(_EPS)
        if self.kind == "image-minmax":
            lo = x.amin(dim=dims, keepdim=True)
            return (x - lo) / (x.amax(dim=dims, keepdim=True) - lo).clamp_min(_EPS)
        c = x.shape[1]
        if len(self.mean) not in (1, c):
            raise ValueError(f"Normalize has {len(self.mean)} means for images with {c} channels; give 1 or {c}.")
        per_channel = (1, -1) + (1,) * (x.ndim - 2)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(per_channel)
        if self.kind == "mean-image":
            mi = torch.as_tensor(self.mean_image, dtype=x.dtype, device=x.device)
            if mi.shape != x.shape[1:]:
                raise ValueError(f"the mean training image is {tuple(mi.shape)} but the batch holds "
                                 f"{tuple(x.shape[1:])} images")
            return (x - mi) / std
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(per_channel)
        return (x - mean) / std

    def to_meta(self) -> dict[str, Any]:
        """JSON-friendly description, stored with the weights."""
        out: dict[str, Any] = {"kind": self.kind, "mean": list(self.mean), "std": list(self.std)}
        if self.mean_image is not None:
            out["mean_image_shape"] = list(self.mean_image.shape)
            out["mean_image"] = [round(float(v), 5) for v in self.mean_image.ravel()]
        return out

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Normalizer:
        """Rebuild from a checkpoint's metadata (older checkpoints hold only ``mean`` and ``std``)."""
        norm = meta.get("normalize") or {"kind": "fixed", "mean": meta["mean"], "std": meta["std"]}
        mi = norm.get("mean_image")
        if mi is not None:
            mi = np.asarray(mi, dtype=np.float32).reshape(norm["mean_image_shape"])
        return cls(norm["kind"], norm["mean"], norm["std"], mi)

    def __repr__(self) -> str:
        return f"Normalizer(kind={self.kind!r}, mean={self.mean}, std={self.std})"


def Normalize(mean: Sequence[float], std: Sequence[float]) -> Normalizer:  # noqa: N802 (kept for callers)
    """``(x - mean) / std`` per channel; one value broadcasts over every channel."""
    return Normalizer("fixed", mean, std)


def build_normalizer(kind: str, mean: Sequence[float], std: Sequence[float],
                     train_images: np.ndarray | None = None) -> Normalizer:
    """A :class:`Normalizer`, measuring the statistics ``kind`` needs on ``train_images`` (uint8 NHWC, or NDHWC
    for volumes)."""
    if kind in ("dataset", "mean-image"):
        if train_images is None or len(train_images) == 0:
            raise ValueError(f"{kind} normalisation needs the training images")
        # chunked so a large split is never converted to float all at once
        c = train_images.shape[-1]
        s1, s2 = np.zeros(train_images.shape[1:], np.float64), np.zeros(train_images.shape[1:], np.float64)
        step = max(1, (1 << 24) // max(1, train_images[0].size))  # at most ~16M values (128 MB float64) at once
        for i in range(0, len(train_images), step):
            chunk = train_images[i:i + step].astype(np.float64) / 255.0
            s1 += chunk.sum(0)
            s2 += (chunk ** 2).sum(0)
        n = len(train_images)
        pixel_mean = s1 / n  # (H, W, C) or (D, H, W, C)
        ch_mean = pixel_mean.reshape(-1, c).mean(0)
        ch_var = (s2 / n).reshape(-1, c).mean(0) - ch_mean ** 2
        ch_std = np.sqrt(np.maximum(ch_var, _EPS ** 2))
        if kind == "dataset":
            return Normalizer("dataset", ch_mean.tolist(), ch_std.tolist())
        return Normalizer("mean-image", ch_mean.tolist(), ch_std.tolist(), np.moveaxis(pixel_mean, -1, 0))
    return Normalizer(kind, mean, std)
