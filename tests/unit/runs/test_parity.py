"""Inference parity: a trained run applied to its own training files with `medclass predict` reproduces, to 1e-6, the
probabilities its evaluation saved in ``predictions/`` — for every preset and every kind of input file.

Before the input pipeline existed, `predict` read files with a separate, simpler path (crop, resize, channels)
that skipped presets, CT windows, CLAHE, field-of-view crops, colour constancy, MRI z-scores and the DICOM
frame, and refused DICOM, NIfTI and 16-bit files: every case here failed then.
:func:`test_parity_catches_a_second_preprocessing_path` shows the check has teeth: a predict path that skips the
preset differs by far more than the tolerance.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medclass.cli.main import main
from medclass.config import config_from_dict
from medclass.data.pipeline import InputPipeline
from medclass.runs import evaluate_run, train
from tests.imaging import write_manifest

# preset -> the input kinds it applies to (a CT window needs Hounsfield units: CT DICOM only)
MATRIX = {
    "none": ("png8", "png16", "tiff8", "tiff16", "jpeg", "png_rgb", "dicom_ct", "dicom_ct_rle", "dicom_cr_mono1",
             "dicom_mr", "dicom_mr_j2k", "nifti"),
    "ct-lung": ("dicom_ct", "dicom_ct_rle"),
    "ct-mediastinum": ("dicom_ct",),
    "ct-bone": ("dicom_ct",),
    "ct-brain": ("dicom_ct",),
    "ct-abdomen": ("dicom_ct",),
    "ct-multi": ("dicom_ct", "dicom_ct_rle"),
    "xray": ("png16", "tiff16", "jpeg", "dicom_cr_mono1"),
    "fundus": ("png_rgb", "jpeg_rgb"),
    "dermatology": ("jpeg_rgb", "png_rgb"),
    "mri": ("dicom_mr", "dicom_mr_j2k", "nifti"),
}
CASES = [(preset, kind) for preset, kinds in MATRIX.items() for kind in kinds]
FAST = {("none", "png8"), ("xray", "dicom_cr_mono1"), ("ct-multi", "dicom_ct_rle"), ("mri", "nifti"),
        ("fundus", "jpeg_rgb")}  # one per family in the fast tier; the whole matrix runs in the integration tier
TOLERANCE = 1e-6


def _train(tmp_path: Path, preset: str, kind: str) -> tuple[Path, Path]:
    manifest = write_manifest(tmp_path / "files", kind, n=24)
    cfg = config_from_dict({"data": {"manifest": str(manifest), "size": 24, "preprocess": {"preset": preset},
                                     "split_ratios": [0.5, 0.25, 0.25], "leakage": "warn"},
                            "model": {"name": "resnet9", "width": 4},
                            "train": {"epochs": 2, "batch_size": 8, "lr": 3e-3}, "eval": {"n_boot": 100}})
    run = train(cfg, tmp_path / "run").path
    for split in ("train", "test"):
        evaluate_run(run, split)
    return run, manifest


def _saved(run: Path) -> dict[str, np.ndarray]:
    """Probabilities saved by evaluation for every file of the run, keyed by absolute path."""
    root = Path(json.loads((run / "dataset.json").read_text())["image_root"])
    out = {}
    for split in ("train", "val", "test"):
        with open(run / "predictions" / f"{split}.csv", newline="") as f:
            for r in csv.DictReader(f):
                out[str(root / r["path"])] = np.array([float(r["p_0"]), float(r["p_1"])])
    return out


def _predicted(run: Path, files: list[str], out: Path) -> dict[str, np.ndarray]:
    assert main(["predict", str(run), *files, "--out", str(out), "--quiet"]) == 0
    with open(out, newline="") as f:
        return {r["path"]: np.array([float(r["p_0"]), float(r["p_1"])]) for r in csv.DictReader(f)}


@pytest.mark.parametrize("preset,kind", [pytest.param(p, k, marks=() if (p, k) in FAST else pytest.mark.integration)
                                         for p, k in CASES])
def test_predict_reproduces_the_saved_probabilities(tmp_path, preset, kind):
    run, _ = _train(tmp_path, preset, kind)
    saved = _saved(run)
    assert len(saved) == 24
    got = _predicted(run, sorted(saved), tmp_path / "pred.csv")
    assert set(got) == set(saved)
    diff = max(float(np.abs(got[k] - saved[k]).max()) for k in saved)
    assert diff <= TOLERANCE, f"{preset} x {kind}: predict differs from evaluation by {diff:.2e}"
    # the Python API, and arrays of decoded images, take the same path
    from medclass.runs import load_run

    model = load_run(run)
    some = sorted(saved)[:5]
    assert np.abs(model.predict_proba(some) - np.stack([saved[k] for k in some])).max() <= TOLERANCE
    assert (run / "preprocessing.json").is_file()
    assert InputPipeline.from_dict(json.loads((run / "preprocessing.json").read_text())).preprocess.preset == preset


def test_parity_covers_every_preset_and_input_kind():
    from medclass.config import PRESETS
    from tests.imaging import KINDS

    assert set(MATRIX) == set(PRESETS)  # every preset, each CT window on its own
    assert {k for kinds in MATRIX.values() for k in kinds} == set(KINDS)
    assert len(CASES) >= 30


def test_parity_catches_a_second_preprocessing_path(tmp_path, monkeypatch):
    """A predict path that skips the preset (the old bug) is caught: it differs by far more than the tolerance."""
    run, _ = _train(tmp_path, "xray", "png16")
    saved = _saved(run)
    real = InputPipeline.to_image

    def without_preset(self, decoded, where="image"):
        from medclass.config import PreprocessConfig, replace

        return real(replace(self, preprocess=PreprocessConfig()), decoded, where)

    monkeypatch.setattr(InputPipeline, "to_image", without_preset)
    got = _predicted(run, sorted(saved), tmp_path / "pred.csv")
    assert max(float(np.abs(got[k] - saved[k]).max()) for k in saved) > 100 * TOLERANCE
