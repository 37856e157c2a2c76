"""What `medclass predict` accepts: files of every kind, folders (recursively), a manifest CSV; a file that cannot be
used is named with the reason, and --skip-bad goes on and lists it. A file unlike the training files (another DICOM
modality) is predicted, with a warning naming the field."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medclass.cli.main import main
from medclass.config import config_from_dict
from medclass.errors import DataError
from medclass.runs import evaluate_run, load_run, train
from medclass.runs.predict import expand_inputs
from tests.imaging import write_image, write_manifest


@pytest.fixture(scope="module")
def ct_run(tmp_path_factory) -> Path:
    """A tiny run trained on CT DICOM files with the lung window."""
    tmp = tmp_path_factory.mktemp("ct")
    manifest = write_manifest(tmp / "files", "dicom_ct", n=24)
    cfg = config_from_dict({"data": {"manifest": str(manifest), "size": 24, "preprocess": {"preset": "ct-lung"},
                                     "split_ratios": [0.5, 0.25, 0.25], "leakage": "warn",
                                     "cache_dir": str(tmp / "cache")},
                            "model": {"name": "resnet9", "width": 4}, "train": {"epochs": 1, "batch_size": 8},
                            "eval": {"n_boot": 100}})
    run = train(cfg, tmp / "run").path
    evaluate_run(run, "test")
    return run


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folders_recursive_and_hidden_files(ct_run, tmp_path, capsys):
    src = Path(json.loads((ct_run / "dataset.json").read_text())["image_root"])
    (tmp_path / "a" / "b").mkdir(parents=True)
    files = sorted(src.glob("*.dcm"))[:4]
    for f in files[:2]:
        shutil.copy(f, tmp_path / "a" / f.name)
    for f in files[2:]:
        shutil.copy(f, tmp_path / "a" / "b" / f.name)
    (tmp_path / "a" / ".hidden.dcm").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    assert len(expand_inputs([tmp_path / "a"])) == 2
    assert len(expand_inputs([tmp_path / "a"], recursive=True)) == 4
    assert main(["predict", str(ct_run), str(tmp_path / "a"), "--recursive", "--out", str(tmp_path / "p.csv")]) == 0
    rows = _rows(tmp_path / "p.csv")
    assert len(rows) == 4 and all(r["prediction"] in ("neg", "pos") for r in rows)
    with pytest.raises(DataError, match="holds no files to predict .*without --recursive"):
        expand_inputs([_empty(tmp_path)])


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    return tmp_path / "empty"


def test_manifest_with_labels_gives_a_gradable_csv(ct_run, tmp_path, capsys):
    src = Path(json.loads((ct_run / "dataset.json").read_text())["image_root"])
    out = tmp_path / "p.csv"
    assert main(["predict", str(ct_run), "--manifest", str(src / "manifest.csv"), "--out", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 24 and {"y", "p_0", "p_1", "path", "prediction", "patient_id", "site"} <= set(rows[0])
    # the one column convention: evaluate --predictions grades it as it is
    assert main(["evaluate", "--predictions", str(out), "--n-boot", "100", "--group-column", "patient_id",
                 "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 24


def test_a_bad_file_among_many_is_named_and_skip_bad_goes_on(ct_run, tmp_path, capsys):
    src = Path(json.loads((ct_run / "dataset.json").read_text())["image_root"])
    good = sorted(src.glob("*.dcm"))[:3]
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(good[0].read_bytes()[:400])  # truncated
    png = write_image("png8", tmp_path / "photo", 0, np.random.default_rng(0))  # no Hounsfield units
    assert main(["predict", str(ct_run), *map(str, good), str(bad)]) == 2
    assert "broken.dcm" in capsys.readouterr().err
    assert main(["predict", str(ct_run), *map(str, good), str(bad), str(png), "--skip-bad",
                 "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 file(s)" in err and "broken.dcm" in err and "Hounsfield" in err
    assert len(_rows(tmp_path / "p.csv")) == 3
    assert {r["path"] for r in _rows(tmp_path / "p.bad.csv")} == {str(bad), str(png)}


def test_a_file_of_another_modality_is_predicted_with_a_warning(ct_run, tmp_path, capsys):
    mr = write_image("dicom_mr", tmp_path / "mr", 0, np.random.default_rng(1))
    with pytest.raises(DataError, match="Hounsfield"):  # an MR image cannot be put through a CT window
        load_run(ct_run).predict_proba([mr])
    model = load_run(ct_run)
    ct = write_image("dicom_ct", tmp_path / "ct", 0, np.random.default_rng(2))
    import pydicom

    ds = pydicom.dcmread(ct)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "ct_m1.dcm")
    prepared = model.prepare_many([tmp_path / "ct_m1.dcm"])
    assert len(prepared.kept) == 1
    assert any("Photometric Interpretation is MONOCHROME1" in w and "MONOCHROME2" in w for w in prepared.warnings)


def test_decompression_bomb_is_a_clear_error(ct_run, tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match="decompression-bomb guard"):
        load_run(ct_run).predict_proba([big])


def test_arrays_16_bit_and_float(ct_run):
    model = load_run(ct_run)
    with pytest.raises(DataError, match="must hold uint8 .* or uint16"):
        model.predict_proba(np.zeros((2, 30, 30), np.float32))
    with pytest.raises(DataError, match="Hounsfield"):  # an array carries no units: a CT window cannot apply
        model.predict_proba(np.zeros((30, 30), np.uint16))


def test_predict_of_a_run_made_before_the_pipeline_was_saved(ct_run, tmp_path, caplog):
    """A checkpoint without a saved pipeline: it is re-created from the run's configuration, with a warning."""
    from medclass.models.checkpoint import load_weights, save_weights

    old = tmp_path / "old"
    shutil.copytree(ct_run, old)
    for name in ("best.safetensors", "last.safetensors"):
        state, meta = load_weights(old / "checkpoints" / name)
        meta.pop("pipeline")
        save_weights(old / "checkpoints" / name, state, meta)
    (old / "preprocessing.json").unlink()
    src = Path(json.loads((ct_run / "dataset.json").read_text())["image_root"])
    files = sorted(src.glob("*.dcm"))[:6]
    new, legacy = load_run(ct_run).predict_proba(files), load_run(old).predict_proba(files)
    assert np.abs(new - legacy).max() == 0.0  # the same preset, window, size and normalisation
    assert "older medclass" in caplog.text
