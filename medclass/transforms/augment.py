"""Random augmentation of whole batches of tensors, for training only.

All geometric changes of one image (mirror, rotation, quarter turns, zoom, shift, random resized
crop) are folded into a single affine matrix, so the whole batch is resampled by one ``grid_sample``
call (on the GPU when the batch is there), instead of a Python loop over images. Mirrors and quarter
turns alone are exact pixel permutations and skip resampling. Brightness and contrast follow on the same tensor.
Randomness comes only from the ``torch.Generator`` passed in, so a run is reproducible and a resumed
run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import AugmentConfig

__all__ = ["BatchAugment", "ViewwiseAugment"]


class BatchAugment:
    """Apply :class:`~medclass.config.AugmentConfig` to a float ``(N, C, H, W)`` batch in [0, 1]."""

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        if not cfg.enabled:
            return x
        n = x.shape[0]

        def uniform(*shape: int) -> torch.Tensor:  # U(-1, 1) drawn on the CPU generator, moved to x
            return (torch.rand(*shape, generator=generator) * 2 - 1).to(x.device)

        def coin() -> torch.Tensor:
            return torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).to(x.device)

        sx = coin() if cfg.hflip else torch.ones(n, device=x.device)
        sy = coin() if cfg.vflip else torch.ones(n, device=x.device)
        quarter = (torch.randint(0, 4, (n,), generator=generator).to(x.device) if cfg.rot90
                   else torch.zeros(n, dtype=torch.long, device=x.device))
        if cfg.rotate or cfg.scale or cfg.translate or cfg.crop_scale < 1:
            angle = uniform(n) * math.radians(cfg.rotate) + quarter * (math.pi / 2)
            zoom_x = zoom_y = 1 + uniform(n) * cfg.scale
            shift = uniform(n, 2) * cfg.translate * 2  # affine_grid coordinates span [-1, 1]
            if cfg.crop_scale < 1:
                # random resized crop (Szegedy et al. 2015, torchvision's RandomResizedCrop): keep a random
                # area fraction in [crop_scale, 1] with a log-uniform aspect ratio in [1/r, r], stretched back to
                # the full size; its centre is placed uniformly where the crop still fits inside the image.
                area = cfg.crop_scale + torch.rand(n, generator=generator).to(x.device) * (1 - cfg.crop_scale)
                log_r = uniform(n) * math.log(cfg.crop_ratio)
                w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1)
                h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1)
                zoom_x, zoom_y = zoom_x / w, zoom_y / h
                shift = shift + uniform(n, 2) * torch.stack([1 - w, 1 - h], 1)
            cos, sin = torch.cos(angle), torch.sin(angle)
            theta = torch.stack([
                torch.stack([cos * sx / zoom_x, -sin * sy / zoom_y, shift[:, 0]], 1),
                torch.stack([sin * sx / zoom_x, cos * sy / zoom_y, shift[:, 1]], 1),
            ], 1).to(x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        else:  # mirrors and quarter turns only: exact pixel copies, no resampling
            if cfg.hflip:
                x = torch.where((sx < 0).view(-1, 1, 1, 1), x.flip(3), x)
            if cfg.vflip:
                x = torch.where((sy < 0).view(-1, 1, 1, 1), x.flip(2), x)
            if cfg.rot90:
                if x.shape[2] != x.shape[3]:
                    raise ValueError(f"rot90 needs square images; got {tuple(x.shape[2:])}")
                for k in (1, 2, 3):
                    x = torch.where((quarter == k).view(-1, 1, 1, 1), torch.rot90(x, k, dims=(2, 3)), x)
        if cfg.contrast:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (1 + uniform(n).view(-1, 1, 1, 1) * cfg.contrast) + mean
        if cfg.brightness:
            x = x + uniform(n).view(-1, 1, 1, 1) * cfg.brightness
        if cfg.contrast or cfg.brightness:
            x = x.clamp(0, 1)
        return x

    def __repr__(self) -> str:
        return f"BatchAugment({self.cfg})"


class ViewwiseAugment:
    """A 2D augmentation applied to every image of a batch of cases ``(N, C, V, H, W)`` independently: the views
    of a study are separate acquisitions (:mod:`medclass.data.cases`), so each gets its own draw."""

    def __init__(self, augment: BatchAugment):
        self.augment = augment

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, v, h, w = x.shape
        flat = x.transpose(1, 2).reshape(n * v, c, h, w)
        return self.augment(flat, generator).reshape(n, v, c, h, w).transpose(1, 2).contiguous()
