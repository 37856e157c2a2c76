"""Random augmentation of whole batches of volumes ``(N, C, D, H, W)``, for training only.

The 3D counterpart of :mod:`medclass.transforms.augment`, driven by the same
:class:`~medclass.config.AugmentConfig`, read for volumes in the canonical layout of
:mod:`medclass.data.series` (D to superior, H to posterior, W to the patient's left):

- ``hflip``: mirror left-right (W) with probability 0.5.
- ``vflip``: mirror top-bottom with probability 0.5 in each view where it is vertical, independently: H (the
  vertical axis of an axial slice) and D (the vertical axis of coronal and sagittal slices).
- ``rot90``: a random multiple of 90 degrees in the axial plane (H, W), which needs H == W.
- ``rotate``: a rotation about each of the three axes, each angle uniform in [-rotate, rotate] degrees.
- ``scale``: one zoom factor for all three axes, in [1 - scale, 1 + scale].
- ``translate``: a shift along each axis, up to that fraction of its side.
- ``crop_scale``/``crop_ratio``: a random resized crop that keeps a random fraction in [crop_scale, 1] of the
  *volume*, its sides' ratios log-uniform within ``crop_ratio``, stretched back to the full size.
- ``brightness``/``contrast``: as in 2D, per volume.

As in 2D, all geometric changes of one volume are folded into one affine matrix, and the batch is resampled
by a single ``affine_grid``/``grid_sample`` call (trilinear, border padding); mirrors and quarter turns alone
are exact voxel permutations and skip resampling. Randomness comes only from the ``torch.Generator`` passed
in, so the same generator state gives the same batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import AugmentConfig

__all__ = ["BatchAugment3D"]


def _rotation(ax: torch.Tensor, ay: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
    """``(N, 3, 3)`` rotations ``Rz @ Ry @ Rx`` in grid coordinates (x = W, y = H, z = D)."""
    n = ax.shape[0]
    one, zero = torch.ones(n, dtype=ax.dtype, device=ax.device), torch.zeros(n, dtype=ax.dtype, device=ax.device)

    def mat(rows):
        return torch.stack([torch.stack(r, 1) for r in rows], 1)

    cx, sx, cy, sy, cz, sz = ax.cos(), ax.sin(), ay.cos(), ay.sin(), az.cos(), az.sin()
    rx = mat([[one, zero, zero], [zero, cx, -sx], [zero, sx, cx]])
    ry = mat([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    rz = mat([[cz, -sz, zero], [sz, cz, zero], [zero, zero, one]])
    return rz @ ry @ rx


class BatchAugment3D:
    """Apply :class:`~medclass.config.AugmentConfig` to a float ``(N, C, D, H, W)`` batch in [0, 1]."""

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        if not cfg.enabled:
            return x
        if x.ndim != 5:
            raise ValueError(f"BatchAugment3D expects a batch of volumes (N, C, D, H, W); got shape {tuple(x.shape)}. "
                             f"Use BatchAugment for 2D images.")
        n = x.shape[0]

        def uniform(*shape: int) -> torch.Tensor:  # U(-1, 1) drawn on the CPU generator, moved to x
            return (torch.rand(*shape, generator=generator) * 2 - 1).to(x.device)

        def coin() -> torch.Tensor:
            return torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).to(x.device)

        ones = torch.ones(n, device=x.device)
        sw = coin() if cfg.hflip else ones  # W, grid x
        sh = coin() if cfg.vflip else ones  # H, grid y
        sd = coin() if cfg.vflip else ones  # D, grid z
        quarter = (torch.randint(0, 4, (n,), generator=generator).to(x.device) if cfg.rot90
                   else torch.zeros(n, dtype=torch.long, device=x.device))
        if cfg.rot90 and x.shape[3] != x.shape[4]:
            raise ValueError(f"rot90 turns the axial plane (H, W) and needs H == W; got a volume of "
                             f"{tuple(x.shape[2:])} (D, H, W). Turn train.augment.rot90 off or resize to a cube.")
        if cfg.rotate or cfg.scale or cfg.translate or cfg.crop_scale < 1:
            angles = uniform(n, 3) * math.radians(cfg.rotate)
            az = angles[:, 2] + quarter * (math.pi / 2)
            zoom = (1 + uniform(n) * cfg.scale).unsqueeze(1).expand(n, 3)
            shift = uniform(n, 3) * cfg.translate * 2  # affine_grid coordinates span [-1, 1]
            if cfg.crop_scale < 1:
                # random resized crop in 3D: a volume fraction in [crop_scale, 1], side ratios log-uniform within
                # crop_ratio, centred uniformly where the crop still fits inside the volume
                frac = cfg.crop_scale + torch.rand(n, generator=generator).to(x.device) * (1 - cfg.crop_scale)
                log_r = uniform(n, 3) * (math.log(cfg.crop_ratio) / 2)
                sides = (frac.pow(1 / 3).unsqueeze(1) * torch.exp(log_r - log_r.mean(1, keepdim=True))).clamp(max=1)
                zoom = zoom / sides
                shift = shift + uniform(n, 3) * (1 - sides)
            rot = _rotation(angles[:, 0], angles[:, 1], az)
            flips = torch.stack([sw, sh, sd], 1)
            theta = torch.cat([rot * (flips / zoom).unsqueeze(1), shift.unsqueeze(2)], 2).to(x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        else:  # mirrors and quarter turns only: exact voxel copies, no resampling
            for sign, dim in ((sw, 4), (sh, 3), (sd, 2)):
                if (sign < 0).any():
                    x = torch.where((sign < 0).view(-1, 1, 1, 1, 1), x.flip(dim), x)
            if cfg.rot90:
                for k in (1, 2, 3):
                    x = torch.where((quarter == k).view(-1, 1, 1, 1, 1), torch.rot90(x, k, dims=(3, 4)), x)
        if cfg.contrast:
            mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
            x = (x - mean) * (1 + uniform(n).view(-1, 1, 1, 1, 1) * cfg.contrast) + mean
        if cfg.brightness:
            x = x + uniform(n).view(-1, 1, 1, 1, 1) * cfg.brightness
        if cfg.contrast or cfg.brightness:
            x = x.clamp(0, 1)
        return x

    def __repr__(self) -> str:
        return f"BatchAugment3D({self.cfg})"
