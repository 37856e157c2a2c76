"""The transfer ladder on two toy datasets: every rung runs, the source weights are used, the table is written."""

from __future__ import annotations

import json

import pytest
import torch

from medclass.cli.main import main
from medclass.errors import ConfigError, RunFolderError
from medclass.models.checkpoint import load_weights
from medclass.runs import ladder
from medclass.runs.ladder import RUNGS, run_ladder
from tests.conftest import make_npz

FAST = {"train": {"batch_size": 16, "lr": 3e-3}, "eval": {"batch_size": 64}}


@pytest.fixture(scope="module")
def toy_ladder(tmp_path_factory):
    d = tmp_path_factory.mktemp("ladder")
    source, target = make_npz(d / "source.npz", seed=1), make_npz(d / "target.npz", seed=2)
    result = run_ladder(str(target), str(source), d / "out", epochs=1, source_epochs=1, model="resnet9", width=4,
                        n_boot=200, device="cpu", overrides=FAST)
    return d, result


def test_every_rung_runs_and_the_table_is_written(toy_ladder):
    d, result = toy_ladder
    assert [r["rung"] for r in result["rungs"]] == list(RUNGS)
    for r in result["rungs"]:
        t = r["test"]
        assert 0 <= t["auc"] <= 1 and 0 <= t["acc"] <= 1 and t["n"] == 32
        assert t["intervals"]["auc"]["low"] <= t["auc"] <= t["intervals"]["auc"]["high"]
        assert r["seconds"] >= 0 and r["val_auc"] is not None
    assert result["rungs"][0]["test"]["auc"] > 0.8  # hand-crafted features see the bright square
    assert json.loads((d / "out" / "ladder.json").read_text())["rungs"][2]["rung"] == "deep-svm"
    md = (d / "out" / "ladder.md").read_text()
    assert sum(line.startswith("| ") for line in md.splitlines()) == len(RUNGS) + 1  # header + one row per rung
    assert "test AUC [95% CI]" in md and "Source network: resnet9" in md
    assert result["source"]["epochs"] == 1 and result["source"]["run"].endswith("source")
    chosen = {r["rung"]: r["chosen"] for r in result["rungs"]}
    assert chosen["handcrafted"].startswith("C=") and chosen["scratch"].startswith("epoch ")


def test_transfer_rungs_start_from_the_source_weights(toy_ladder):
    d, _ = toy_ladder
    src, _ = load_weights(d / "out" / "source" / "checkpoints" / "best.safetensors")
    lin, meta = load_weights(d / "out" / "linear" / "checkpoints" / "best.safetensors")
    scratch, _ = load_weights(d / "out" / "scratch" / "checkpoints" / "best.safetensors")
    assert meta["config"]["model"]["pretrained"] == str(d / "out" / "source")
    backbone = [k for k in src if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    assert backbone
    # the linear probe froze the source backbone (weights and batch-norm statistics) exactly
    assert all(torch.equal(src[k], lin[k]) for k in backbone)
    assert not all(torch.equal(src[k], scratch[k]) for k in backbone)


def test_test_labels_are_read_only_when_scoring(tmp_path, monkeypatch):
    """The feature rungs' choices are made before the one call that reads the test labels."""
    target = make_npz(tmp_path / "t.npz")
    events = []
    real_fit, real_score = ladder.fit_classifier, ladder._score

    def fit(*args, **kwargs):
        assert len(args) == 5  # train X/y, val X/y, test X: no test labels
        events.append("fit")
        return real_fit(*args, **kwargs)

    def score(ds, test_probs, *args):
        events.append("score")
        return real_score(ds, test_probs, *args)

    monkeypatch.setattr(ladder, "fit_classifier", fit)
    monkeypatch.setattr(ladder, "_score", score)
    run_ladder(str(target), "unused", tmp_path / "out", rungs=("handcrafted",), n_boot=100, device="cpu")
    assert events == ["fit", "score"]


def test_bad_rungs_and_taken_folders_fail_before_training(tmp_path):
    target = make_npz(tmp_path / "t.npz")
    with pytest.raises(ConfigError, match="Did you mean 'linear'"):
        run_ladder(str(target), "x", tmp_path / "out", rungs=("linaer",))
    (tmp_path / "out" / "scratch").mkdir(parents=True)
    (tmp_path / "out" / "scratch" / "status.json").write_text("{}")
    with pytest.raises(RunFolderError, match="--overwrite"):
        run_ladder(str(target), "x", tmp_path / "out", rungs=("scratch",))


def test_cli(tmp_path, capsys):
    target = make_npz(tmp_path / "t.npz")
    rc = main(["ladder", "--dataset", str(target), "--source", "unused", "--out", str(tmp_path / "out"),
               "--rungs", "handcrafted,scratch", "--model", "resnet9", "--width", "4", "--epochs", "1",
               "--n-boot", "100", "--device", "cpu", "--set", "train.batch_size=16"])
    out = capsys.readouterr().out
    assert rc == 0 and "| handcrafted |" in out and "| scratch |" in out and "ladder.md" in out
    assert main(["ladder", "--dataset", str(target), "--source", "x", "--out", str(tmp_path / "o2"),
                 "--rungs", "bogus"]) == 2
