"""End to end on the real BreastMNIST file (../shared/data or $MEDCLASS_DATA): a few epochs, then
evaluate, predict, and a resume after a hard kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score

from medclass import build_config, evaluate_run, load_run, train
from medclass.models import load_weights
from medclass.run_folder import read_predictions
from medclass.runs import RunFolder
from tests.conftest import make_npz, needs_real_data

pytestmark = pytest.mark.integration


@needs_real_data
def test_breastmnist_default_recipe_short_run(real_data_dir, tmp_path):
    cfg = build_config("default", overrides={"data": {"dataset": "breastmnist", "data_dir": str(real_data_dir),
                                                      "download": False},
                                             "train": {"epochs": 4}})
    folder = train(cfg, tmp_path / "b0")
    st = folder.read_status()
    assert st["state"] == "complete" and st["epochs_completed"] == 4
    card = json.loads(folder.dataset_card.read_text())
    assert card["splits"]["train"] == {"n": 546, "per_class": [147, 399]} and card["license"] == "CC BY 4.0"
    m = evaluate_run(folder.path, "test")
    assert m["n"] == 156 and m["positive_class"] == "malignant"
    # metrics/test.json agrees with scikit-learn computed from the saved predictions
    saved = json.loads(folder.metrics("test").read_text())
    y, p, _ = read_predictions(folder.predictions("test"))
    pred = (p[:, 1] > 0.5).astype(int)
    mal_true, mal_pred = (y == 0).astype(int), (pred == 0).astype(int)  # malignant (label 0) is "positive"
    assert saved["auc"] == pytest.approx(roc_auc_score(y, p[:, 1]), abs=1e-6)
    assert saved["acc"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert saved["sensitivity"] == pytest.approx(recall_score(mal_true, mal_pred, zero_division=np.nan), nan_ok=True)
    assert saved["specificity"] == pytest.approx(recall_score(1 - mal_true, 1 - mal_pred, zero_division=np.nan),
                                                 nan_ok=True)
    assert saved["ppv"] == pytest.approx(precision_score(mal_true, mal_pred, zero_division=np.nan), nan_ok=True)
    assert saved["npv"] == pytest.approx(precision_score(1 - mal_true, 1 - mal_pred, zero_division=np.nan),
                                         nan_ok=True)
    assert saved["f1"] == pytest.approx(f1_score(mal_true, mal_pred, zero_division=np.nan), nan_ok=True)
    assert saved["confusion_matrix"] == confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert saved["auc"] > 0.6  # four epochs already learn something
    # the loaded run predicts the saved test probabilities from raw arrays
    raw = np.load(real_data_dir / "breastmnist.npz")["test_images"]
    proba = load_run(folder.path).predict_proba(raw)
    assert np.allclose(proba, p, atol=1e-5)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "medclass", *args]


def test_resume_after_sigkill_mid_epoch_matches_uninterrupted_run(tmp_path):
    data = make_npz(tmp_path / "toy.npz", n=(1200, 64, 64), size=28)
    common = ["--dataset", str(data), "--seed", "3", "--epochs", "5", "--batch-size", "32", "--set",
              "model.width=8", "--set", "train.augment.hflip=true", "--set", "train.augment.rotate=10",
              "--set", "model.dropout=0.1", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    subprocess.run(_cli("train", *common, "--out", str(tmp_path / "a")), check=True, env=env, timeout=300)

    proc = subprocess.Popen(_cli("train", *common, "--out", str(tmp_path / "b")), env=env)
    hist = tmp_path / "b" / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline:  # kill it as soon as epoch 2 is on disk: it is then inside epoch 3
        if hist.is_file() and len(hist.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    b = RunFolder(tmp_path / "b")
    st = b.read_status()
    # killed: never marked complete (status.json is written last, so it may trail history.csv by one epoch); its
    # file still says running, but the owning process is gone, so it reads as interrupted
    assert st["state"] == "interrupted" and 1 <= st["epochs_completed"] < 5
    assert json.loads((b.path / "status.json").read_text())["state"] == "running"
    assert (b.path / ".lock").is_file()  # left by the killed process; the resume takes the stale lock over
    subprocess.run(_cli("train", "--resume", str(b.path), "--quiet"), check=True, env=env, timeout=300)
    assert b.read_status()["state"] == "complete" and not (b.path / ".lock").exists()
    for name in ("last.safetensors", "best.safetensors"):
        wa, _ = load_weights(tmp_path / "a" / "checkpoints" / name)
        wb, _ = load_weights(b.checkpoints / name)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), f"{name} differs after resume"
        # checkpoints are byte-reproducible (sorted metadata), whatever interrupted the run
        assert (tmp_path / "a" / "checkpoints" / name).read_bytes() == (b.checkpoints / name).read_bytes()
