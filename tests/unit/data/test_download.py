import hashlib
import os
from pathlib import Path

import pytest

from medclass.data.download import DATA_ENV, candidate_dirs, fetch_medmnist, md5sum
from medclass.data.medmnist import DatasetInfo
from medclass.errors import ChecksumError, DatasetNotFoundError


def _info(content: bytes) -> DatasetInfo:
    return DatasetInfo(name="toymnist", title="ToyMNIST", modality="toy", task="binary", labels=("a", "b"),
                       channels=1, n_samples={"train": 1, "val": 1, "test": 1},
                       md5={28: hashlib.md5(content).hexdigest()}, license="CC BY 4.0", source="test")


def test_search_order(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv(DATA_ENV, str(b))
    dirs = candidate_dirs(a)
    assert dirs[:2] == [a, b] and len(dirs) == 3  # then the (test-isolated) cache
    for d in (a, b):
        d.mkdir()
    info = _info(b"payload")
    (b / "toymnist.npz").write_bytes(b"payload")
    assert fetch_medmnist(info, data_dir=a, download=False) == b / "toymnist.npz"
    (a / "toymnist.npz").write_bytes(b"payload")
    assert fetch_medmnist(info, data_dir=a, download=False) == a / "toymnist.npz"


def test_wrong_md5_is_refused(tmp_path):
    (tmp_path / "toymnist.npz").write_bytes(b"tampered")
    info = _info(b"payload")
    with pytest.raises(ChecksumError) as e:
        fetch_medmnist(info, data_dir=tmp_path, download=False)
    msg = str(e.value)
    assert str(tmp_path / "toymnist.npz") in msg and info.md5[28] in msg and md5sum(tmp_path / "toymnist.npz") in msg
    assert "Delete it" in msg


def test_missing_and_offline_names_file_md5_and_folders(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    info = _info(b"payload")
    with pytest.raises(DatasetNotFoundError) as e:
        fetch_medmnist(info, data_dir=tmp_path, download=False)
    assert "toymnist.npz" in str(e.value) and info.md5[28] in str(e.value) and str(tmp_path) in str(e.value)
    # "offline": a URL nothing answers (a closed port on loopback), never the internet
    with pytest.raises(DatasetNotFoundError) as e:
        fetch_medmnist(info, data_dir=tmp_path, url="http://127.0.0.1:9/toymnist.npz")
    msg = str(e.value)
    assert "toymnist.npz" in msg and info.md5[28] in msg and str(tmp_path) in msg and "offline" in msg
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_download_from_local_file_verifies_and_is_atomic(tmp_path):
    src = tmp_path / "server" / "toymnist.npz"
    src.parent.mkdir()
    src.write_bytes(b"payload" * 1000)
    info = _info(src.read_bytes())
    seen = []
    dest = tmp_path / "data"
    path = fetch_medmnist(info, data_dir=dest, url=src.as_uri(), progress=lambda d, t: seen.append((d, t)))
    assert path == dest / "toymnist.npz" and path.read_bytes() == src.read_bytes()
    assert seen and seen[-1] == (7000, 7000)
    assert sorted(os.listdir(dest)) == ["toymnist.npz"]


def test_download_with_wrong_md5_is_not_kept(tmp_path):
    src = tmp_path / "toymnist.npz.src"
    src.write_bytes(b"something else")
    dest = tmp_path / "data"
    with pytest.raises(ChecksumError, match="was not kept"):
        fetch_medmnist(_info(b"payload"), data_dir=dest, url=src.as_uri())
    assert list(Path(dest).iterdir()) == []
