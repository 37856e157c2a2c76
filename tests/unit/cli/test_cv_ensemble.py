"""``medclass cv`` and ``medclass ensemble`` from the command line."""

from __future__ import annotations

import json

from medclass.cli.main import main

FAST = ["--set", "model.width=4", "--batch-size", "16", "--epochs", "2", "--quiet", "--set", "eval.n_boot=200",
        "--set", "data.leakage=warn"]


def _err(capsys) -> str:
    return capsys.readouterr().err


def test_cv_then_ensemble_of_its_folds(toy_npz, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["cv", "--dataset", str(toy_npz), "--folds", "2", "--out", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    assert "2-fold cross-validation" in text and "mean ± sd" in text and "out-of-fold" in text
    assert f"medclass evaluate {out}/refit --split test" in text
    assert json.loads((out / "cv.json").read_text())["refit"]["run"] == "refit"
    assert main(["evaluate", str(out / "refit"), "--split", "test"]) == 0
    capsys.readouterr()
    assert main(["ensemble", str(out), "--tta", "--out", str(tmp_path / "ens")]) == 0
    text = capsys.readouterr().out
    assert "ensemble of 2 runs" in text and "tta: True" in text and "operating points from: out-of-fold" in text
    assert (tmp_path / "ens" / "metrics" / "test.json").is_file()


def test_cv_and_ensemble_errors(toy_npz, tmp_path, capsys):
    assert main(["cv", "--dataset", str(toy_npz), "--folds", "1", "--out", str(tmp_path / "cv"), *FAST]) == 2
    assert "must be an integer >= 2" in _err(capsys)
    assert main(["cv", "--dataset", str(toy_npz), *FAST]) == 2
    assert "needs --out" in _err(capsys)
    assert main(["train", "--dataset", str(toy_npz), "--out", str(tmp_path / "r"), *FAST]) == 0
    assert main(["ensemble", str(tmp_path / "r")]) == 2
    assert "at least 2 runs; got 1" in _err(capsys)
    assert main(["ensemble", str(tmp_path / "r"), str(tmp_path / "nothing")]) == 2
    assert "does not exist" in _err(capsys)
