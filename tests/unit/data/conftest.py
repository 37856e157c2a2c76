"""Shared by the leakage and hashing tests: the real BreastMNIST images and a re-saved copy of one."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medclass.data.hashing import perceptual_hash
from tests.conftest import find_real_data_dir


@pytest.fixture(scope="module")
def breast():
    """All 780 real BreastMNIST ultrasound images (28x28 uint8) and their official split names."""
    d = find_real_data_dir()
    if d is None:
        pytest.skip("Requires: the real MedMNIST files (set MEDCLASS_DATA to the folder holding breastmnist.npz)")
    with np.load(d / "breastmnist.npz") as z:
        parts = [(s, z[f"{s}_images"]) for s in ("train", "val", "test")]
    images = np.concatenate([p for _, p in parts])
    split = [s for s, p in parts for _ in range(len(p))]
    return images, split, [perceptual_hash(x) for x in images]


@pytest.fixture
def resave():
    """``resave(image)``: a re-saved copy (upscaled to 128 px, JPEG at quality 75, read back, a little brighter)."""
    return _resaved


def _resaved(image: np.ndarray) -> np.ndarray:
    """A re-saved copy: upscaled to 128 px, JPEG at quality 75, read back, a little brighter."""
    buf = io.BytesIO()
    Image.fromarray(image).resize((128, 128), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=75)
    buf.seek(0)
    with Image.open(buf) as im:
        back = np.asarray(im.convert("L"), dtype=np.float64)
    return np.clip(back * 1.05 + 4, 0, 255).astype(np.uint8)
