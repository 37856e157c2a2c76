"""`medclass data export-images`: a split as PNG files and a manifest that predict, evaluate --manifest and train
read as they are; predicting the PNGs reproduces the probabilities evaluation saved for the same images."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from medclass.cli.main import main
from medclass.data.datasets import load_npz
from medclass.data.to_files import write_image_files
from medclass.errors import ConfigError
from medclass.run_folder import read_predictions
from medclass.runs import evaluate_run, load_run, train
from medclass.utils.io import read_json
from tests.conftest import fast_config, make_npz


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("channels", [1, 3])
def test_png_files_hold_the_split_pixels_and_the_class_names(tmp_path, channels):
    npz = make_npz(tmp_path / "toy.npz", channels=channels, classes=3)
    manifest = write_image_files(str(npz), tmp_path / "out", "val", limit=10)
    ds = load_npz(npz)
    rows = _rows(manifest)
    assert [r["path"] for r in rows] == [f"val-{i:05d}.png" for i in range(10)]
    for i, r in enumerate(rows):
        png = np.asarray(Image.open(manifest.parent / r["path"]))
        assert np.array_equal(png.reshape(ds.split("val").images[i].shape), ds.split("val").images[i])
        assert r["label"] == ds.labels[int(ds.split("val").labels[i])] and int(r["split_index"]) == i


def test_multilabel_gets_one_column_per_label(tmp_path):
    npz = make_npz(tmp_path / "ml.npz", classes=3, multilabel=True)
    rows = _rows(write_image_files(str(npz), tmp_path / "out", "test"))
    ds = load_npz(npz)
    assert list(rows[0]) == ["path", *ds.labels, "split_index"]
    assert [[int(r[k]) for k in ds.labels] for r in rows] == ds.split("test").labels.tolist()


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    npz = make_npz(tmp_path / "toy.npz")
    with pytest.raises(ConfigError, match="split"):
        write_image_files(str(npz), tmp_path / "out", "holdout")
    assert main(["data", "export-images", str(npz), "--out", str(tmp_path / "o"), "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o" / "manifest.csv").exists()


def test_predicting_the_exported_files_reproduces_the_saved_test_probabilities(tmp_path, capsys):
    npz = make_npz(tmp_path / "toy.npz", n=(64, 32, 40))
    run = train(fast_config(npz, epochs=1), tmp_path / "run").path
    evaluate_run(run, "test")
    manifest = write_image_files(str(npz), tmp_path / "png", "test")
    labels, saved, _ = read_predictions(run / "predictions" / "test.csv")
    proba = load_run(run).predict_proba([str(manifest.parent / r["path"]) for r in _rows(manifest)])
    assert np.abs(proba - saved).max() <= 1e-6
    # the manifest is an external set as it is: same images, same metrics
    assert main(["evaluate", str(run), "--manifest", str(manifest), "--name", "png"]) == 0
    ext, test = (read_json(run / "metrics" / f"{n}.json") for n in ("external-png", "test"))
    assert ext["n"] == len(labels) and abs(ext["auc"] - test["auc"]) <= 1e-9 and ext["acc"] == test["acc"]


def test_a_manifest_column_named_like_a_predictions_column_is_kept_renamed(tmp_path):
    from medclass.run_folder import read_predictions_with_meta, write_predictions

    path = tmp_path / "p.csv"
    write_predictions(path, np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]),
                      {"index": np.array(["7", "8"]), "p_0": np.array(["a", "b"]), "site": np.array(["x", "y"])})
    with open(path) as f:
        assert f.readline().strip() == "index,y,p_0,p_1,manifest_index,manifest_p_0,site"
    y, p, extra = read_predictions_with_meta(path)
    assert y.tolist() == [0, 1] and np.allclose(p, [[0.9, 0.1], [0.2, 0.8]])
    assert extra["manifest_index"].tolist() == ["7", "8"] and extra["site"].tolist() == ["x", "y"]
