"""Normalisation options: statistics measured on the training split, stored with the weights, reused exactly."""

import numpy as np
import pytest
import torch

from medclass.transforms import Normalizer, build_normalizer
from medclass.transforms.intensity import to_float


def _train_images(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(50, 8, 8, 3), dtype=np.uint8)


def test_dataset_statistics_are_per_channel_of_the_training_split():
    imgs = _train_images()
    norm = build_normalizer("dataset", (0.5,), (0.5,), imgs)
    x = imgs.astype(np.float64) / 255
    assert np.allclose(norm.mean, x.mean(axis=(0, 1, 2)), atol=1e-6)
    assert np.allclose(norm.std, x.std(axis=(0, 1, 2)), atol=1e-6)
    out = norm(to_float(torch.from_numpy(imgs)))
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)


def test_mean_image_subtraction_and_round_trip_through_checkpoint_metadata():
    imgs = _train_images(1)
    norm = build_normalizer("mean-image", (0.5,), (0.5,), imgs)
    batch = to_float(torch.from_numpy(imgs))
    out = norm(batch)
    assert torch.allclose(out.mean(dim=0), torch.zeros(3, 8, 8), atol=1e-4)  # the mean image is removed
    again = Normalizer.from_meta({"normalize": norm.to_meta()})
    assert torch.allclose(again(batch), out, atol=1e-4)


@pytest.mark.parametrize("kind", ["image-zscore", "image-minmax"])
def test_per_image_normalisations(kind):
    batch = to_float(torch.from_numpy(_train_images(2)))
    out = build_normalizer(kind, (0.5,), (0.5,))(batch)
    if kind == "image-zscore":
        assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(len(out)), atol=1e-5)
    else:
        assert torch.allclose(out.amin(dim=(1, 2, 3)), torch.zeros(len(out)))
        assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.ones(len(out)), atol=1e-5)
    constant = torch.full((2, 1, 4, 4), 0.3)
    assert torch.isfinite(build_normalizer(kind, (0.5,), (0.5,))(constant)).all()


def test_old_checkpoints_without_normalisation_metadata_still_load():
    norm = Normalizer.from_meta({"mean": [0.5], "std": [0.5]})
    assert norm.kind == "fixed" and norm.mean == (0.5,)
