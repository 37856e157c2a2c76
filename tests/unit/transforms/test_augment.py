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
