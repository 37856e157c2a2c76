import re

import pytest

from medclass.data.medmnist import MEDMNIST, get_info, list_datasets
from medclass.errors import ConfigError


def test_catalogue_is_complete():
    assert len(list_datasets(2)) == 12 and len(list_datasets(3)) == 6
    for d in MEDMNIST.values():
        assert d.sizes == ((28, 64, 128, 224) if d.spatial_dims == 2 else (28, 64))
        assert all(re.fullmatch(r"[0-9a-f]{32}", m) for m in d.md5.values())
        assert sum(d.n_samples.values()) > 0 and d.license.startswith("CC BY")
        assert d.task in ("binary", "multiclass", "multilabel", "ordinal")
        assert d.source and "MedMNIST v2" in d.citation
        if d.task == "binary":
            assert d.num_classes == 2 and d.positive_label in (0, 1)


def test_known_facts():
    b = get_info("BreastMNIST")
    assert b.md5[28] == "750601b1f35ba3300ea97c75c52ff8f6"
    assert b.labels[b.positive_label] == "malignant"
    p = get_info("pneumoniamnist")
    assert p.md5[28] == "28209eda62fecd6e6a2d98b1501bb15f" and p.n_samples == {"train": 4708, "val": 524, "test": 624}
    assert get_info("dermamnist").license == "CC BY-NC 4.0"
    assert get_info("chestmnist").task == "multilabel" and get_info("retinamnist").task == "ordinal"


def test_filenames_and_urls():
    d = get_info("pathmnist")
    assert d.filename(28) == "pathmnist.npz" and d.filename(224) == "pathmnist_224.npz"
    assert d.url(64) == "https://zenodo.org/records/10519652/files/pathmnist_64.npz?download=1"
    with pytest.raises(ConfigError, match="no 128 px release"):
        get_info("nodulemnist3d").filename(128)


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match=r"Unknown dataset 'pneumonimnist'\. Did you mean 'pneumoniamnist'\?.*medclass data list"):
        get_info("pneumonimnist")
