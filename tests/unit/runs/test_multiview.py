"""Multi-view cases end to end: a class decided only by the combination of two views.

Each view of a synthetic two-view study holds a bright square in its upper or lower half, drawn independently; the
case is positive when the square is on the same side in both views. Either view alone therefore carries no
information about the class (a single-view model sits at chance), while the pair decides it. A case model (shared
ResNet-9 encoder, concatenation fusion) must reach a case-level AUC above 0.9.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medclass.config import config_from_dict
from medclass.errors import ConfigError, DataError
from medclass.models.multiview import MultiViewNet
from medclass.run_folder import read_predictions
from medclass.runs.evaluate import evaluate_run
from medclass.runs.external import evaluate_external
from medclass.runs.predict import load_run
from medclass.runs.report import write_report
from medclass.runs.train import train

SIDE = 16
SPLITS = {"train": 320, "val": 80, "test": 120}


def _view(rng: np.random.Generator, upper: bool) -> np.ndarray:
    img = rng.integers(0, 50, (SIDE, SIDE)).astype(np.uint8)
    y = int(rng.integers(1, SIDE // 2 - 5)) + (0 if upper else SIDE // 2)
    x = int(rng.integers(1, SIDE - 6))
    img[y:y + 5, x:x + 5] = 230
    return img


def write_xor_cases(root: Path, seed: int = 0, splits: dict[str, int] = SPLITS) -> Path:
    """Two-view cases (``frontal``, ``lateral``) as PNGs and a manifest with a fixed split column."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, n in splits.items():
        for k in range(n):
            case = f"{split}{k:04d}"
            sides = rng.integers(0, 2, 2).astype(bool)
            label = "same" if sides[0] == sides[1] else "different"
            for view, upper in zip(("frontal", "lateral"), sides):
                rel = f"{case}_{view}.png"
                Image.fromarray(_view(rng, bool(upper))).save(root / rel)
                rows.append({"path": rel, "label": label, "case_id": case, "view": view, "split": split})
    path = root / "cases.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "case_id", "view", "split"])
        w.writeheader()
        w.writerows(rows)
    return path


def write_single_view(cases_csv: Path, view: str) -> Path:
    """The same images, one view only, as an ordinary (one row per example) manifest."""
    with cases_csv.open() as f:
        rows = [r for r in csv.DictReader(f) if r["view"] == view]
    path = cases_csv.with_name(f"{view}.csv")
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "split"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def config(manifest: Path, tmp: Path, epochs: int = 12, **model):
    return config_from_dict({
        "data": {"manifest": str(manifest), "size": SIDE, "cache_dir": str(tmp / "cache"), "leakage": "off",
                 "classes": ["different", "same"]},
        "model": {"name": "resnet9", "width": 8, **model},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 5e-3, "class_weights": "none"},
        "eval": {"batch_size": 64, "n_boot": 200}})


@pytest.fixture(scope="module")
def xor(tmp_path_factory):
    root = tmp_path_factory.mktemp("xor")
    manifest = write_xor_cases(root)
    run = train(config(manifest, root), root / "case-run")
    return root, manifest, run, evaluate_run(run.path, "test")


def test_the_pair_decides_what_neither_view_does(xor):
    root, manifest, run, metrics = xor
    assert metrics["n"] == SPLITS["test"]
    assert metrics["bootstrap"]["unit"] == "case"
    assert metrics["auc"] > 0.9, metrics["auc"]
    for view in ("frontal", "lateral"):
        single = train(config(write_single_view(manifest, view), root, epochs=6), root / f"{view}-run")
        m = evaluate_run(single.path, "test")
        assert m["n"] == SPLITS["test"] and m["bootstrap"]["unit"] == "image"
        assert abs(m["auc"] - 0.5) < 0.15, (view, m["auc"])


def test_case_run_records_views_and_predicts_cases(xor):
    root, manifest, run, _ = xor
    card = json.loads((run.path / "dataset.json").read_text())
    assert card["unit"] == "case" and card["views"] == ["frontal", "lateral"]
    assert card["cases"] == {"unit": "case", "views": ["frontal", "lateral"], "view_kind": "views",
                             "cases": sum(SPLITS.values()), "images": 2 * sum(SPLITS.values())}
    assert json.loads((run.path / "preprocessing.json").read_text())["views"] == ["frontal", "lateral"]
    model = load_run(run.path)
    assert isinstance(model.model, MultiViewNet) and model.model.fusion == "concat"
    _, saved, _ = read_predictions(run.predictions("test"))
    cases = [{"frontal": str(root / f"test{k:04d}_frontal.png"), "lateral": str(root / f"test{k:04d}_lateral.png")}
             for k in range(5)]
    assert np.allclose(model.predict_proba(cases), saved[:5], atol=1e-6)  # the case's files, as trained
    as_lists = [[c["frontal"], c["lateral"]] for c in cases]
    assert np.allclose(model.predict_proba(as_lists), saved[:5], atol=1e-6)
    with pytest.raises(DataError, match="classifies cases of 2 images"):
        model.predict_proba(cases[0]["frontal"])
    with pytest.raises(DataError, match="has the views frontal; the model takes frontal, lateral"):
        model.predict_proba([{"frontal": cases[0]["frontal"]}])
    report = write_report(run.path, "test").read_text()
    assert "120 cases" in report and "not built for cases" in report


def test_external_manifest_of_cases_is_scored_per_case(xor, tmp_path):
    _, _, run, _ = xor
    ext = write_xor_cases(tmp_path, seed=5, splits={"test": 40})
    metrics = evaluate_external(run.path, ext, name="site-b")
    assert metrics["n"] == 40 and metrics["external"]["cases_scored"] == 40 and metrics["external"]["rows_scored"] == 80
    assert metrics["auc"] > 0.85
    single = write_single_view(ext, "frontal")
    with pytest.raises(DataError, match="has no 'case_id' column"):
        evaluate_external(run.path, single, name="one-view")


def test_fusions_and_encoders_build_and_differ_in_order_sensitivity():
    x = torch.randn(3, 1, 2, SIDE, SIDE)
    swapped = x.flip(2)
    from medclass.models import create_model

    for fusion in ("concat", "mean", "max", "attn"):
        for enc in ("shared", "per-view"):
            torch.manual_seed(0)
            net = MultiViewNet(lambda: create_model("resnet9", num_classes=1, in_chans=1, input_size=SIDE, width=4),
                               views=2, num_classes=2, fusion=fusion, encoder=enc, probe=(1, SIDE, SIDE)).eval()
            out, out_swapped = net(x), net(swapped)
            assert out.shape == (3, 2)
            assert net.forward_features(x).shape[2] == 2  # (N, F, V, h, w): one map per view
            order_free = fusion != "concat" and enc == "shared"
            assert torch.allclose(out, out_swapped, atol=1e-5) == order_free, (fusion, enc)
    n_shared = sum(p.numel() for p in MultiViewNet(
        lambda: create_model("resnet9", num_classes=1, in_chans=1, input_size=SIDE, width=4), views=4, num_classes=2,
        probe=(1, SIDE, SIDE)).encoders.parameters())
    n_per = sum(p.numel() for p in MultiViewNet(
        lambda: create_model("resnet9", num_classes=1, in_chans=1, input_size=SIDE, width=4), views=4, num_classes=2,
        encoder="per-view", probe=(1, SIDE, SIDE)).encoders.parameters())
    assert n_per == 4 * n_shared


def test_frozen_transfer_is_refused_for_cases(tmp_path):
    manifest = write_xor_cases(tmp_path, splits={"train": 8, "val": 4, "test": 4})
    with pytest.raises(ConfigError, match="with cases every view's encoder trains"):
        train(config(manifest, tmp_path, epochs=1, transfer="linear"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_case_model_exports_and_predicts_cases(xor, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    from medclass.runs.export import export_run, load_exported

    root, _, run, _ = xor
    exported = load_exported(export_run(run.path, fmt=fmt)["model"])
    assert exported.pipeline_.views == ("frontal", "lateral")
    _, saved, _ = read_predictions(run.predictions("test"))
    cases = [[str(root / f"test{k:04d}_{v}.png") for v in ("frontal", "lateral")] for k in range(6)]
    assert np.allclose(exported.predict_proba(cases), saved[:6], atol=1e-5)
