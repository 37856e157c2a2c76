"""medclass.search: Optuna trials on validation AUC, parallel workers on SQLite, best.yaml reproduces the best."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest
import torch

from medclass.cli.main import main
from medclass.config import build_config, config_to_dict
from medclass.errors import ConfigError
from medclass.run_folder import RunFolder
from medclass.runs import train
from medclass.search import AUGMENT_AT_FULL_STRENGTH, DEFAULT_SPACE, Categorical, Float, search, trial_overrides
from tests.conftest import fast_config, make_npz

optuna = pytest.importorskip("optuna")


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    return make_npz(tmp_path / "toy.npz", n=(48, 32, 16))


def _history(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_trial_overrides_expand_augment_strength_and_dotted_keys():
    o = trial_overrides({"train.lr": 0.01, "model.dropout": 0.2, "augment_strength": 0.5})
    assert o["train"]["lr"] == 0.01 and o["model"]["dropout"] == 0.2
    assert o["train"]["augment"] == {k: v * 0.5 for k, v in AUGMENT_AT_FULL_STRENGTH.items()}
    assert o["train"]["augment"]["rotate"] == 7.5
    # the default space is the documented menu
    assert DEFAULT_SPACE["train.lr"] == Float(1e-4, 1e-1, log=True)
    assert set(DEFAULT_SPACE["train.optimizer"].choices) == {"sgd", "adam", "adamw"}


def test_parallel_search_on_sqlite_and_best_yaml_reproduces_the_best_trial(tiny_npz, tmp_path):
    base = fast_config(tiny_npz, epochs=2)
    out = tmp_path / "search"
    r = search(base, out, n_trials=4, workers=2, seed=0)

    study = optuna.load_study(study_name=r.study_name, storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len({t.user_attrs["host"] + str(t.number) for t in study.trials}) == 4
    assert study.best_trial.number == r.best_number and study.best_value == r.best_value
    # each trial is a complete run folder whose validation AUC is the objective; no test split anywhere
    for t in study.trials:
        folder = out / "trials" / str(t.number)
        status = RunFolder(folder).read_status()
        assert status["state"] == "complete" and status["best_val_auc"] == t.value
        assert not list(folder.glob("*test*"))
        assert t.user_attrs["threads"] == max(1, (os.cpu_count() or 1) // 2)  # torch threads per worker
    # sampled values reached the trial's config
    best_folder = out / "trials" / str(r.best_number)
    saved = build_config(yaml_file=best_folder / "config.yaml")
    assert saved.train.lr == r.best_params["train.lr"] and saved.train.optimizer == r.best_params["train.optimizer"]
    assert saved.train.augment.rotate == pytest.approx(15 * r.best_params["augment_strength"], abs=1e-5)
    assert saved.model.width == 4 and saved.train.epochs == 2  # the base config is kept

    rows = list(csv.DictReader(open(out / "trials.csv", newline="")))
    assert [int(x["number"]) for x in rows] == [0, 1, 2, 3] and {x["state"] for x in rows} == {"COMPLETE"}
    assert {"train.lr", "train.batch_size", "augment_strength"} <= set(rows[0])

    # best.yaml is the full resolved config; training it again (same thread count) gives the same run exactly
    best_cfg = build_config(yaml_file=out / "best.yaml")
    assert config_to_dict(best_cfg) == config_to_dict(saved) == config_to_dict(r.best_config)
    before = torch.get_num_threads()
    torch.set_num_threads(study.best_trial.user_attrs["threads"])
    try:
        again = train(best_cfg, tmp_path / "rerun")
    finally:
        torch.set_num_threads(before)
    assert again.read_status()["best_val_auc"] == r.best_value
    cols = ("val_loss", "val_auc", "train_loss")
    assert [[h[c] for c in cols] for h in _history(again.path)] == [[h[c] for c in cols] for h in
                                                                    _history(best_folder)]


def test_cli_search_prints_table_and_adds_trials_to_an_existing_study(tiny_npz, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["search", "--dataset", str(tiny_npz), "--set", "model.width=4", "--set", "eval.batch_size=64",
            "--set", "train.lr=0.5", "--epochs", "1", "--trials", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "train.lr are searched" in text
    assert "trial" in text and "val AUC" in text and "best: trial" in text and "best.yaml" in text
    assert len([ln for ln in text.splitlines() if "complete" in ln]) == 2
    # same storage and study name: the next call adds trials, numbered on
    r = search(fast_config(tiny_npz, epochs=1), out, n_trials=1)
    assert [row["number"] for row in r.trials] == [0, 1, 2]
    assert (out / "trials" / "2" / "status.json").is_file()
    # ...but only over the same space: Optuna cannot mix distributions of one parameter in a study
    space = {**DEFAULT_SPACE, "train.optimizer": Categorical(("adam",))}
    with pytest.raises(ConfigError, match=r"different search space \(train.optimizer: .*--study-name"):
        search(fast_config(tiny_npz, epochs=1), out, n_trials=1, space=space)


def test_bad_storage_url_and_bad_space_are_clear_errors(tiny_npz, tmp_path):
    base = fast_config(tiny_npz, epochs=1)
    with pytest.raises(ConfigError, match=r"Cannot open the search storage 'nosuchdb://x/y'.*--storage"):
        search(base, tmp_path / "a", n_trials=1, storage="nosuchdb://x/y")
    with pytest.raises(ConfigError, match=r"(?s)Cannot open.*postgresql://user:\*\*\*@"):
        search(base, tmp_path / "b", n_trials=1, storage="postgresql://user:secret@127.0.0.1:1/db")
    with pytest.raises(ConfigError, match="train.lrr"):
        search(base, tmp_path / "c", n_trials=1, space={"train.lrr": Float(1e-3, 1e-2)})
    with pytest.raises(ConfigError, match="n_trials"):
        search(base, tmp_path / "d", n_trials=0)


def test_missing_optuna_gives_the_install_hint(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` raise ImportError
    with pytest.raises(ConfigError, match=r'pip install "medclass\[search\]"'):
        search(fast_config(tiny_npz, epochs=1), tmp_path / "s", n_trials=1)
    assert not (tmp_path / "s").exists()
