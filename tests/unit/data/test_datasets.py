import numpy as np
import pytest

from medclass.data.datasets import load_dataset, load_npz
from medclass.errors import ConfigError, DataError
from tests.conftest import make_npz, needs_real_data


def test_load_npz_infers_task_and_layout(tmp_path):
    ds = load_npz(make_npz(tmp_path / "a.npz", classes=2))
    assert ds.task == "binary" and ds.labels == ("0", "1") and ds.channels == 1 and ds.size == 16
    tr = ds.split("train")
    assert tr.images.shape == (64, 16, 16, 1) and tr.images.dtype == np.uint8 and tr.labels.shape == (64,)
    assert load_npz(make_npz(tmp_path / "b.npz", classes=4, channels=3)).task == "multiclass"
    ml = load_npz(make_npz(tmp_path / "c.npz", classes=3, multilabel=True))
    assert ml.task == "multilabel" and ml.split("val").labels.shape == (32, 3)
    card = ds.describe()
    assert card["splits"]["train"]["n"] == 64 and sum(card["splits"]["train"]["per_class"]) == 64


def test_load_npz_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_npz(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match="lacks the arrays train_labels, val_images"):
        load_npz(tmp_path / "partial.npz")
    z = dict(np.load(make_npz(tmp_path / "ok.npz")))
    z["val_images"] = z["val_images"].astype(np.float32)
    np.savez(tmp_path / "float.npz", **z)
    with pytest.raises(DataError, match="val_images has dtype float32; expected uint8"):
        load_npz(tmp_path / "float.npz")
    z = dict(np.load(make_npz(tmp_path / "ok.npz")))
    z["test_labels"] = z["test_labels"][:5]
    np.savez(tmp_path / "short.npz", **z)
    with pytest.raises(DataError, match="test has 32 images but 5 labels"):
        load_npz(tmp_path / "short.npz")


def test_split_lookup(tmp_path):
    ds = load_npz(make_npz(tmp_path / "a.npz"))
    with pytest.raises(ConfigError, match="no 'valid' split. Available: train, val, test"):
        ds.split("valid")


@needs_real_data
def test_real_breastmnist(real_data_dir):
    ds = load_dataset("breastmnist", data_dir=real_data_dir, download=False)
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 546, "val": 78, "test": 156}
    assert np.bincount(ds.split("train").labels).tolist() == [147, 399]
    assert ds.positive_label == 0 and "Al-Dhabyani" in ds.citation
