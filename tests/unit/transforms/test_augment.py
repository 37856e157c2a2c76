import torch

from medclass.config import AugmentConfig
from medclass.transforms import BatchAugment, Normalize


def _batch(n=8, c=1, s=12):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(1))


def test_disabled_is_identity():
    x = _batch()
    assert BatchAugment(AugmentConfig())(x, torch.Generator()) is x


def test_hflip_only_is_exact_mirroring():
    x = _batch()
    y = BatchAugment(AugmentConfig(hflip=True))(x, torch.Generator().manual_seed(0))
    for a, b in zip(x, y):
        assert torch.equal(b, a) or torch.equal(b, a.flip(2))
    assert not torch.equal(x, y)  # with 8 images some are mirrored


def test_affine_is_seeded_and_keeps_shape_and_range():
    cfg = AugmentConfig(hflip=True, rotate=15, scale=0.1, translate=0.1, brightness=0.1, contrast=0.2)
    x = _batch(c=3)
    a = BatchAugment(cfg)(x, torch.Generator().manual_seed(5))
    b = BatchAugment(cfg)(x, torch.Generator().manual_seed(5))
    c = BatchAugment(cfg)(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1


def test_zero_rotation_affine_with_no_change_is_identity():
    x = _batch()
    y = BatchAugment(AugmentConfig(rotate=1e-9))(x, torch.Generator().manual_seed(0))
    assert torch.allclose(x, y, atol=1e-5)


def test_normalize_broadcasts_and_checks_channels():
    x = torch.ones(2, 3, 4, 4)
    assert torch.allclose(Normalize((0.5,), (0.5,))(x), torch.ones_like(x))
    y = Normalize((0.0, 0.5, 1.0), (1.0, 0.5, 1.0))(x)
    assert torch.allclose(y[:, 1], torch.ones(2, 4, 4)) and torch.allclose(y[:, 2], torch.zeros(2, 4, 4))
    try:
        Normalize((0.1, 0.2), (1, 1))(x)
        raise AssertionError("expected ValueError")
    except ValueError as e:
        assert "2 means for images with 3 channels" in str(e)


def test_rot90_is_an_exact_quarter_turn():
    x = _batch(n=16)
    y = BatchAugment(AugmentConfig(rot90=True))(x, torch.Generator().manual_seed(0))
    turns = []
    for a, b in zip(x, y):
        k = [k for k in range(4) if torch.equal(b, torch.rot90(a, k, dims=(1, 2)))]
        assert k, "every image must be an exact rotation by a multiple of 90 degrees"
        turns.append(k[0])
    assert len(set(turns)) >= 3  # 16 images: several different turns are drawn


def test_random_resized_crop_zooms_into_part_of_the_image():
    # a horizontal ramp; a square crop keeping an area fraction a in [0.25, 1] spans sqrt(a) of it: 0.5 to 1
    s = 32
    ramp = torch.linspace(0, 1, s).view(1, 1, 1, s).expand(16, 1, s, s).clone()
    z = BatchAugment(AugmentConfig(crop_scale=0.25, crop_ratio=1.0))(ramp, torch.Generator().manual_seed(1))
    assert z.shape == ramp.shape
    spans = z.amax(dim=(1, 2, 3)) - z.amin(dim=(1, 2, 3))
    assert (spans >= 0.5 - 0.05).all() and (spans <= 1 + 1e-6).all()
    assert spans.min() < 0.7 and spans.mean() < 0.9  # real crops, not the whole image
    assert torch.allclose(z[:, :, 0], z[:, :, -1])  # the ramp stays horizontal: no rotation, no shear
