"""``medclass evaluate --corruptions``: the clean row reproduces ``evaluate_run``, thresholds come from validation,
the JSON is written under the lock, a rerun repeats exactly, and the CLI prints the table."""

import json
import shutil

import numpy as np
import pytest

from medclass.cli.main import main
from medclass.cli.tables import corruption_table
from medclass.errors import ConfigError, RunFolderError
from medclass.runs import RunFolder, evaluate_run, robustness, train
from medclass.runs.robustness import evaluate_corruptions
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    from tests.conftest import make_npz

    tmp = tmp_path_factory.mktemp("robust")
    folder = train(fast_config(make_npz(tmp / "toy.npz"), epochs=2), tmp / "run")
    evaluate_run(folder.path, "test")
    return folder


@pytest.fixture
def run_copy(scored_run, tmp_path):
    return RunFolder(shutil.copytree(scored_run.path, tmp_path / "run"))


def test_clean_row_reproduces_evaluate_and_every_corruption_is_scored(run_copy):
    r = evaluate_corruptions(run_copy.path, severities=(1, 5), n_boot=200)
    m = json.loads(run_copy.metrics("test").read_text())
    assert r["clean"]["auc"] == m["auc"] and r["clean"]["acc"] == m["acc"]
    assert r["clean"]["agrees_with"] == {"file": "metrics/test.json", "same_auc_and_acc": True}
    # the operating points are the ones evaluate chose on validation, never re-chosen on corrupted images
    assert {k: v["threshold"] for k, v in r["clean"]["operating_points"].items()} == \
        {o["name"]: o["threshold"] for o in m["operating_points"]}
    assert r["corruption_set"]["name"] == "generic" and "no MedMNIST modality" in r["corruption_set"]["chosen_by"]
    assert list(r["corruptions"]) == ["pixelate", "jpeg_compression", "gaussian_noise", "speckle_noise",
                                      "impulse_noise", "shot_noise", "gaussian_blur", "brightness_up",
                                      "brightness_down", "contrast_up", "contrast_down"]
    for name, c in r["corruptions"].items():
        assert len(c["auc"]) == len(c["acc"]) == len(c["auc_change_low"]) == 2, name
        assert all(0 <= v <= 1 for v in c["auc"] + c["acc"] + c["balanced_accuracy"]), name
        assert all(lo <= a <= hi for lo, a, hi in zip(c["auc_low"], c["auc"], c["auc_high"])), name
        assert c["params"] == [list(p) if isinstance(p, tuple) else p for p in c["params"]]
        assert set(c["operating_points"]) == {"default", "youden", "high_sensitivity", "high_specificity"}
    assert r["mean"]["auc"][1] == pytest.approx(np.mean([c["auc"][1] for c in r["corruptions"].values()]))
    assert r["image_size"] == 16 and r["defined_at_size"] == 224 and "stronger" in r["size_note"]
    saved = json.loads(run_copy.metrics("corruptions-test").read_text())
    assert saved["clean"] == json.loads(json.dumps(r["clean"])) and not run_copy.lock_file.exists()


def test_a_rerun_scores_the_same_corrupted_images(run_copy):
    kw = {"severities": (3,), "corruptions": ("gaussian_noise", "pixelate"), "n_boot": 100}
    a, b = evaluate_corruptions(run_copy.path, **kw), evaluate_corruptions(run_copy.path, **kw)
    assert a["corruptions"] == b["corruptions"]
    c = evaluate_corruptions(run_copy.path, seed=5, **kw)
    assert c["corruptions"]["pixelate"] == a["corruptions"]["pixelate"]  # deterministic corruption
    assert c["seed"] == 5


def test_corrupted_images_are_the_pipeline_images_scored_under_the_lock(run_copy, monkeypatch):
    seen = []
    real = robustness.predict_split

    def spy(folder, ds, split, cfg, device):
        seen.append((ds.split(split).images.copy(), folder.lock_file.exists()))
        return real(folder, ds, split, cfg, device)

    monkeypatch.setattr(robustness, "predict_split", spy)
    evaluate_corruptions(run_copy.path, severities=(2,), corruptions=("brightness_up",), n_boot=0)
    (clean, locked_clean), (bright, locked) = seen
    assert locked_clean and locked and clean.dtype == np.uint8 and clean.shape == bright.shape == (32, 16, 16, 1)
    assert (bright.astype(int) >= clean.astype(int)).all() and (bright != clean).any()


def test_bad_requests_fail_before_any_work(run_copy, toy_npz, tmp_path):
    with pytest.raises(ConfigError, match="Severities must be distinct values among 1, 2, 3, 4, 5"):
        evaluate_corruptions(run_copy.path, severities=(0, 6))
    with pytest.raises(ConfigError, match="Did you mean 'gaussian_noise'"):
        evaluate_corruptions(run_copy.path, corruptions=("gausian_noise",))
    with pytest.raises(ConfigError, match="No MedMNIST-C corruption set is called 'chest'"):
        evaluate_corruptions(run_copy.path, corruption_set="chest")
    RunFolder(run_copy.path).write_status("running")
    with pytest.raises(RunFolderError):
        evaluate_corruptions(run_copy.path)
    assert not run_copy.metrics("corruptions-test").exists()


def test_cli_writes_the_json_and_prints_the_table(run_copy, capsys):
    assert main(["evaluate", str(run_copy.path), "--corruptions", "--severities", "1,4", "--corruption-set",
                 "breastmnist", "--corruption", "speckle_noise", "--corruption", "motion_blur"]) == 0
    out = capsys.readouterr().out
    assert "AUC / ACC under MedMNIST-C corruptions" in out and "set: breastmnist (breast ultrasound)" in out
    assert "speckle_noise" in out and "motion_blur" in out and "severity 4" in out and "clean" in out
    assert "corruptions-test.json" in out
    r = json.loads(run_copy.metrics("corruptions-test").read_text())
    assert r["severities"] == [1, 4] and r["corruption_set"]["chosen_by"] == "the user (--corruption-set)"
    assert main(["evaluate", str(run_copy.path), "--corruptions", "--severities", "1,x"]) == 2
    assert "--severities takes comma-separated integers" in capsys.readouterr().err


def test_table_marks_significant_drops_and_undefined_values():
    r = {"dataset": "d", "split": "test", "n": 10, "severities": [1, 2], "source": "s", "skipped": {"characters": "x"},
         "clean": {"auc": 0.9, "acc": 0.8},
         "corruptions": {"noise": {"family": "noise", "auc": [0.85, float("nan")], "acc": [0.7, 0.6],
                                   "auc_change_high": [-0.01, float("nan")], "mean_auc": 0.85, "mean_acc": 0.65}},
         "mean": {"auc": [0.85, float("nan")], "acc": [0.7, 0.6]}}
    t = corruption_table(r)
    assert "0.850*/ 0.700" in t and "n/a / 0.600" in t and "skipped characters: x" in t and "* AUC lower" in t


@pytest.mark.parametrize("kind", ["multiclass", "multilabel"])
def test_other_classification_tasks(kind, tmp_path):
    from tests.conftest import make_npz

    npz = make_npz(tmp_path / "t.npz", classes=4, multilabel=kind == "multilabel")
    folder = train(fast_config(npz, epochs=1), tmp_path / "run")
    m = evaluate_run(folder.path, "test")
    r = evaluate_corruptions(folder.path, severities=(4,), corruptions=("shot_noise",), n_boot=50)
    assert r["task"] == kind and r["clean"]["auc"] == m["auc"] and r["clean"]["acc"] == m["acc"]
    c = r["corruptions"]["shot_noise"]
    assert "operating_points" not in c and 0 <= c["balanced_accuracy"][0] <= 1 and c["auc_low"][0] <= c["auc"][0]
