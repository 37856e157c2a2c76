"""``medclass auto`` and ``medclass train --recipe auto`` on the command line (medclass/cli/auto.py)."""

import argparse
import json

import pytest

from medclass.cli.auto import parse_budget
from medclass.cli.main import main
from tests.conftest import make_npz

FAST = ["--set", "model.width=4", "--set", "train.num_threads=1", "--set", "data.leakage='off'",
        "--set", "eval.n_boot=200", "--batch-size", "16", "--epochs", "3"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_npz(tmp_path_factory.mktemp("auto-cli") / "toy.npz", n=(48, 32, 32), size=12)


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("600", 600),
                                           ("2.5m", 150), (" 45 s", 45)])
def test_budget_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m10", "0s", "-5", "10m10"])
def test_bad_budgets_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="budget"):
        parse_budget(text)


def test_train_recipe_auto_runs_auto(toy, tmp_path, capsys):
    out = tmp_path / "auto"
    assert main(["train", "--recipe", "auto", "--dataset", str(toy), *FAST, "--budget", "25s", "--folds", "0",
                 "--candidates", "base,resnet9-w16", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "winner: " in captured.out and f"next: medclass report {out}/final" in captured.out
    assert "trial: base (trial 0)" in captured.err and "test: scoring the test split once" in captured.err  # 1 line/event
    result = json.loads((out / "auto.json").read_text())
    assert result["budget_seconds"] == 25 and result["ranking"]["cv_folds"] == 0
    assert (out / "final" / "metrics" / "test.json").is_file() and (out / "leaderboard.csv").is_file()
    assert main(["report", str(out / "final"), "--no-gallery"]) == 0
    assert 'id="model-selection"' in (out / "final" / "report.html").read_text()


def test_print_config_says_what_auto_does(toy, capsys):
    assert main(["train", "--recipe", "auto", "--dataset", "breastmnist", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# recipe auto: screen") and "successive halving" in out
    assert "resnet9-w64" in out and "augment-medium" in out and "mirrors: no (modality: breast ultrasound)" in out
    assert "(absent) resnet18-imagenet" in out and "recipe: default" in out
    assert main(["auto", "--dataset", "breastmnist", "--candidates", "base,lr-x2", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "lr-x2" in out and "resnet9-w64" not in out


def test_print_config_of_a_volume_dataset_lists_3d_designs(capsys):
    assert main(["auto", "--dataset", "adrenalmnist3d", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "cnn3d_small-w16" in out and "resnet9_25d" in out and "slices_resnet9_attn" in out
    assert "resnet9-w64" not in out and "efficientnet_b0" not in out and "(absent) resnet18_3d" in out
    assert "name: cnn3d_small" in out  # the base is the volume default, as training will resolve it


def test_misuse_is_one_line(toy, tmp_path, capsys):
    assert main(["train", "--dataset", str(toy), "--budget", "10m", "--out", str(tmp_path / "r")]) == 2
    assert "--budget only apply with --recipe auto" in _err(capsys)
    assert main(["train", "--recipe", "auto", "--resume", str(tmp_path / "r")]) == 2
    assert "auto does not resume" in _err(capsys)
    assert main(["auto", "--dataset", str(toy), *FAST, "--budget", "1s", "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "too small to train anything" in _err(capsys) and not (tmp_path / "a").exists()
    assert main(["auto", "--dataset", str(toy), "--candidates", "bsae", "--out", str(tmp_path / "b")]) == 2
    assert "Did you mean 'base'?" in _err(capsys)
    with pytest.raises(SystemExit):
        main(["auto", "--dataset", str(toy), "--budget", "ten minutes", "--out", str(tmp_path / "c")])
    assert "invalid budget" in capsys.readouterr().err
