"""K-fold cross-validation and the refit on train+val (medclass/runs/crossval.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medclass.config import replace
from medclass.errors import ConfigError, RunFolderError
from medclass.models import load_weights
from medclass.run_folder import read_predictions
from medclass.runs import RunFolder, cross_validate, ensemble_runs, evaluate_run, train
from medclass.runs.crossval import read_predictions_with_meta
from medclass.training import Callback
from tests.conftest import fast_config


def _cfg(dataset, **train):
    cfg = fast_config(dataset, **{"epochs": 2, **train})
    return replace(cfg, data=replace(cfg.data, leakage="off"), eval=replace(cfg.eval, n_boot=200))


class _CountFits(Callback):
    def __init__(self, stop_at: int | None = None):
        self.n, self.stop_at = 0, stop_at

    def on_fit_start(self, trainer):
        self.n += 1
        if self.n == self.stop_at:
            raise KeyboardInterrupt


def test_cross_validate_oof_refit_and_evaluation(toy_npz, tmp_path):
    out = tmp_path / "cv"
    cv = cross_validate(_cfg(toy_npz), out, folds=3)
    saved = json.loads((out / "cv.json").read_text())
    assert saved["folds"] == 3 and len(saved["per_fold"]) == 3 and saved["unit"] == "image"
    assert {"mean", "sd"} <= set(saved["across_folds"]["auc"])
    assert saved["chosen_epochs"] == int(np.floor(np.median([r["best_epoch"] for r in saved["per_fold"]]) + 0.5))
    # the pooled out-of-fold predictions: every train+val image once, scored as sklearn scores them
    y, p, extra = read_predictions_with_meta(out / "oof.csv")
    assert len(y) == 64 + 32 and sorted(extra["source"]) == sorted([f"train[{i}]" for i in range(64)]
                                                                   + [f"val[{i}]" for i in range(32)])
    assert saved["oof"]["auc"] == pytest.approx(roc_auc_score(y, p[:, 1]), abs=1e-6)
    assert cv["oof"]["auc"] == saved["oof"]["auc"]
    for k in range(3):
        fold = RunFolder(out / f"fold-{k}")
        assert fold.read_status()["state"] == "complete" and not fold.metrics("test").exists()
        assert json.loads(fold.dataset_card.read_text())["cross_validation"]["fold"] == k
    # the refit: train+val, the last epoch kept, val predictions replaced by the out-of-fold ones
    refit = RunFolder(out / "refit")
    st = refit.read_status()
    assert st["checkpoint"] == "last" and st["refit"] and st["val_predictions"] == "out-of-fold"
    assert st["epochs_completed"] == st["best_epoch"] == saved["chosen_epochs"] == saved["refit"]["epochs"]
    assert json.loads(refit.dataset_card.read_text())["splits"]["train"]["n"] == 96
    best, meta = load_weights(refit.best_weights)
    last, _ = load_weights(refit.last_weights)
    assert meta["chosen_by"] == "last_epoch" and all(torch.equal(best[k], last[k]) for k in best)
    assert refit.predictions("val").read_text() == (out / "oof.csv").read_text()
    val = json.loads(refit.metrics("val").read_text())
    assert val["predictions"] == "out-of-fold" and val["auc"] == saved["oof"]["auc"] and "out_of_fold" in val
    assert json.loads(refit.metrics("val-training-data").read_text())["val_is_training_data"]
    test = evaluate_run(refit.path, "test")
    assert test["val_predictions"].startswith("out-of-fold") and len(test["operating_points"]) == 4
    with pytest.raises(RunFolderError, match="was refit on train\\+val.*Score --split test"):
        evaluate_run(refit.path, "val")
    # the folds as an ensemble: operating points from their out-of-fold predictions
    ens = ensemble_runs([out], out=tmp_path / "ens")
    assert ens["ensemble"]["n_members"] == 3 and ens["ensemble"]["operating_points_from"].startswith("out-of-fold")
    yv, pv, _ = read_predictions(tmp_path / "ens" / "predictions" / "val.csv")
    assert len(yv) == 96 and sorted(map(tuple, np.round(pv, 5))) == sorted(map(tuple, np.round(p, 5)))


def test_an_interrupted_cross_validation_continues_and_skips_completed_folds(toy_npz, tmp_path):
    out, cfg = tmp_path / "cv", _cfg(toy_npz, epochs=1)
    with pytest.raises(KeyboardInterrupt):
        cross_validate(cfg, out, folds=3, callbacks=[_CountFits(stop_at=2)])
    assert RunFolder(out / "fold-0").read_status()["state"] == "complete"
    assert RunFolder(out / "fold-1").read_status()["state"] == "interrupted"
    mtime = (out / "fold-0" / "checkpoints" / "best.safetensors").stat().st_mtime_ns
    stages, count = [], _CountFits()
    cross_validate(cfg, out, folds=3, refit=False, callbacks=[count], on_stage=stages.append)
    assert count.n == 2 and (out / "fold-0" / "checkpoints" / "best.safetensors").stat().st_mtime_ns == mtime
    assert "skipped" in stages[0] and "continuing the interrupted run" in stages[1] and not (out / "refit").exists()
    again = _CountFits()
    cross_validate(cfg, out, folds=3, refit=False, callbacks=[again])
    assert again.n == 0
    with pytest.raises(RunFolderError, match="holds a cross-validation with other settings"):
        cross_validate(replace(cfg, seed=1), out, folds=3)
    with pytest.raises(ConfigError, match="'folds' parameter of cross_validate must be an integer >= 2"):
        cross_validate(cfg, tmp_path / "cv1", folds=1)


def test_refit_refuses_choosing_on_training_data(toy_npz, tmp_path):
    cfg = _cfg(toy_npz)
    refit = replace(cfg, data=replace(cfg.data, refit=True))
    with pytest.raises(ConfigError, match="train.checkpoint=best chooses the epoch on validation, but with data.refit"):
        train(replace(refit, train=replace(refit.train, checkpoint="best")), tmp_path / "a")
    with pytest.raises(ConfigError, match="train.early_stopping=3 watches validation"):
        train(replace(refit, train=replace(refit.train, early_stopping=3)), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    run = train(refit, tmp_path / "r")  # checkpoint=auto: the last epoch
    st = run.read_status()
    assert st["best_epoch"] == st["epochs_completed"] == 2 and st["val_is_training_data"]
    assert json.loads(run.metrics("val").read_text())["val_is_training_data"]
    assert "which this refit trained on" in evaluate_run(run.path, "test")["val_predictions"]


def test_cross_validation_of_own_images_is_grouped_by_patient(tmp_path):
    from tests.unit.data.test_manifest import run_cfg, write_png_dataset

    manifest = write_png_dataset(tmp_path / "imgs", n_patients=20, per_patient=2)
    cv = cross_validate(run_cfg(manifest, epochs=1), tmp_path / "cv", folds=2)
    assert cv["unit"] == "patient" and cv["pool"] == "every non-test patient"
    _, _, extra = read_predictions_with_meta(tmp_path / "cv" / "oof.csv")
    fold_of = {}
    for pid, fold in zip(extra["patient_id"], extra["fold"]):
        assert fold_of.setdefault(pid, fold) == fold  # a patient's images are in one fold
    splits = {}
    for run in ("fold-0", "fold-1", "refit"):
        rows = (tmp_path / "cv" / run / "split.csv").read_text().splitlines()[1:]
        splits[run] = {r.split(",")[0]: r.split(",")[1] for r in rows}
    test = {k for k, s in splits["fold-0"].items() if s == "test"}
    assert test == {k for k, s in splits["refit"].items() if s == "test"}  # the same test patients throughout
    card = json.loads((tmp_path / "cv" / "refit" / "dataset.json").read_text())
    assert card["splits"]["train"]["n"] == len(extra["patient_id"]) == 40 - len(test)
