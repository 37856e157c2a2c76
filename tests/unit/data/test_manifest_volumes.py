"""Volumes in a manifest (``data.volumes``): NIfTI files and DICOM series folders become a 3D dataset, decoded by the
run's pipeline, cached, checked for identical copies, and predicted identically after training.

Volumes are tiny synthetic ones: NIfTI files written with nibabel (class 1 has a bright cube in its centre) and
DICOM series folders written slice by slice with pydicom (:func:`tests.unit.data.test_series.write_slices`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from medclass.cli.main import main
from medclass.cli.options import overrides_from_args
from medclass.config import DataConfig, config_from_dict, validate
from medclass.data.build import build_dataset
from medclass.data.manifest_dataset import check_manifest, load_manifest_dataset
from medclass.errors import ConfigError, DataError
from medclass.runs import evaluate_run, train
from medclass.runs.predict import load_run
from tests.unit.data.test_series import canonical, write_slices

SIZE = 8


def nifti_volume(path: Path, label: int, seed: int) -> Path:
    """A (14, 12, 10) int16 volume of 1 x 1 x 1.5 mm voxels; class 1 has a bright cube in its centre."""
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 200, (14, 12, 10)).astype(np.int16)
    if label:
        vol[4:10, 3:9, 3:7] = 900
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 1.5, 1.0])), path)
    return path


def series_folder(folder: Path, label: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    c = canonical((6, 5, 4), seed=seed)
    if label:
        c[2:4, 1:4, 1:3] = 1500
    write_slices(folder, c, seed=seed)
    return folder


def write_volume_manifest(root: Path, n_nifti: int = 10, n_series: int = 2,
                          extra: list[tuple[str, str]] = ()) -> Path:
    """``n_nifti`` NIfTI files and ``n_series`` series folders, labels alternating, one patient each."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_nifti):
        nifti_volume(root / f"scan{i:02d}.nii.gz", i % 2, seed=i)
        rows.append((f"scan{i:02d}.nii.gz", "lesion" if i % 2 else "normal", f"p{i:02d}"))
    for j in range(n_series):
        series_folder(root / f"series{j}", j % 2, seed=100 + j)
        rows.append((f"series{j}", "lesion" if j % 2 else "normal", f"s{j}"))
    rows += [(p, label, f"x{k}") for k, (p, label) in enumerate(extra)]
    path = root / "manifest.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "patient_id"])
        w.writerows(rows)
    return path


def volume_data(manifest: Path, **kw) -> DataConfig:
    return DataConfig(manifest=str(manifest), volumes=True, size=SIZE, split_ratios=(0.5, 0.25, 0.25),
                      **kw)


def test_a_volume_manifest_becomes_a_3d_dataset(tmp_path):
    ds = load_manifest_dataset(volume_data(write_volume_manifest(tmp_path / "v")))
    assert ds.spatial_dims == 3 and ds.pipeline.spatial_dims == 3 and ds.unit == "volume"
    assert ds.labels == ("lesion", "normal") and ds.channels == 1
    assert sum(len(s) for s in ds.splits.values()) == 12
    for s in ds.splits.values():
        assert s.images.shape[1:] == (SIZE, SIZE, SIZE, 1) and s.images.dtype == np.uint8
    paths = np.concatenate([s.meta["path"] for s in ds.splits.values()])
    assert {"series0", "series1", "scan00.nii.gz"} <= set(paths.tolist())
    # labels follow the rows: scanNN is lesion for odd NN
    for s in ds.splits.values():
        for p, y in zip(s.meta["path"], s.labels):
            if p.startswith("scan"):
                assert ds.labels[int(y)] == ("lesion" if int(p[4:6]) % 2 else "normal")
    leakage = json.loads(ds.files["leakage.json"])
    assert ds.facts["leakage"]["near_duplicates_checked"] is False
    assert leakage["checked"]["perceptual_hashes"] is False
    assert ds.pipeline.expected["size"]["size"]["max"] == [10, 12, 14]  # source grids (D, H, W), reoriented
    assert ds.pipeline.to_dict()["spatial_dims"] == 3


def test_identical_volumes_in_two_splits_are_a_leak(tmp_path):
    root = tmp_path / "v"
    manifest = write_volume_manifest(root, n_nifti=8, n_series=0)
    shutil.copy(root / "scan00.nii.gz", root / "copy.nii.gz")
    with open(manifest, "a", newline="") as f:
        csv.writer(f).writerow(["copy.nii.gz", "normal", "other"])
    text = manifest.read_text().splitlines()
    with open(manifest, "w", newline="") as f:  # fix the split so the copy is in another split than its original
        w = csv.writer(f)
        w.writerow(["path", "label", "patient_id", "split"])
        for i, line in enumerate(text[1:]):
            w.writerow([*line.split(","), "test" if line.startswith("copy") else ("train" if i % 3 else "val")])
    result = check_manifest(volume_data(manifest))
    assert [leak.kind for leak in result.leakage.leaks] == ["duplicate"]
    assert "near-duplicates: not checked" in result.summary()


def test_a_broken_series_is_a_bad_row_with_the_readers_reason(tmp_path):
    root = tmp_path / "v"
    manifest = write_volume_manifest(root)
    slices = sorted((root / "series1").iterdir())
    positions = {p: float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in slices}
    middle = sorted(positions, key=positions.get)[len(slices) // 2]
    middle.unlink()  # a gap in the series
    with pytest.raises(DataError, match=r"row 13 \(series1\): folder '.*series1': 1 slice\(s\) are missing"):
        load_manifest_dataset(volume_data(manifest))
    ds = load_manifest_dataset(volume_data(manifest, skip_bad=True))
    assert sum(len(s) for s in ds.splits.values()) == 11
    bad = list(csv.DictReader(ds.files["bad_rows.csv"].splitlines()))
    assert [(b["row"], b["path"]) for b in bad] == [("13", "series1")] and "missing" in bad[0]["reason"]


def test_two_series_in_one_folder_is_a_bad_row(tmp_path):
    root = tmp_path / "v"
    manifest = write_volume_manifest(root)
    write_slices(root / "series0", canonical((6, 5, 4), seed=7), prefix="B", seed=7)  # a second series
    check = check_manifest(volume_data(manifest))
    assert len(check.bad) == 1 and "holds 2 DICOM series" in check.bad[0].reason


def test_an_image_in_a_volume_manifest_is_a_clear_bad_row(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "flat.png")
    manifest = write_volume_manifest(root, extra=[("flat.png", "normal")])
    with pytest.raises(DataError, match=r"row 14 \(flat.png\): '.*flat.png' is an ordinary image file, not a "
                                        r"volume"):
        load_manifest_dataset(volume_data(manifest))


def test_a_single_dicom_slice_is_not_a_volume(tmp_path):
    root = tmp_path / "v"
    manifest = write_volume_manifest(root)
    one = tmp_path / "one"
    one.mkdir()
    write_slices(one, canonical((1, 5, 4)))
    slice_file = next(one.iterdir())
    shutil.copy(slice_file, root / "slice.dcm")
    with open(manifest, "a", newline="") as f:
        csv.writer(f).writerow(["slice.dcm", "normal", "x"])
    check = check_manifest(volume_data(manifest))
    assert len(check.bad) == 1 and "single 2D image" in check.bad[0].reason


def test_a_series_folder_in_an_image_manifest_points_to_data_volumes(tmp_path):
    manifest = write_volume_manifest(tmp_path / "v", n_nifti=0, n_series=2)
    with pytest.raises(DataError, match=r"it is a folder; a folder of DICOM slices is a volume: set "
                                        r"data.volumes=true"):
        load_manifest_dataset(DataConfig(manifest=str(manifest), size=SIZE))


def test_the_decode_cache_is_hit_and_a_changed_slice_invalidates_it(tmp_path):
    root = tmp_path / "v"
    cfg = volume_data(write_volume_manifest(root), cache_dir=str(tmp_path / "cache"))
    first, second = build_dataset(cfg), build_dataset(cfg)
    assert not first.facts["decode"]["from_cache"] and second.facts["decode"]["from_cache"]
    for s in first.splits:
        assert np.array_equal(first.split(s).images, second.split(s).images)
    assert second.spatial_dims == 3
    victim = sorted((root / "series0").iterdir())[0]
    victim.write_bytes(victim.read_bytes())  # rewritten: a new modification time
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10 ** 9))
    assert not build_dataset(cfg).facts["decode"]["from_cache"]


def test_volume_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="data.volumes reads a manifest's rows as volumes, but no data.manifest"):
        validate(config_from_dict({"data": {"volumes": True}}))
    manifest = write_volume_manifest(tmp_path / "v", n_nifti=2, n_series=0)
    with pytest.raises(ConfigError, match=r"data.size=600 with data.volumes .* choose data.size <= 512"):
        load_manifest_dataset(DataConfig(manifest=str(manifest), volumes=True, size=600))


# --- train -> evaluate -> predict ------------------------------------------------------------------------------


def test_train_evaluate_predict_a_volume_manifest(tmp_path):
    root = tmp_path / "v"
    manifest = write_volume_manifest(root)
    cfg = config_from_dict({"data": {"manifest": str(manifest), "volumes": True, "size": SIZE,
                                     "split_ratios": [0.5, 0.25, 0.25]},
                            "model": {"name": "cnn3d_small", "width": 4},
                            "train": {"epochs": 1, "batch_size": 4}, "eval": {"n_boot": 100}})
    run = train(cfg, tmp_path / "run").path
    assert json.loads((run / "preprocessing.json").read_text())["spatial_dims"] == 3
    assert json.loads((run / "dataset.json").read_text())["spatial_dims"] == 3
    for split in ("train", "test"):
        evaluate_run(run, split)
    saved = {}
    for split in ("train", "val", "test"):
        with open(run / "predictions" / f"{split}.csv", newline="") as f:
            saved.update({r["path"]: np.array([float(r["p_0"]), float(r["p_1"])]) for r in csv.DictReader(f)})
    assert len(saved) == 12
    model = load_run(run)
    nifti = sorted(p for p in saved if p.endswith(".nii.gz"))[:3]
    got = model.predict_proba([root / p for p in nifti])
    assert np.abs(got - np.stack([saved[p] for p in nifti])).max() <= 1e-6
    # the command line: a NIfTI file and a series folder, as given
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(root / nifti[0]), str(root / "series0"), "--out", str(out), "--quiet"]) == 0
    with open(out, newline="") as f:
        rows = {Path(r["path"]).name: np.array([float(r["p_0"]), float(r["p_1"])]) for r in csv.DictReader(f)}
    assert set(rows) == {nifti[0], "series0"}
    assert np.abs(rows[nifti[0]] - saved[nifti[0]]).max() <= 1e-6
    assert np.abs(rows["series0"] - saved["series0"]).max() <= 1e-6


def test_the_command_line_reads_volume_manifests(tmp_path, capsys):
    manifest = write_volume_manifest(tmp_path / "v", n_nifti=4, n_series=2)
    assert main(["data", "check", str(manifest), "--set", "data.volumes=true", "--set", f"data.size={SIZE}"]) == 0
    assert "near-duplicates: not checked" in capsys.readouterr().out
    args = argparse.Namespace(volumes=True, manifest=str(manifest))
    assert overrides_from_args(args) == {"data": {"manifest": str(manifest), "volumes": True}}
