"""Task heads beyond one label: ordinal (CORAL), regression, multi-task, and a fine-to-coarse taxonomy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import cohen_kappa_score, mean_absolute_error, r2_score, roc_auc_score

from medclass.cli.main import main
from medclass.config import config_from_dict
from medclass.errors import ConfigError, DataError
from medclass.evaluation.taxonomy import parse_taxonomy
from medclass.evaluation.weighted import regression_weighted_metrics, weighted_quadratic_kappa
from medclass.models import apply_transfer, create_model, get_model_card, list_models
from medclass.reports import build_report
from medclass.run_folder import read_predictions
from medclass.runs import ensemble_runs, evaluate_run, load_run, train
from medclass.runs.compare import compare_runs
from medclass.runs.explain import build_gallery
from medclass.tasks import CoralLoss, attach_coral_head, coral_probabilities, get_task


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """160 PNGs: a grade 0-3 sets the background brightness, a bright square is present or not, a value
    follows the grade, and fine classes a-d are the grades again (for the taxonomy)."""
    root = tmp_path_factory.mktemp("graded")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(160):
        grade, blob = i % 4, (i // 4) % 2
        img = (rng.integers(0, 40, (28, 28)) + 50 * grade).astype(np.uint8)
        if blob:
            r, c = rng.integers(2, 16, 2)
            img[r:r + 8, c:c + 8] = 255
        Image.fromarray(img).save(root / f"im{i:03d}.png")
        rows.append({"path": f"im{i:03d}.png", "grade": f"g{grade}", "blob": "" if i % 17 == 0 else ["no", "yes"][blob],
                     "value": f"{40 + 15 * grade + rng.normal(0, 1):.3f}", "fine": "abcd"[grade],
                     "patient_id": f"P{i}"})
    return _write_manifest(root / "m.csv", rows)


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _cfg(manifest: Path, epochs: int = 8, model: dict | None = None, ev: dict | None = None, **data):
    return config_from_dict({"data": {"manifest": str(manifest), "leakage": "off", **data},
                             "model": {"name": "resnet9", "width": 8, **(model or {})},
                             "train": {"epochs": epochs, "batch_size": 16, "lr": 3e-3},
                             "eval": {"batch_size": 64, "n_boot": 200, **(ev or {})}})


# --- CORAL ------------------------------------------------------------------------------------------


def test_coral_probabilities_are_a_distribution_and_the_loss_is_cumulative_bce():
    logits = torch.tensor([[3.0, 0.0, -3.0], [-1.0, 2.0, 0.5]])  # second row inconsistent on purpose
    p = coral_probabilities(logits)
    assert p.shape == (2, 4) and torch.all(p >= 0) and torch.allclose(p.sum(1), torch.ones(2))
    s = torch.sigmoid(logits[0])
    assert torch.allclose(p[0], torch.stack([1 - s[0], s[0] - s[1], s[1] - s[2], s[2]]))
    target = torch.tensor([2, 0])
    levels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, levels)
    assert torch.isclose(CoralLoss()(logits, target), expected)


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "vit_tiny", "lenet5", "mlp", "efficientnet_b0"])
def test_coral_head_shares_one_score_and_trains_with_the_classifier(name):
    model = create_model(name, num_classes=1, in_chans=1, input_size=28)
    card = get_model_card(name)
    attach_coral_head(model, card.classifier, 5)
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 4)
    # rank consistency by construction: the logits differ only by the biases
    assert torch.allclose(out - out[:, :1], (model.get_submodule(card.classifier).coral_bias -
                                             model.get_submodule(card.classifier).coral_bias[0]).expand(2, 4))
    parts = apply_transfer(model, card, "linear")
    bias = model.get_submodule(card.classifier).coral_bias
    assert bias.requires_grad and any(p is bias for p in parts["head"])


def test_coral_head_is_refused_outside_ordinal_tasks():
    with pytest.raises(ConfigError, match="ordinal head"):
        get_task("multiclass", head="coral")
    assert len(list_models()) >= 20  # the parametrised models above are registered names


def test_ordinal_coral_and_softmax_train_and_are_scored_with_kappa(graded, tmp_path):
    results = {}
    for head in ("coral", "auto"):
        run = train(_cfg(graded, label_columns=["grade"], task="ordinal", model={"head": head}), tmp_path / head)
        m = evaluate_run(run.path, "test")
        y, p, _ = read_predictions(run.path / "predictions" / "test.csv")
        assert p.shape[1] == 4 and np.allclose(p.sum(1), 1, atol=1e-5)
        assert m["quadratic_weighted_kappa"] == pytest.approx(cohen_kappa_score(y, p.argmax(1), weights="quadratic"))
        assert m["intervals"]["quadratic_weighted_kappa"]["low"] <= m["quadratic_weighted_kappa"]
        results[head] = m["quadratic_weighted_kappa"]
    assert results["coral"] > 0.8 and results["auto"] > 0.8, results
    model = load_run(tmp_path / "coral")
    assert model.meta_["head"] == "coral" and model.predict_proba(np.zeros((2, 28, 28), np.uint8)).shape == (2, 4)
    ens = ensemble_runs([tmp_path / "coral", tmp_path / "auto"], "test")  # heads differ, grade probabilities agree
    pc = read_predictions(tmp_path / "coral" / "predictions" / "test.csv")[1]
    pa = read_predictions(tmp_path / "auto" / "predictions" / "test.csv")[1]
    assert ens["quadratic_weighted_kappa"] == pytest.approx(
        cohen_kappa_score(y, ((pc + pa) / 2).argmax(1), weights="quadratic"))


def test_weighted_kappa_matches_sklearn_at_unit_weights():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    fn = weighted_quadratic_kappa(y, pred, 5)
    assert fn(np.ones((1, 300)))[0] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    w = rng.integers(0, 3, (1, 300)).astype(float)  # a bootstrap replicate = repeated examples
    rep = np.repeat(np.arange(300), w[0].astype(int))
    assert fn(w)[0] == pytest.approx(cohen_kappa_score(y[rep], pred[rep], weights="quadratic"))


# --- regression ------------------------------------------------------------------------------------


def test_regression_trains_selects_by_r2_and_reports_errors(graded, tmp_path):
    run = train(_cfg(graded, label_columns=["value"], task="regression"), tmp_path / "reg")
    st = run.read_status()
    assert st["monitor"] == "val_r2" and "best_val_r2" in st
    assert "val_r2" in run.path.joinpath("history.csv").read_text().splitlines()[0]
    m = evaluate_run(run.path, "test")
    y, p, _ = read_predictions(run.path / "predictions" / "test.csv", values=True)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p[:, 0]))
    assert m["r2"] == pytest.approx(r2_score(y, p[:, 0])) and m["r2"] > 0.8
    assert m["checkpoint"]["chosen_by"] == "val_r2"
    assert set(m["intervals"]) == {"mae", "rmse", "r2", "pearson_r"}
    model = load_run(run.path)
    assert 50 < model.meta_["target_mean"] < 80 and 10 < model.meta_["target_std"] < 25  # months-like units
    float(model.describe(model.predict(np.zeros((1, 28, 28), np.uint8)))[0])  # a number, not a class name
    # the rest of the toolchain takes regression runs: report, heatmap gallery, paired comparison, ensemble
    assert "R\u00b2" in build_report(run.path).read_text()
    assert build_gallery(run.path).is_file()
    assert compare_runs(run.path, run.path)["difference"]["mae"]["estimate"] == 0
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run.path), str(graded.parent / "im000.png"), "--out", str(out)]) == 0
    header, row = out.read_text().splitlines()[:2]
    assert header == "index,p_0,path,prediction" and float(row.split(",")[1]) == pytest.approx(
        float(row.split(",")[3]), rel=1e-4)
    other = train(_cfg(graded, epochs=3, label_columns=["value"], task="regression"), tmp_path / "reg1")
    ens = ensemble_runs([run.path, other.path], "test")
    assert ens["n"] == m["n"] and "r2" in ens and "operating_points_from" in ens["ensemble"]


def test_regression_weighted_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    y = rng.normal(size=200)
    f = y + rng.normal(scale=0.5, size=200)
    fns = regression_weighted_metrics(y, f)
    ones = np.ones((1, 200))
    assert fns["mae"](ones)[0] == pytest.approx(mean_absolute_error(y, f))
    assert fns["r2"](ones)[0] == pytest.approx(r2_score(y, f))
    assert fns["pearson_r"](ones)[0] == pytest.approx(np.corrcoef(y, f)[0, 1])


def test_regression_refuses_a_non_numeric_value(graded, tmp_path):
    rows = list(csv.DictReader(open(graded, newline="")))
    rows[3]["value"] = "n/a"
    bad = _write_manifest(graded.parent / "bad_value.csv", rows)  # beside the images, so the paths resolve
    with pytest.raises(DataError, match="'n/a' in 'value' is not a finite number"):
        train(_cfg(bad, epochs=1, label_columns=["value"], task="regression"), tmp_path / "r")


def test_regression_refuses_a_constant_target(graded, tmp_path):
    rows = list(csv.DictReader(open(graded, newline="")))
    for r in rows:
        r["value"] = "5"
    const = _write_manifest(graded.parent / "const_value.csv", rows)
    with pytest.raises(DataError, match="Every training value of the regression target is 5"):
        train(_cfg(const, epochs=1, label_columns=["value"], task="regression"), tmp_path / "c")
    assert not (tmp_path / "c").exists()


# --- multi-task ------------------------------------------------------------------------------------


def test_multitask_trains_two_heads_on_one_backbone_with_missing_labels(graded, tmp_path):
    run = train(_cfg(graded, label_columns=["grade", "blob"], task="multitask"), tmp_path / "mt")
    model = load_run(run.path)
    assert model.meta_["task_heads"] == [4, 2] and model.classes_[:1] == ["grade:g0"]
    p = model.predict_proba(np.zeros((3, 28, 28), np.uint8))
    assert p.shape == (3, 6) and np.allclose(p[:, :4].sum(1), 1) and np.allclose(p[:, 4:].sum(1), 1)
    assert len(model.describe(model.predict(np.zeros((1, 28, 28), np.uint8)))[0].split(";")) == 2
    m = evaluate_run(run.path, "test")
    y, p, _ = read_predictions(run.path / "predictions" / "test.csv")
    assert set(m["heads"]) == {"grade", "blob"}
    known = y[:, 1] >= 0
    assert (~known).any()  # some blob labels are missing and left out
    assert m["heads"]["blob"]["n"] == known.sum()
    assert m["heads"]["blob"]["auc"] == pytest.approx(roc_auc_score(y[known, 1], p[known, 5]))
    assert m["auc"] == pytest.approx(np.mean([m["heads"]["grade"]["auc"], m["heads"]["blob"]["auc"]]))
    assert m["heads"]["grade"]["auc"] > 0.9 and "operating_points" in m["heads"]["blob"]
    assert "Head: blob" in build_report(run.path).read_text()
    other = train(_cfg(graded, epochs=2, label_columns=["grade", "blob"], task="multitask"), tmp_path / "mt1")
    ens = ensemble_runs([run.path, other.path], "test")
    assert set(ens["heads"]) == {"grade", "blob"} and ens["heads"]["blob"]["n"] == known.sum()


def test_multitask_needs_several_label_columns(graded, tmp_path):
    with pytest.raises(ConfigError, match="one label column per head"):
        train(_cfg(graded, epochs=1, label_columns=["grade"], task="multitask"), tmp_path / "x")


# --- taxonomy --------------------------------------------------------------------------------------


def test_taxonomy_parses_and_refuses_bad_groupings():
    tax = parse_taxonomy(["low=a+b", "high=c+d"], ["a", "b", "c", "d"])
    assert tax.coarse == ("low", "high") and tax.parent.tolist() == [0, 0, 1, 1]
    p = np.array([[0.1, 0.2, 0.3, 0.4]])
    assert np.allclose(tax.probabilities(p), [[0.3, 0.7]])
    for entries, msg in ((["low=a+b", "high=c"], "leaves d without a coarse class"),
                         (["low=a+b", "high=b+c+d"], "under both 'low' and 'high'"),
                         (["low=a+b+x", "high=c+d"], "'x' .* is not a class"),
                         (["low a b"], "is not 'coarse=fine1\\+fine2'"),
                         (["all=a+b+c+d"], "at least two coarse classes")):
        with pytest.raises(ConfigError, match=msg):
            parse_taxonomy(entries, ["a", "b", "c", "d"])


def test_taxonomy_evaluates_fine_and_coarse_levels(graded, tmp_path, capsys):
    cfg = _cfg(graded, label_columns=["fine"], ev={"taxonomy": ["low=a+b", "high=c+d"]})
    run = train(cfg, tmp_path / "tax")
    m = evaluate_run(run.path, "test")
    y, p, _ = read_predictions(run.path / "predictions" / "test.csv")
    t = m["taxonomy"]
    assert t["classes"] == ["low", "high"] and t["children"] == {"low": ["a", "b"], "high": ["c", "d"]}
    assert t["auc"] == pytest.approx(roc_auc_score(y >= 2, p[:, 2:].sum(1)))
    assert "operating_points" in t  # chosen on the coarse validation probabilities
    names, coarse = load_run(run.path).predict_coarse_proba(np.zeros((2, 28, 28), np.uint8))
    assert names == ["low", "high"] and np.allclose(coarse.sum(1), 1, atol=1e-5)
    assert main(["evaluate", str(run.path), "--split", "test"]) == 0
    assert "coarse classes" in capsys.readouterr().out
    assert json.loads((run.path / "metrics" / "test.json").read_text())["taxonomy"]["n"] == m["n"]


def test_taxonomy_with_an_unknown_class_fails_before_training(graded, tmp_path):
    cfg = _cfg(graded, label_columns=["fine"], ev={"taxonomy": ["low=a+b", "high=c+e"]})
    with pytest.raises(ConfigError, match="'e' .* is not a class"):
        train(cfg, tmp_path / "t")
    assert not (tmp_path / "t").exists()
