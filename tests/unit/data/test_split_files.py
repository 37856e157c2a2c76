import logging

import numpy as np
import pytest

from medclass.data.split_files import apply_split, load_split, save_split
from medclass.data.splits import split_by_ratios
from medclass.errors import DataError


def test_save_load_apply_round_trip(tmp_path, caplog):
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 7, 30)
    groups = np.repeat([f"P{i:03d}" for i in range(30)], sizes)
    labels = np.repeat(rng.integers(0, 2, 30), sizes)
    keys = [f"images/{g}/img,{i}.png" for i, g in enumerate(groups)]  # a comma in a path survives the CSV
    split = split_by_ratios(labels, groups, seed=0)
    path = tmp_path / "run" / "split.csv"
    save_split(path, keys, split, groups)
    assert path.read_text().splitlines()[0] == "key,split,group"
    saved = load_split(path)
    assert saved == dict(zip(keys, split))
    np.testing.assert_array_equal(apply_split(saved, keys, "manifest.csv"), split)
    with caplog.at_level(logging.INFO, logger="medclass.data.split_files"):  # fewer rows now: fine, logged
        np.testing.assert_array_equal(apply_split(saved, keys[5:], "manifest.csv"), split[5:])
    assert "5 keys of the saved split are not in the current rows" in caplog.text
    save_split(tmp_path / "nogroup.csv", keys[:2], split[:2])
    assert (tmp_path / "nogroup.csv").read_text().splitlines()[0] == "key,split"


def test_split_file_errors(tmp_path):
    with pytest.raises(DataError, match="'.*none.csv' does not exist"):
        load_split(tmp_path / "none.csv")
    (tmp_path / "cols.csv").write_text("path,fold\na.png,train\n")
    with pytest.raises(DataError, match="lacks the column\\(s\\) key, split; found path, fold"):
        load_split(tmp_path / "cols.csv")
    (tmp_path / "name.csv").write_text("key,split\na.png,train\nb.png,Tset\n")
    with pytest.raises(DataError, match=r"line 3: split 'Tset' is not one of train, val, test "
                                        r"\(did you mean 'test'\?\)"):
        load_split(tmp_path / "name.csv")
    (tmp_path / "dup.csv").write_text("key,split\na.png,train\nb.png,val\na.png,test\n")
    with pytest.raises(DataError, match="line 4: key 'a.png' already appears on line 2"):
        load_split(tmp_path / "dup.csv")
    (tmp_path / "bom.csv").write_bytes("\ufeffkey,split\na.png, val \n".encode())  # Excel's BOM, stray spaces
    assert load_split(tmp_path / "bom.csv") == {"a.png": "val"}
    saved = {"a.png": "train", "b.png": "val"}
    with pytest.raises(DataError, match=r"manifest.csv: 7 of 8 rows are not in the saved split, e.g. 'c0.png', "
                                        r"'c1.png', 'c2.png', 'c3.png', 'c4.png'\. .*make a new split"):
        apply_split(saved, ["a.png"] + [f"c{i}.png" for i in range(7)], "manifest.csv")
    with pytest.raises(DataError, match="keys appear more than once: 'x'"):
        save_split(tmp_path / "s.csv", ["x", "y", "x"], ["train", "val", "test"])
    assert not (tmp_path / "s.csv").exists()
