"""External validation: a run scored on another site's manifest through its own pipeline and operating points."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medclass.cli.main import main
from medclass.config import config_from_dict
from medclass.errors import ConfigError
from medclass.runs import load_run, train
from medclass.runs.external import evaluate_external, external_name
from tests.imaging import write_manifest


@pytest.fixture(scope="module")
def site_a_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("siteA")
    manifest = write_manifest(tmp / "files", "dicom_cr_mono1", n=32, seed=0)
    cfg = config_from_dict({"data": {"manifest": str(manifest), "size": 24, "preprocess": {"preset": "xray"},
                                     "split_ratios": [0.5, 0.25, 0.25], "leakage": "warn"},
                            "model": {"name": "resnet9", "width": 4}, "train": {"epochs": 3, "batch_size": 8},
                            "eval": {"n_boot": 200}})
    return train(cfg, tmp / "run").path


def test_external_set_is_scored_with_the_runs_pipeline_and_operating_points(site_a_run, tmp_path):
    other = write_manifest(tmp_path / "siteB", "dicom_cr_mono1", n=20, seed=7, name="site B.csv")
    m = evaluate_external(site_a_run, other)
    assert external_name(other) == "site-B"
    metrics = site_a_run / "metrics" / "external-site-B.json"
    preds = site_a_run / "predictions" / "external-site-B.csv"
    assert metrics.is_file() and preds.is_file() and json.loads(metrics.read_text())["n"] == 20
    assert m["external"]["operating_points_from"] == "the run's validation split"
    val = json.loads((site_a_run / "metrics" / "val.json").read_text())
    assert [o["threshold"] for o in m["operating_points"]] == pytest.approx([o["threshold"] for o in
                                                                              val["operating_points"]], abs=1e-7)
    assert m["bootstrap"]["unit"] == "patient" and m["bootstrap"]["n_units"] == 20  # intervals resample patients
    assert "site" in m.get("subgroups", {})  # per-site results from the manifest's metadata
    # the same probabilities as predicting the files one by one
    with open(preds, newline="") as f:
        rows = list(csv.DictReader(f))
    files = [str(tmp_path / "siteB" / r["path"]) for r in rows]
    p = load_run(site_a_run).predict_proba(files)
    assert np.abs(p - np.array([[float(r["p_0"]), float(r["p_1"])] for r in rows])).max() <= 1e-6
    shift = m["shift"]
    assert shift["prevalence"]["new_counts"] == [10, 10]
    assert len(shift["intensity"]["standardised_mean_difference"]) == 1
    assert shift["size"]["new"]["size"]["median"] == [44.0, 38.0]
    assert shift["size"]["new"]["spacing_mm"]["median"] == [0.7, 0.7]
    cal = shift["calibration"]
    assert cal["observed_positives"] == 10 and len(cal["at_operating_points"]) == len(m["operating_points"])


def test_cli_prints_the_shift_and_refuses_foreign_labels(site_a_run, tmp_path, capsys):
    other = write_manifest(tmp_path / "siteC", "dicom_cr_mono1", n=12, seed=3, classes=("neg", "tumour"))
    with pytest.raises(ConfigError, match=r"'tumour' in column 'label' are not classes of this run \(neg, pos\)"):
        evaluate_external(site_a_run, other)
    assert main(["evaluate", str(site_a_run), "--manifest", str(other)]) == 2
    assert "not classes of this run" in capsys.readouterr().err
    ok = write_manifest(tmp_path / "siteD", "dicom_cr_mono1", n=12, seed=4)
    assert main(["evaluate", str(site_a_run), "--manifest", str(ok), "--name", "hospital-2"]) == 0
    out = capsys.readouterr().out
    assert "what shifted between the training data and this set" in out and "train share" in out
    assert (site_a_run / "metrics" / "external-hospital-2.json").is_file()


def test_external_files_of_another_kind_are_refused_or_skipped(site_a_run, tmp_path, capsys):
    other = write_manifest(tmp_path / "siteE", "png8", n=8, seed=5)  # 8-bit PNGs: the xray preset still applies
    m = evaluate_external(site_a_run, other)
    assert m["shift"]["file_kinds"]["new"]["sources"] == ["image"]
    assert m["shift"]["file_kinds"]["train"]["sources"] == ["dicom"]
    (tmp_path / "siteE" / "png8_000.png").write_bytes(b"not a png")
    assert main(["evaluate", str(site_a_run), "--manifest", str(other)]) == 2
    assert "png8_000.png" in capsys.readouterr().err
    assert main(["evaluate", str(site_a_run), "--manifest", str(other), "--skip-bad"]) == 0


def test_the_report_has_a_section_per_external_set(site_a_run, tmp_path):
    from medclass.reports import build_report
    from medclass.runs import evaluate_run

    for name, seed in (("north", 11), ("south <b>", 12)):
        evaluate_external(site_a_run, write_manifest(tmp_path / name, "dicom_cr_mono1", n=10, seed=seed),
                          name=name)
    evaluate_run(site_a_run, "test")
    doc = build_report(site_a_run).read_text()
    assert "External validation (data the model never saw)" in doc
    assert "<h3>north (10 images)" in doc and "south-b" in doc and "<b>" not in doc.split("External validation")[1][:20]
    assert "share in training" in doc and "standardised difference" in doc and "called positive" in doc
