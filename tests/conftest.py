"""Shared fixtures: a tiny synthetic dataset in MedMNIST layout, a fast config, the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from medclass.config import RunConfig, config_from_dict

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_npz(path: Path, n=(64, 32, 32), size: int = 16, channels: int = 1, classes: int = 2, seed: int = 0,
             multilabel: bool = False) -> Path:
    """Write a learnable toy dataset: class k has a bright square in the k-th position of a noisy image."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        labels = rng.integers(0, classes, size=(count,))
        labels[: classes] = np.arange(classes)  # every class present in every split
        images = rng.integers(0, 60, size=(count, size, size, channels)).astype(np.uint8)
        q = max(size // 4, 2)
        for i, y in enumerate(labels):
            r, c = divmod(int(y), 2)
            images[i, r * q + 1: r * q + 1 + q, c * q + 1: c * q + 1 + q] = 220
        if channels == 1:
            images = images[..., 0]
        if multilabel:
            lab = np.stack([labels == k for k in range(classes)], 1).astype(np.uint8)
        else:
            lab = labels.reshape(-1, 1).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, lab
    np.savez(path, **arrays)
    return path


@pytest.fixture
def toy_npz(tmp_path: Path) -> Path:
    return make_npz(tmp_path / "toy.npz")


def fast_config(dataset: str | os.PathLike, **train: object) -> RunConfig:
    """A config that trains the toy dataset in about a second."""
    t = {"epochs": 3, "batch_size": 16, "lr": 3e-3, **train}
    return config_from_dict({"data": {"dataset": str(dataset)}, "model": {"name": "resnet9", "width": 4},
                             "train": t, "eval": {"batch_size": 64}})


def find_real_data_dir() -> Path | None:
    """The folder holding the real MedMNIST files: $MEDCLASS_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("MEDCLASS_DATA")
    for d in ([Path(env)] if env else []) + [SHARED_DATA]:
        if (d / "breastmnist.npz").is_file():
            return d
    return None


needs_real_data = pytest.mark.skipif(
    find_real_data_dir() is None,
    reason="Requires: the real MedMNIST files (set MEDCLASS_DATA to the folder holding breastmnist.npz)")


@pytest.fixture
def real_data_dir() -> Path:
    d = find_real_data_dir()
    assert d is not None
    return d


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: point the cache folder at a temporary one."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MEDCLASS_CACHE", str(cache))
