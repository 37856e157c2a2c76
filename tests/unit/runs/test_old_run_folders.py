"""Run folders written by medclass 0.1.0 (tests/fixtures/runs_v0.1: no saved pipeline, no checksums, no lock or
owner) still evaluate, predict and resume."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from medclass.run_folder import RunFolder
from medclass.runs import evaluate_run, load_run, resume
from tests.conftest import make_npz

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "runs_v0.1"


def _copy(name: str, tmp_path: Path) -> Path:
    """The fixture run in a temporary folder, its config pointed at a fresh copy of the toy data it trained on."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = make_npz(tmp_path / "toy.npz", n=(64, 32, 32), size=16)
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    cfg = run / "config.yaml"
    cfg.write_text(cfg.read_text().replace("/tmp/oldfix/toy.npz", str(data)))
    return run


def _val_probs(run: Path) -> np.ndarray:
    with open(run / "predictions" / "val.csv", newline="") as f:
        return np.array([[float(r["p_0"]), float(r["p_1"])] for r in csv.DictReader(f)])


def test_an_old_complete_run_evaluates_and_predicts_as_it_did(tmp_path, caplog):
    run = _copy("complete", tmp_path)
    m = evaluate_run(run, "test")
    assert m["n"] == 32 and 0 <= m["auc"] <= 1 and (run / "metrics" / "test.json").is_file()
    images = np.load(tmp_path / "toy.npz")["val_images"]
    p = load_run(run).predict_proba(images)
    # the probabilities medclass 0.1.0 saved for these images, reproduced through today's pipeline
    assert np.abs(p - _val_probs(run)).max() <= 1e-6
    assert "older medclass" in caplog.text


def test_an_old_interrupted_run_resumes(tmp_path):
    run = _copy("interrupted", tmp_path)
    assert RunFolder(run).read_status()["state"] == "interrupted"
    resume(run)
    st = RunFolder(run).read_status()
    assert st["state"] == "complete" and st["epochs_completed"] == 3
    assert (run / "preprocessing.json").is_file()  # written on resume
    # it continues the same training: the result is the 0.1.0 run that was never interrupted (up to the CPU's
    # floating-point rounding, as the fixtures were made on another machine)
    old = _copy("complete", tmp_path / "ref")
    assert np.abs(_val_probs(run) - _val_probs(old)).max() <= 1e-3


def test_old_checkpoints_load_without_a_checksum(tmp_path):
    from medclass.models import load_weights

    state, meta = load_weights(FIXTURES / "complete" / "checkpoints" / "best.safetensors")
    assert "pipeline" not in meta and meta["format"] == "medclass-weights-1" and state


@pytest.mark.parametrize("name", ["complete", "interrupted"])
def test_the_fixtures_are_what_the_readme_says(name):
    cfg = (FIXTURES / name / "config.yaml").read_text()
    assert "/tmp/oldfix/toy.npz" in cfg and "width: 4" in cfg
