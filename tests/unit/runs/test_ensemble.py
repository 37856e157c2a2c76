"""Ensembles of runs: averaged probabilities, validation for operating points, refusals (runs/ensemble.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medclass.config import replace
from medclass.errors import ConfigError, DataError, RunFolderError
from medclass.run_folder import read_predictions
from medclass.runs import ensemble_runs, evaluate_run, train
from medclass.training import Callback
from tests.conftest import fast_config, make_npz


def _cfg(dataset, seed=0, **train):
    cfg = fast_config(dataset, **{"epochs": 2, **train})
    return replace(cfg, seed=seed, data=replace(cfg.data, leakage="off"), eval=replace(cfg.eval, n_boot=200))


class _Interrupt(Callback):
    def on_batch_end(self, trainer, batch, loss):
        raise KeyboardInterrupt


@pytest.fixture
def two_runs(toy_npz, tmp_path):
    runs = [train(_cfg(toy_npz, seed=s), tmp_path / f"s{s}").path for s in (0, 1)]
    for r in runs:
        evaluate_run(r, "test")
    return runs


def test_ensemble_is_the_mean_of_its_members(two_runs, tmp_path):
    out = tmp_path / "ens"
    m = ensemble_runs(two_runs, split="test", out=out)
    (y0, p0, _), (y1, p1, _) = (read_predictions(r / "predictions" / "test.csv") for r in two_runs)
    y, p, _ = read_predictions(out / "predictions" / "test.csv")
    assert np.array_equal(y, y0) and np.array_equal(y, y1)
    np.testing.assert_allclose(p, (p0 + p1) / 2, atol=1e-6)
    # operating points from the averaged validation predictions of the shared val split
    (v0, q0, _), (v1, q1, _) = (read_predictions(r / "predictions" / "val.csv") for r in two_runs)
    yv, pv, _ = read_predictions(out / "predictions" / "val.csv")
    np.testing.assert_allclose(pv, (q0 + q1) / 2, atol=1e-6)
    assert m["ensemble"]["operating_points_from"].startswith("averaged validation")
    assert len(m["operating_points"]) == 4 and np.array_equal(yv, v0)
    saved = json.loads((out / "metrics" / "test.json").read_text())
    assert saved["auc"] == m["auc"] and saved["n"] == 32 and "intervals" in saved
    card = json.loads((out / "ensemble.json").read_text())
    assert [c["run"] for c in card["members"]] == [str(r) for r in two_runs]
    assert all(c["checkpoint"].endswith("best.safetensors") for c in card["members"])
    tta = ensemble_runs(two_runs, split="test", tta=True, out=tmp_path / "tta")
    assert tta["tta"] is True and all(c["tta"] for c in tta["ensemble"]["members"])
    _, p_tta, _ = read_predictions(tmp_path / "tta" / "predictions" / "test.csv")
    assert np.abs(p_tta - p).max() > 1e-4  # mirrored images change the averaged probabilities


def test_ensemble_refuses_bad_members(two_runs, toy_npz, tmp_path):
    with pytest.raises(ConfigError, match="An ensemble needs at least 2 runs; got 1"):
        ensemble_runs(two_runs[:1])
    with pytest.raises(ConfigError, match="is listed twice"):
        ensemble_runs([two_runs[0], two_runs[0]])
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(toy_npz), tmp_path / "half", callbacks=[_Interrupt()])
    with pytest.raises(RunFolderError, match="half' has not finished training"):
        ensemble_runs([two_runs[0], tmp_path / "half"])
    other = make_npz(tmp_path / "three.npz", classes=3)
    run3 = train(_cfg(other, epochs=1), tmp_path / "three").path
    with pytest.raises(DataError, match=f"Runs '{two_runs[0]}' and '{run3}' have different datasets"):
        ensemble_runs([two_runs[0], run3])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(RunFolderError, match="is not an ensemble folder"):
        ensemble_runs(two_runs, out=tmp_path / "busy")


def test_ensemble_refuses_own_image_runs_with_different_test_images(tmp_path):
    from tests.unit.data.test_manifest import run_cfg, write_png_dataset

    manifest = write_png_dataset(tmp_path / "imgs", n_patients=20, per_patient=1)
    a = train(run_cfg(manifest), tmp_path / "a").path
    b = train(run_cfg(manifest, split_seed=5), tmp_path / "b").path
    with pytest.raises(DataError, match=f"Runs '{a}' and '{b}' scored different test images"):
        ensemble_runs([a, b])
    c = train(replace(run_cfg(manifest), seed=3), tmp_path / "c").path  # same split, another seed: fine
    m = ensemble_runs([a, c], out=tmp_path / "ens")
    assert m["n"] == len(read_predictions(tmp_path / "ens" / "predictions" / "test.csv")[0])
