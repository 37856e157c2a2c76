"""Batched 3D augmentation (medclass/transforms/augment3d.py): seeded, exact where it should be, geometric."""

from __future__ import annotations

import itertools

import pytest
import torch

from medclass.config import AugmentConfig
from medclass.transforms.augment3d import BatchAugment3D


def _batch(n=6, side=8, seed=0) -> torch.Tensor:
    return torch.rand(n, 1, side, side, side, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


FULL = AugmentConfig(hflip=True, vflip=True, rotate=15, scale=0.1, translate=0.1, brightness=0.1, contrast=0.1,
                     rot90=True, crop_scale=0.7)


@pytest.mark.parametrize("cfg", [FULL, AugmentConfig(hflip=True, vflip=True, rot90=True)], ids=["affine", "exact"])
def test_the_same_generator_state_gives_the_same_batch(cfg):
    x = _batch()
    aug = BatchAugment3D(cfg)
    a, b = aug(x, _gen(3)), aug(x, _gen(3))
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    assert not torch.equal(a, aug(x, _gen(4)))
    g = _gen(5)  # a generator advances: two calls in a row differ, and replay exactly from the same seed
    first, second = aug(x, g), aug(x, g)
    g2 = _gen(5)
    assert torch.equal(first, aug(x, g2)) and torch.equal(second, aug(x, g2)) and not torch.equal(first, second)


def test_disabled_config_is_the_identity():
    x = _batch()
    assert BatchAugment3D(AugmentConfig())(x, _gen(0)) is x


def test_flips_are_exact_mirrors_along_w_h_and_d():
    x = _batch(n=32)
    out = BatchAugment3D(AugmentConfig(hflip=True, vflip=True))(x, _gen(1))
    seen = set()
    for i in range(len(x)):
        match = [dims for r in range(4) for dims in itertools.combinations((2, 3, 4), r)
                 if torch.equal(out[i], x[i].flip([d - 1 for d in dims]) if dims else x[i])]
        assert len(match) == 1, i
        seen.add(match[0])
    assert len(seen) >= 6  # the eight combinations of the three mirrors all occur (32 draws: at least most)
    only_w = BatchAugment3D(AugmentConfig(hflip=True))(x, _gen(1))
    assert all(torch.equal(o, v) or torch.equal(o, v.flip(3)) for o, v in zip(only_w, x))


def test_quarter_turns_are_exact_and_in_the_axial_plane():
    x = _batch(n=16)
    out = BatchAugment3D(AugmentConfig(rot90=True))(x, _gen(2))
    ks = [[k for k in range(4) if torch.equal(o, torch.rot90(v, k, dims=(2, 3)))] for o, v in zip(out, x)]
    assert all(len(k) == 1 for k in ks) and {k[0] for k in ks} == {0, 1, 2, 3}
    with pytest.raises(ValueError, match=r"rot90 turns the axial plane \(H, W\) and needs H == W; got a volume of "
                                         r"\(8, 8, 6\)"):
        BatchAugment3D(AugmentConfig(rot90=True))(torch.rand(2, 1, 8, 8, 6), _gen(0))
    with pytest.raises(ValueError, match=r"expects a batch of volumes \(N, C, D, H, W\).*BatchAugment for 2D"):
        BatchAugment3D(AugmentConfig(rot90=True))(torch.rand(2, 1, 8, 8), _gen(0))


def _centre(v: torch.Tensor) -> torch.Tensor:
    """Centre of mass (D, H, W) of a ``(C, D, H, W)`` volume, in voxels."""
    w = v.sum(0)
    idx = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in w.shape], indexing="ij"))
    return (idx * w).flatten(1).sum(1) / w.sum()


def _blob(n=8, side=16) -> torch.Tensor:
    x = torch.zeros(n, 1, side, side, side)
    x[:, :, 6:10, 6:10, 6:10] = 1.0  # centred
    return x


def test_rotation_and_zoom_turn_about_the_centre():
    x = _blob()
    out = BatchAugment3D(AugmentConfig(rotate=30, scale=0.2))(x, _gen(0))
    for v in out:
        assert torch.allclose(_centre(v), torch.full((3,), 7.5), atol=0.3)
        assert 64 * 0.8 ** 3 * 0.8 < v.sum() < 64 * 1.2 ** 3 * 1.2  # the blob's volume changes with the zoom only
    assert out.min() >= 0 and out.max() <= 1 + 1e-6  # trilinear weights sum to 1 up to rounding


def test_translation_moves_the_blob_by_at_most_the_configured_fraction():
    x = _blob(n=16)
    out = BatchAugment3D(AugmentConfig(translate=0.1))(x, _gen(0))
    shifts = torch.stack([_centre(v) - 7.5 for v in out])
    assert shifts.abs().max() <= 0.1 * 16 + 0.2 and shifts.abs().max() > 0.5
    assert (shifts.std(0) > 0.2).all()  # every axis moves


def test_a_tiny_affine_is_close_to_the_identity():
    x = _batch()
    out = BatchAugment3D(AugmentConfig(scale=1e-6))(x, _gen(0))
    assert torch.allclose(out, x, atol=1e-4)


def test_brightness_and_contrast_change_each_volume_by_one_draw():
    x = torch.full((8, 1, 4, 4, 4), 0.5)
    out = BatchAugment3D(AugmentConfig(brightness=0.2))(x, _gen(0))
    per_volume = out.flatten(1)
    assert (per_volume.max(1).values == per_volume.min(1).values).all()  # one offset per volume
    assert ((per_volume[:, 0] - 0.5).abs() <= 0.2 + 1e-6).all() and per_volume[:, 0].unique().numel() == 8
    ramp = torch.linspace(0, 1, 64).view(1, 1, 4, 4, 4).repeat(4, 1, 1, 1, 1)
    c = BatchAugment3D(AugmentConfig(contrast=0.5))(ramp, _gen(1))
    assert torch.allclose(c.mean((1, 2, 3, 4)), ramp.mean((1, 2, 3, 4)), atol=0.02)  # contrast about the mean
    assert c.min() >= 0 and c.max() <= 1
