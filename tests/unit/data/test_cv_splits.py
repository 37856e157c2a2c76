"""Cross-validation folds and refits of published (MedMNIST-layout) splits, in medclass/data/build.py."""

from __future__ import annotations

import numpy as np
import pytest

from medclass.config import DataConfig, build_config
from medclass.data.build import build_dataset, cross_validation_fold
from medclass.data.datasets import load_dataset
from medclass.errors import ConfigError
from tests.conftest import make_npz, needs_real_data


def _folds(dataset, k, **kw):
    return [build_dataset(DataConfig(dataset=str(dataset), folds=k, fold=f, leakage="off", **kw)) for f in range(k)]


def test_folds_partition_train_plus_val_exactly_and_leave_test_alone(tmp_path):
    npz = make_npz(tmp_path / "toy.npz", n=(90, 30, 20), seed=3)
    orig = load_dataset(str(npz))
    pool = {f"train[{i}]": img for i, img in enumerate(orig.split("train").images)}
    pool.update({f"val[{i}]": img for i, img in enumerate(orig.split("val").images)})
    seen = []
    for k, ds in enumerate(_folds(npz, 3)):
        tr, va, te = ds.split("train"), ds.split("val"), ds.split("test")
        assert np.array_equal(te.images, orig.split("test").images)
        assert np.array_equal(te.labels, orig.split("test").labels)
        keys_tr, keys_va = list(tr.meta["source"]), list(va.meta["source"])
        assert sorted(keys_tr + keys_va) == sorted(pool) and not set(keys_tr) & set(keys_va)
        for split, keys in ((tr, keys_tr), (va, keys_va)):  # each image is the one its source names
            assert all(np.array_equal(split.images[i], pool[key]) for i, key in enumerate(keys))
        seen += keys_va
        info = ds.describe()["cross_validation"]
        assert info["folds"] == 3 and info["fold"] == k and info["pool"] == "official train + val"
    assert sorted(seen) == sorted(pool)  # every pooled image is validated exactly once


def test_folds_are_stratified_and_follow_the_split_seed(tmp_path):
    npz = make_npz(tmp_path / "toy.npz", n=(150, 50, 20), classes=3, seed=1)
    orig = load_dataset(str(npz))
    pooled = np.bincount(np.concatenate([orig.split("train").labels, orig.split("val").labels]), minlength=3)
    for ds in _folds(npz, 4):
        assert np.all(np.abs(np.bincount(ds.split("val").labels, minlength=3) - pooled / 4) <= 1)
    a = _folds(npz, 4)[0].split("val").meta["source"]
    b = _folds(npz, 4, split_seed=7)[0].split("val").meta["source"]
    assert list(a) == list(_folds(npz, 4)[0].split("val").meta["source"]) and list(a) != list(b)


def test_refit_trains_on_train_plus_val_and_keeps_val(tmp_path):
    npz = make_npz(tmp_path / "toy.npz")
    ds = build_dataset(DataConfig(dataset=str(npz), refit=True, leakage="off"))
    orig = load_dataset(str(npz))
    assert len(ds.split("train")) == 96 and np.array_equal(ds.split("val").images, orig.split("val").images)
    assert np.array_equal(ds.split("train").images[64:], orig.split("val").images)
    assert ds.describe()["refit"]["train"] == "official train + val"


def test_bad_fold_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.folds must be 0 .off. or >= 2, and data.fold below it. "
                                          "Got folds=5, fold=5"):
        build_config(overrides={"data": {"folds": 5, "fold": 5}})
    with pytest.raises(ConfigError, match="Got folds=1"):
        build_config(overrides={"data": {"folds": 1}})
    ds = load_dataset(str(make_npz(tmp_path / "toy.npz")))
    with pytest.raises(ConfigError, match=r"data.fold must be in 0..2 with data.folds=3. Got 3 instead."):
        cross_validation_fold(ds, 3, 3)
    with pytest.raises(ConfigError, match="data.folds must be >= 2"):
        cross_validation_fold(ds, 1, 0)
    with pytest.raises(ConfigError, match="data.refit trains on every non-test image"):
        build_dataset(DataConfig(dataset=str(tmp_path / "toy.npz"), folds=3, refit=True))


@needs_real_data
def test_breastmnist_folds(real_data_dir):
    folds = [build_dataset(DataConfig(dataset="breastmnist", data_dir=str(real_data_dir), folds=5, fold=k,
                                      leakage="off")) for k in (0, 4)]
    for ds in folds:
        assert len(ds.split("train")) + len(ds.split("val")) == 546 + 78 and len(ds.split("test")) == 156
        assert abs(len(ds.split("val")) - 624 / 5) <= 1
        # malignant (class 0) is about 27% of train+val: each fold keeps that share
        assert abs(np.mean(ds.split("val").labels == 0) - np.mean(ds.split("train").labels == 0)) < 0.02
    assert not set(folds[0].split("val").meta["source"]) & set(folds[1].split("val").meta["source"])
