"""``medclass auto`` (medclass/runs/auto.py, budget.py, leaderboard.py): screening by successive halving on
validation within a time budget, the final model, the one scoring of test, and the run folder it leaves.

The budgets are small (15-40 s) and the toy data tiny, so a run takes seconds. Wall-time checks allow the budget
plus 10% plus a fixed 5 s: at these sizes a single slow epoch on a busy machine, or Python's start-up of a
worker, is a large share of the budget, which would not be so at the 10-minute default.
"""

from __future__ import annotations

import csv
import json
import shutil
import time

import pytest
import yaml

from medclass.config import config_from_dict, replace
from medclass.errors import ConfigError, RunFolderError
from medclass.reports import build_report
from medclass.runs import RunFolder
from medclass.runs.auto import auto
from medclass.runs.portfolio import Candidate
from tests.conftest import fast_config, make_npz
from tests.unit.runs.test_volumes import make_volume_npz

MARGIN_S = 5.0  # fixed slack on top of 10% of the budget, for tiny budgets (see the module docstring)
STATES = {"complete", "pruned", "failed", "skipped"}
# a learning rate at which nothing is learnt: it falls behind the base at the first or second rung
STALLED = Candidate("lr-stalled", "learning-rate", {"train": {"lr": 1e-9}}, "a rate too small to learn anything")


def _cfg(dataset, **train):
    cfg = fast_config(dataset, **{"epochs": 9, "num_threads": 1, **train})
    return replace(cfg, data=replace(cfg.data, leakage="off"), eval=replace(cfg.eval, n_boot=200))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_npz(tmp_path_factory.mktemp("auto") / "toy.npz", n=(48, 32, 32), size=12)


@pytest.fixture(scope="module")
def done(toy, tmp_path_factory):
    """One auto run shared by the tests below: four candidates, a 40 s budget, 3-fold ranking (32 val images)."""
    out = tmp_path_factory.mktemp("auto-run") / "out"
    events = []
    t0 = time.perf_counter()
    result = auto(_cfg(toy), out, budget_s=40, candidates=["base", STALLED, "resnet9-w16", "smoothing-0.1"],
                  folds=3, on_event=lambda *e: events.append(e))
    return {"out": out, "result": result, "wall": time.perf_counter() - t0, "events": events}


def test_leaderboard_lists_every_candidate_with_its_state(done):
    out = done["out"]
    board = json.loads((out / "leaderboard.json").read_text())
    names = [r["candidate"] for r in board["rows"]]
    assert {"base", "lr-stalled", "resnet9-w16", "smoothing-0.1"} <= set(names)
    assert all(r["state"] in STATES for r in board["rows"]), [(r["candidate"], r["state"]) for r in board["rows"]]
    assert board["rungs"] == [1, 3, 9] and board["monitor"] == "val_auc"
    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["candidate"] for r in rows] == names and {"val@1", "val@3", "val@9", "state", "settings"} <= set(rows[0])
    base = next(r for r in board["rows"] if r["candidate"] == "base")
    assert base["state"] == "complete" and base["epochs"] == 9 and set(base["rungs"]) == {"1", "3", "9"}
    assert any("ImageNet weights" in a["reason"] for a in board["absent"])  # no cache here: said, not hidden


def test_successive_halving_pruned_the_candidate_that_learns_nothing(done):
    out = done["out"]
    board = json.loads((out / "leaderboard.json").read_text())
    stalled = next(r for r in board["rows"] if r["candidate"] == "lr-stalled")
    assert stalled["state"] == "pruned" and stalled["reason"].startswith("pruned at epoch"), stalled
    assert stalled["epochs"] < 9 and stalled["rank"] is None
    st = RunFolder(out / stalled["folder"]).read_status()
    assert st["state"] == "pruned" and st["pruned"] == stalled["reason"] and not st.get("error")
    assert "SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)" in done["result"]["screening"]["pruner"]


def test_only_the_final_model_is_scored_on_test(done):
    out, r = done["out"], done["result"]
    scored = sorted(p.relative_to(out).as_posix() for p in out.rglob("metrics/test.json"))
    assert scored == [f"{r['model']}/metrics/test.json"]
    assert not list(out.rglob("predictions/test.csv"))[1:]  # one predictions file for test, the chosen model's
    test = json.loads((out / r["model"] / "metrics" / "test.json").read_text())
    assert r["test"]["auc"] == test["auc"] and r["test"]["scored"].startswith("once")
    assert RunFolder(out / "final").read_status()["state"] == "complete"
    assert r["final_run"] == "final" and r["winner"]["candidate"] in {"base", "resnet9-w16", "smoothing-0.1"}


def test_the_budget_is_honoured_and_recorded(done):
    r = done["result"]
    assert done["wall"] <= 1.1 * 40 + MARGIN_S, done["wall"]
    assert r["used_seconds"] <= 1.1 * 40 + MARGIN_S and r["budget_seconds"] == 40
    assert set(r["seconds"]) >= {"start", "screening", "final", "ensemble", "test", "total"}
    assert set(r["planned"]) >= {"screen_seconds", "final_seconds", "cv_seconds", "end_seconds", "rungs"}
    phases = [e[0] for e in done["events"]]
    assert phases[0] == "start" and "trial" in phases and phases[-1] == "test"
    assert all(0 <= e[2] <= e[3] * 1.1 + MARGIN_S for e in done["events"])  # (phase, message, elapsed, budget)


def test_small_validation_splits_rank_finalists_by_kfold(done):
    r = done["result"]
    assert r["ranking"]["small_validation"] is True and r["ranking"]["cv_folds"] == 3
    board = json.loads((done["out"] / "leaderboard.json").read_text())
    if r["ranking"]["cross_validated"]:
        ranked = [x for x in board["rows"] if x["cv_score"] is not None]
        assert len(ranked) >= 2 and all((done["out"] / x["cv_folder"] / "cv.json").is_file() for x in ranked)
        assert "cross-validation" in r["ranking"]["by"]
    else:  # a busy machine left no time for two finalists: said so
        assert "could rank only" in r["ranking"]["by"] or "only one candidate" in r["ranking"]["by"]
    for cv_dir in done["out"].glob("cv/*"):
        assert not list(cv_dir.rglob("metrics/test.json"))


def test_report_of_the_final_model_shows_the_leaderboard(done):
    out = done["out"]
    split = "test" if done["result"]["model"] == "final" else "val"
    doc = build_report(out / "final", split=split).read_text()
    assert 'id="model-selection"' in doc and "successive halving" in doc and "lr-stalled" in doc
    assert "pruned at epoch" in doc and "chosen by medclass auto" in doc
    trial = build_report(out / "trials" / "0", split="val").read_text()  # not the auto's final model: no section
    assert 'id="model-selection"' not in trial


def test_report_says_when_the_ensemble_was_scored_and_escapes_the_leaderboard(done, tmp_path):
    out = shutil.copytree(done["out"], tmp_path / "out")
    result = json.loads((out / "auto.json").read_text())
    result["ensemble"].update(chosen=True, reason="validation AUC: ensemble 0.99, final model 0.97; kept")
    result["model"] = "ensemble"
    (out / "auto.json").write_text(json.dumps(result))
    board = json.loads((out / "leaderboard.json").read_text())
    board["rows"][0]["note"] = "<script>alert(1)</script>"
    (out / "leaderboard.json").write_text(json.dumps(board))
    doc = build_report(out / "final", split="val").read_text()
    assert "The test split was scored for the ensemble" in doc and "ensemble 0.99, final model 0.97; kept" in doc
    assert "<script>alert(1)" not in doc and "&lt;script&gt;alert(1)&lt;/script&gt;" in doc


def test_the_budget_binds_the_final_training(toy, tmp_path):
    """A recipe far longer than the budget: the final training is cut to fit, and the run ends on time."""
    t0 = time.perf_counter()
    r = auto(_cfg(toy, epochs=400), tmp_path / "out", budget_s=15, candidates=["base", "resnet9-w16"], folds=0,
             ensemble=False)
    wall = time.perf_counter() - t0
    assert wall <= 1.1 * 15 + MARGIN_S, wall
    assert r["final"]["epochs"] < 400 and r["ensemble"]["reason"].startswith("turned off")
    assert (tmp_path / "out" / "final" / "metrics" / "test.json").is_file()


def test_a_budget_too_small_is_one_line_with_the_minimum(toy, tmp_path):
    with pytest.raises(ConfigError, match=r"too small to train anything .* Pass --budget \d+s or more") as e:
        auto(_cfg(toy), tmp_path / "out", budget_s=0.5)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_bad_arguments_fail_before_any_work(toy, tmp_path):
    with pytest.raises(ConfigError, match="budget_s"):
        auto(_cfg(toy), tmp_path / "a", budget_s=-1)
    with pytest.raises(ConfigError, match="Did you mean 'resnet9-w16'"):
        auto(_cfg(toy), tmp_path / "b", budget_s=30, candidates=["resnet9-w17"])
    with pytest.raises(ConfigError, match="auto makes its own folds"):
        auto(replace(_cfg(toy), data=replace(_cfg(toy).data, folds=5)), tmp_path / "c")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="already exists"):
        auto(_cfg(toy), tmp_path / "d", budget_s=30)
    with pytest.raises(RunFolderError, match="not made by medclass auto"):
        auto(_cfg(toy), tmp_path / "d", budget_s=30, overwrite=True)


def test_volumes_screen_3d_designs_and_train_a_3d_final(tmp_path):
    """A volume dataset: the base becomes the 3D default, the candidates are 3D designs, the final model is 3D."""
    data = make_volume_npz(tmp_path / "vol.npz", n=(32, 16, 16), side=12)
    cfg = config_from_dict({"data": {"dataset": str(data), "leakage": "off"},
                            "train": {"epochs": 4, "batch_size": 8, "num_threads": 1},
                            "eval": {"n_boot": 100}})
    r = auto(cfg, tmp_path / "out", budget_s=40, candidates=["base", "resnet9_25d"], folds=0, ensemble=False)
    rows = {row["candidate"]: row for row in json.loads((tmp_path / "out" / "leaderboard.json").read_text())["rows"]}
    assert rows["base"]["state"] == "complete" and rows["resnet9_25d"]["state"] in ("complete", "pruned"), rows
    final = config_from_dict(yaml.safe_load((tmp_path / "out" / "final" / "config.yaml").read_text()))
    assert final.model.name in ("cnn3d_small", "resnet9_25d")
    assert r["test"]["n"] == 16 and 0 <= r["test"]["auc"] <= 1


def test_a_candidate_known_to_be_too_slow_is_skipped_without_starting(toy, tmp_path):
    slow = Candidate("size-huge", "input-size", {"train": {"lr": 3e-3}}, "pretends to cost 500 epochs", cost=500.0)
    r = auto(_cfg(toy), tmp_path / "out", budget_s=20, candidates=["base", slow], folds=0, ensemble=False)
    rows = {row["candidate"]: row for row in json.loads((tmp_path / "out" / "leaderboard.json").read_text())["rows"]}
    assert rows["size-huge"]["state"] == "skipped" and rows["size-huge"]["trial"] is None, rows["size-huge"]
    assert "too slow" in rows["size-huge"]["reason"] or "budget" in rows["size-huge"]["reason"]
    assert r["winner"]["candidate"] == "base"


def test_one_complete_candidate_fills_the_ensemble_with_other_seeds(toy, tmp_path):
    """With only the base screened, the time left trains it again from other seeds; validation decides."""
    t0 = time.perf_counter()
    r = auto(_cfg(toy), tmp_path / "out", budget_s=30, candidates=["base"], folds=0)
    assert time.perf_counter() - t0 <= 1.1 * 30 + MARGIN_S
    ev = r["ensemble"]
    assert ev["considered"] and ev["members"][0] == "final" and "members/base-seed1" in ev["members"], ev
    seeds = [yaml.safe_load((tmp_path / "out" / m / "config.yaml").read_text())["seed"] for m in ev["members"]]
    assert seeds == list(range(len(seeds))) and len(seeds) >= 2  # base seed 0, then 1 (and 2 when it fits)
    assert ("kept" in ev["reason"]) and r["model"] == ("ensemble" if ev["chosen"] else "final")
    for m in ev["members"][1:]:  # members are never scored on test
        assert not (tmp_path / "out" / m / "metrics" / "test.json").exists()
