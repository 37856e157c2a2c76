"""The console commands: exit codes, one-line errors, and that they call the same functions as Python."""

import json

import numpy as np
import pytest
from PIL import Image

from medclass.cli.main import main

FAST = ["--set", "model.width=4", "--batch-size", "16", "--epochs", "2", "--quiet"]


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_data_and_models_listing(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "pneumoniamnist" in out and "synapsemnist3d" in out
    assert main(["data", "info", "breastmnist"]) == 0
    out = capsys.readouterr().out
    assert "750601b1f35ba3300ea97c75c52ff8f6" in out and "malignant" in out and "CC BY 4.0" in out
    assert main(["models", "list"]) == 0
    assert "resnet18" in capsys.readouterr().out


def test_unknown_dataset_is_one_line_with_suggestion(capsys, tmp_path):
    assert main(["data", "info", "breastmnst"]) == 2
    assert "Did you mean 'breastmnist'?" in _err(capsys)
    assert main(["train", "--dataset", "pnuemoniamnist", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "Did you mean 'pneumoniamnist'?" in _err(capsys)
    assert not (tmp_path / "r").exists()


def test_missing_file_offline_message(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDCLASS_DATA", raising=False)
    assert main(["train", "--dataset", "dermamnist", "--no-download", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = _err(capsys)
    assert "dermamnist.npz" in err and "0744692d530f8e62ec473284d019b0c7" in err and str(tmp_path) in err


def test_train_evaluate_predict_round_trip(toy_npz, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(toy_npz), "--seed", "1", "--out", str(run), *FAST]) == 0
    assert "next: medclass evaluate" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "AUC" in out and "sensitivity" in out and "confusion matrix" in out
    assert json.loads((run / "metrics" / "test.json").read_text())["n"] == 32
    img = tmp_path / "a.png"
    Image.fromarray(np.load(toy_npz)["test_images"][0]).save(img)
    assert main(["predict", str(run), str(img), "--out", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    # the columns of the run's own predictions files, so `evaluate --predictions` reads it once labels are added
    assert lines[0] == "index,p_0,p_1,path,prediction" and lines[1].split(",")[3] == str(img)
    assert main(["predict", str(run), str(img)]) == 0
    assert "prediction" in capsys.readouterr().out


def test_existing_run_and_resume_misuse(toy_npz, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(toy_npz), "--out", str(run), *FAST]) == 0
    capsys.readouterr()
    assert main(["train", "--dataset", str(toy_npz), "--out", str(run), *FAST]) == 2
    assert "already exists" in _err(capsys)
    assert main(["train", "--resume", str(run), "--epochs", "5"]) == 2
    assert "cannot be combined with --epochs" in _err(capsys)
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "is not a medclass run folder" in _err(capsys)
    assert main(["train", "--dataset", str(toy_npz), *FAST]) == 2
    assert "needs --out" in _err(capsys)


def test_bad_settings_and_print_config(capsys):
    assert main(["train", "--set", "train.lr=-1", "--set", "train.optimiser=sgd", "--print-config"]) == 2
    err = _err(capsys)
    assert "train.lr must be > 0" in err and "Did you mean 'optimizer'?" in err
    assert main(["train", "--recipe", "medmnist-reference", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "name: resnet18" in out and "epochs: 100" in out


def test_evaluate_unfinished_or_missing_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none")]) == 2
    assert "does not exist" in _err(capsys)


def test_evaluate_report_compare_and_predictions_mode(toy_npz, tmp_path, capsys):
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        assert main(["train", "--dataset", str(toy_npz), "--seed", str(seed), "--out", str(run), *FAST]) == 0
        assert main(["evaluate", str(run)]) == 0
        runs.append(run)
    out = capsys.readouterr().out
    assert "95% interval" in out and "operating points" in out
    assert main(["report", str(runs[0])]) == 0
    assert "report: " in capsys.readouterr().out and (runs[0] / "report.html").is_file()
    assert main(["compare", str(runs[0]), str(runs[1]), "--n-boot", "200", "--out", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "A - B" in out and "DeLong" in out
    # grade a predictions file "from another tool": the run's own test predictions
    preds = runs[0] / "predictions" / "test.csv"
    assert main(["evaluate", "--predictions", str(preds), "--task", "binary", "--val-predictions",
                 str(runs[0] / "predictions" / "val.csv"), "--n-boot", "200", "--out", str(tmp_path / "m.json")]) == 0
    graded = json.loads((tmp_path / "m.json").read_text())
    own = json.loads((runs[0] / "metrics" / "test.json").read_text())
    assert graded["auc"] == pytest.approx(own["auc"], abs=1e-6) and len(graded["operating_points"]) == 4


def test_predictions_file_errors(tmp_path, capsys):
    bad = tmp_path / "p.csv"
    bad.write_text("id,label,score\n1,0,0.3\n")
    assert main(["evaluate", "--predictions", str(bad)]) == 2
    assert "must have a header with a 'y'" in _err(capsys)
    bad.write_text("y,p_0,p_1\n0,0.2,0.8\n1,x,0.1\n")
    assert main(["evaluate", "--predictions", str(bad)]) == 2
    assert "row 3" in _err(capsys)
    assert main(["report", str(tmp_path)]) == 2
    assert "not a medclass run folder" in _err(capsys)


def test_explain_writes_overlays_maps_filters_activations_and_gallery(toy_npz, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(toy_npz), "--out", str(run), *FAST]) == 0
    img = tmp_path / "scan.png"
    Image.fromarray(np.load(toy_npz)["test_images"][1]).save(img)
    out = tmp_path / "expl"
    assert main(["explain", str(run), str(img), "--method", "cam", "--out", str(out), "--filters",
                 "--activations", "layer2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["filters.png", "scan_activations_layer2.png", "scan_cam.npy", "scan_cam.png"]
    heat = np.load(out / "scan_cam.npy")
    assert heat.shape == (16, 16) and 0 <= heat.min() and heat.max() <= 1
    assert main(["explain", str(run), str(img), "--method", "gradcam", "--class", "7"]) == 2
    assert "--class 7 is out of range" in _err(capsys)
    assert main(["explain", str(run), str(img), "--layer", "layer5"]) == 2
    assert "Did you mean 'layer3'?" in _err(capsys)
    assert main(["explain", str(run), "--gallery"]) == 2
    assert "no test predictions yet" in _err(capsys)
    assert main(["evaluate", str(run)]) == 0
    assert main(["explain", str(run), "--gallery", "--per-group", "2"]) == 0
    assert (run / "explain" / "gallery.html").is_file()
    assert main(["report", str(run)]) == 0
    doc = (run / "report.html").read_text()
    assert "true positives" in doc and "false negatives" in doc


def test_own_images_import_check_and_train_from_the_command_line(capsys, tmp_path):
    from tests.unit.data.test_manifest import _lesion_image

    rng = np.random.default_rng(0)
    for cls, label in (("normal", 0), ("lesion", 1)):
        for p in range(12):
            f = tmp_path / "imgs" / cls / f"{cls}{p}" / "0.png"
            f.parent.mkdir(parents=True)
            Image.fromarray(_lesion_image(rng, label)).save(f)
    manifest = tmp_path / "m.csv"
    assert main(["data", "import-folder", str(tmp_path / "imgs"), "--out", str(manifest)]) == 0
    assert "24 images" in capsys.readouterr().out
    assert main(["data", "check", str(manifest), "--json", str(tmp_path / "leak.json")]) == 0
    out = capsys.readouterr().out
    assert "OK: no bad rows, no leakage" in out and json.loads((tmp_path / "leak.json").read_text())["ok"]
    # a planted duplicate across splits: check exits 1 and train refuses with the file named
    dup = tmp_path / "imgs" / "lesion" / "copy.png"
    dup.write_bytes((tmp_path / "imgs" / "lesion" / "lesion2" / "0.png").read_bytes())
    import re

    def split_of(line: str) -> str:  # patients 0-1 of each class in test, 2-3 in val, the rest in train
        p = int(re.search(r"(normal|lesion)(\d+)/", line).group(2))
        return "test" if p < 2 else "val" if p < 4 else "train"

    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([lines[0] + ",split"] + [f"{ln},{split_of(ln)}" for ln in lines[1:]]
                                  + ["imgs/lesion/copy.png,lesion,copy,test"]) + "\n")  # a copy of a val image
    assert main(["data", "check", str(manifest)]) == 1
    assert "copy.png" in capsys.readouterr().out
    assert main(["train", "--manifest", str(manifest), "--out", str(tmp_path / "r"), *FAST]) == 2
    assert "copy.png" in _err(capsys) and not (tmp_path / "r").exists()
    assert main(["train", "--manifest", str(manifest), "--out", str(tmp_path / "r"), "--set", "data.leakage=warn",
                 *FAST]) == 0
    assert (tmp_path / "r" / "leakage.json").is_file()


def test_one_epoch_on_a_small_dataset_trains(toy_npz, tmp_path, capsys):
    """One epoch of 4 steps: a one-cycle schedule this short used to end in ZeroDivisionError."""
    assert main(["train", "--dataset", str(toy_npz), "--epochs", "1", "--batch-size", "16", "--set", "model.width=4",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 0


def test_unexpected_errors_are_one_line_and_tracebacks_need_v(monkeypatch, capsys):
    import medclass.cli.data as data_cli

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(data_cli, "run_list", boom)
    assert main(["data", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected KeyError: 'surprise'") and "with -v for the traceback" in err
    assert len(err.strip().splitlines()) == 2
    with pytest.raises(KeyError):
        main(["data", "list", "-v"])  # -v after the sub-command works too


def test_verbose_after_the_subcommand(capsys):
    assert main(["models", "list", "-v"]) == 0
    assert main(["-v", "data", "list"]) == 0


def test_metrics_table_prints_warnings_and_undefined_shares():
    from medclass.cli.tables import metrics_table

    iv = {"estimate": 1.0, "low": 1.0, "high": 1.0, "n_boot": 2000, "n_undefined": 967, "undefined_share": 0.4835}
    text = metrics_table({"dataset": "d", "split": "test", "n": 2, "intervals": {"auc": iv},
                          "warnings": [{"code": "small-split", "message": "Only 2 images in this split: ..."}]})
    assert "warning: Only 2 images in this split" in text
    assert "AUC  1.0000    [1.0000, 1.0000]  (48% of replicates undefined)" in text


def test_evaluate_predictions_with_one_class_validation_warns_instead_of_failing(tmp_path, capsys):
    from medclass.run_folder import write_predictions

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    p = np.clip(0.4 * y + 0.6 * rng.random(60), 0, 1)
    write_predictions(tmp_path / "test.csv", y, np.stack([1 - p, p], 1))
    write_predictions(tmp_path / "val.csv", np.zeros(20, int), np.stack([1 - p[:20], p[:20]], 1))
    assert main(["evaluate", "--predictions", str(tmp_path / "test.csv"), "--val-predictions",
                 str(tmp_path / "val.csv"), "--n-boot", "200", "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "warning: Operating points were not chosen: the validation predictions hold only one class" in out
    m = json.loads((tmp_path / "m.json").read_text())
    assert "operating_points" not in m and [w["code"] for w in m["warnings"]] == ["no-operating-points"]
