"""Real DICOM files (pydicom's test files and the pydicom-data package) through the manifest pipeline.

The labels are real: each file's Modality (CT or MR) read from its header by the test. The files come from
several scanners and encodings (explicit/implicit VR, big endian, JPEG 2000, RLE, JPEG-LS) and sizes (16 px
to 1024 px). Series folders of pydicom's DICOMDIR test set are used as the patient ids.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medclass.config import DataConfig, config_from_dict
from medclass.data.build import build_dataset
from medclass.data.manifest_dataset import check_manifest
from medclass.runs import evaluate_run, train

from .test_manifest import read_rows, write_csv

# one file per image: no lossy/lossless twins of the same picture (those are a leak, tested below)
SINGLE_FILES = ["CT_small.dcm", "693_J2KR.dcm", "J2K_pixelrep_mismatch.dcm", "explicit_VR-UN.dcm",
                "MR_small.dcm", "MR2_J2KR.dcm", "emri_small.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm",
                "examples_overlay.dcm"]
SERIES = {  # DICOMDIR test set: patient folder / series folder / slice files (16x16 px)
    "77654033/CT2": ["17106", "17136", "17166", "17196"],
    "98892001/CT2N": ["6293", "6924"],
    "98892001/CT5N": ["2062", "2392", "2693", "3023", "3353"],
    "98892003/MR1": ["15820", "4919", "5641"],
    "98892003/MR2": ["15970", "4950", "4981", "5011", "6273", "6605", "6935"],
    "98892003/MR700": ["4467", "4528", "4558", "4588", "4618", "4648", "4678"],
}


def _dicomdir_root() -> Path:
    return Path(get_testdata_file("DICOMDIR")).parent


def real_dicom_manifest(root: Path) -> Path:
    """Copy real CT and MR files under ``root`` and write a manifest labelled by their Modality."""
    rows = []

    def add(src: Path, rel: str, patient: str) -> None:
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            modality = pydicom.dcmread(dst, stop_before_pixels=True).Modality
        rows.append({"path": rel, "label": modality, "patient_id": patient})

    for name in SINGLE_FILES:
        add(Path(get_testdata_file(name)), f"single/{name}", Path(name).stem)
    for series, files in SERIES.items():
        for f in files:
            add(_dicomdir_root() / series / f, f"series/{series}/{f}.dcm", series)
    assert {r["label"] for r in rows} == {"CT", "MR"}
    return write_csv(root / "dicom.csv", rows)


def test_train_one_epoch_from_real_dicom_files(tmp_path):
    manifest = real_dicom_manifest(tmp_path)
    cfg = config_from_dict({
        "data": {"manifest": str(manifest), "size": 32, "channels": 1, "split_ratios": [0.6, 0.2, 0.2]},
        "model": {"name": "resnet9", "width": 4}, "train": {"epochs": 1, "batch_size": 8},
        "eval": {"batch_size": 32, "n_boot": 200}})
    run = train(cfg, tmp_path / "run")
    card = run.read_status()
    assert card["state"] == "complete"
    split = read_rows(run.path / "split.csv")
    assert len(split) == 37
    series_splits = {}
    for r in split:
        series_splits.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in series_splits.values())  # every series kept in one split
    metrics = evaluate_run(run.path, "test")
    assert metrics["bootstrap"]["unit"] == "patient" and metrics["n"] > 0


def test_real_lossy_copy_of_a_ct_slice_is_caught_as_a_leak(tmp_path):
    """693_J2KI.dcm is a lossy JPEG 2000 encoding of the CT slice in 693_J2KR.dcm: a real near-duplicate."""
    rows = []
    for i, name in enumerate(["693_J2KR.dcm", "693_J2KI.dcm", "CT_small.dcm", "MR_small.dcm", "MR2_J2KR.dcm",
                              "emri_small.dcm"]):
        shutil.copy(get_testdata_file(name), tmp_path / name)
        rows.append({"path": name, "label": "CT" if i < 3 else "MR", "patient_id": f"P{i}",
                     "split": ["train", "test", "val", "train", "test", "val"][i]})
    m = write_csv(tmp_path / "m.csv", rows)
    result = check_manifest(DataConfig(manifest=str(m), size=32))
    kinds = [leak.kind for leak in result.leakage.leaks]
    assert kinds == ["near-duplicate"], result.summary()
    assert "693_J2KI.dcm" in result.summary() and "693_J2KR.dcm" in result.summary()


def test_decoded_dicom_is_cached_between_runs(tmp_path):
    manifest = real_dicom_manifest(tmp_path)
    cfg = DataConfig(manifest=str(manifest), size=32, channels=1, split_ratios=(0.6, 0.2, 0.2),
                     cache_dir=str(tmp_path / "cache"))
    first, second = build_dataset(cfg), build_dataset(cfg)
    assert not first.facts["decode"]["from_cache"] and second.facts["decode"]["from_cache"]
    assert first.facts["decode"]["source_sizes"]["mixed"]  # 16 px to 1024 px sources, all resized to 32
    for s in first.splits:
        assert np.array_equal(first.split(s).images, second.split(s).images)


IDENTIFYING = {"PatientName": "Doe^Jane", "PatientBirthDate": "19700101", "InstitutionName": "St Example Hospital",
               "ReferringPhysicianName": "Who^Doctor", "PatientAddress": "1 Secret Lane", "AccessionNumber": "ACC98765",
               "PatientID": "MRN-4242"}


def test_identifying_dicom_fields_never_reach_logs_or_the_run_folder(tmp_path, caplog):
    manifest = real_dicom_manifest(tmp_path)
    rows = read_rows(manifest)
    for r in rows:  # stamp identifying fields into every file
        ds = pydicom.dcmread(tmp_path / r["path"])
        for k, v in IDENTIFYING.items():
            setattr(ds, k, v)
        ds.save_as(tmp_path / r["path"])
    rows[0]["path"] = "missing/file.dcm"  # an error path too: a bad row is listed in bad_rows.csv
    m = write_csv(tmp_path / "stamped.csv", rows)
    cfg = config_from_dict({
        "data": {"manifest": str(m), "size": 32, "channels": 1, "split_ratios": [0.6, 0.2, 0.2], "skip_bad": True,
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "resnet9", "width": 4}, "train": {"epochs": 1, "batch_size": 8},
        "eval": {"batch_size": 32, "n_boot": 200}})
    with caplog.at_level(logging.DEBUG):
        run = train(cfg, tmp_path / "run")
        evaluate_run(run.path, "test")
        from medclass.reports import build_report
        build_report(run.path)
    texts = [caplog.text] + [p.read_bytes().decode("utf-8", "replace") for p in run.path.rglob("*") if p.is_file()]
    texts += [p.read_bytes().decode("latin-1") for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert (run.path / "bad_rows.csv").is_file()
    for value in IDENTIFYING.values():
        for needle in {value, value.replace("^", " ")}:  # (short fragments like "Doe" occur in base64 figures)
            assert not any(needle in t for t in texts), f"{needle!r} leaked"


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
                                  "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
def test_compressed_and_other_encodings_decode_like_the_uncompressed_file(name):
    from medclass.data.readers import read_file

    ref = read_file(get_testdata_file("MR_small.dcm")).pixels
    assert np.array_equal(read_file(get_testdata_file(name)).pixels, ref)
