"""Volumes (MedMNIST 3D layout) through train, evaluate, predict and report, on tiny synthetic cubes."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from medclass.cli.main import main
from medclass.config import RunConfig, config_from_dict
from medclass.data.datasets import load_dataset, load_npz
from medclass.data.pipeline import InputPipeline
from medclass.errors import ConfigError, DataError
from medclass.run_folder import read_predictions
from medclass.runs.evaluate import evaluate_run
from medclass.runs.explain import explain_images
from medclass.runs.export import export_run, load_exported
from medclass.runs.gallery import build_gallery
from medclass.runs.predict import load_run
from medclass.runs.report import write_report
from medclass.runs.train import prepare_training, train
from medclass.runs.volumes import VOLUME_MODEL, match_model
from medclass.transforms.augment3d import BatchAugment3D
from medclass.transforms.intensity import build_normalizer, to_float
from tests.conftest import SHARED_DATA

SIDE = 12


def make_volume_npz(path: Path, n=(32, 16, 16), side: int = SIDE, seed: int = 0) -> Path:
    """MedMNIST 3D layout: ``{split}_images`` uint8 ``(N, D, H, W)``; class 1 has a bright cube in its centre."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        labels = np.arange(count) % 2
        images = rng.integers(0, 60, size=(count, side, side, side)).astype(np.uint8)
        q = side // 3
        images[labels == 1, q:2 * q, q:2 * q, q:2 * q] = 220
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.reshape(-1, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def volume_config(dataset: Path, model: dict | None = None, **train_opts) -> RunConfig:
    return config_from_dict({"data": {"dataset": str(dataset)},
                             "model": model or {"name": "cnn3d_small", "width": 4},
                             "train": {"epochs": 2, "batch_size": 8, "lr": 3e-3, **train_opts},
                             "eval": {"batch_size": 16, "n_boot": 100, "tta": True}})


def test_npz_volumes_load_with_a_channel_axis(tmp_path):
    ds = load_npz(make_volume_npz(tmp_path / "v.npz"))
    assert ds.spatial_dims == 3 and ds.unit == "volume" and ds.size == SIDE and ds.channels == 1
    assert ds.split("train").images.shape == (32, SIDE, SIDE, SIDE, 1)
    assert ds.describe()["spatial_dims"] == 3 and ds.pipeline.spatial_dims == 3


def test_volume_batches_are_ncdhw():
    batch = np.random.default_rng(0).integers(0, 255, (3, 4, 5, 6, 1)).astype(np.uint8)
    assert to_float(torch.from_numpy(batch)).shape == (3, 1, 4, 5, 6)
    for kind in ("dataset", "mean-image", "image-zscore"):
        norm = build_normalizer(kind, (0.5,), (0.5,), batch)
        assert norm(to_float(torch.from_numpy(batch))).shape == (3, 1, 4, 5, 6)
    pipe = InputPipeline(size=4, channels=1, spatial_dims=3)
    x = pipe.to_tensor(batch, channels_last=True)  # channels_last is 2D-only: ignored for volumes
    assert x.shape == (3, 1, 4, 5, 6) and x.is_contiguous()
    assert InputPipeline.from_dict(pipe.to_dict()).spatial_dims == 3


def test_train_evaluate_predict_report_volumes(tmp_path):
    path = make_volume_npz(tmp_path / "v.npz", n=(24, 12, 10))
    run = train(volume_config(path), tmp_path / "run")
    assert json.loads((run.path / "preprocessing.json").read_text())["spatial_dims"] == 3
    metrics = evaluate_run(run.path, "test")
    assert metrics["bootstrap"]["unit"] == "volume" and metrics["n"] == 10
    _, saved, _ = read_predictions(run.predictions("test"))
    model = load_run(run.path)
    raw = np.load(path)["test_images"]  # (N, D, H, W), as published
    assert np.allclose(model.predict_proba(raw), saved, atol=1e-6)
    assert np.allclose(model.predict_proba(raw[:, ..., None]), saved, atol=1e-6)
    gallery = json.loads(Path(build_gallery(run.path, "test", per_group=1)).with_suffix(".json").read_text())
    assert sum(len(g["items"]) for g in gallery["groups"]) >= 2  # montages through the hottest point
    report = write_report(run.path, "test").read_text()  # reuses the fresh gallery
    assert "10 volumes, scored once" in report and "volumes of the split resampled" in report


def test_volumes_are_augmented_in_3d(tmp_path):
    path = make_volume_npz(tmp_path / "v.npz", n=(8, 4, 4))
    setup = prepare_training(volume_config(path, augment={"rotate": 10.0, "hflip": True}), None)
    loader = setup.trainer.train_loader
    assert isinstance(loader.augment, BatchAugment3D)
    x, _ = next(loader.batches(torch.Generator().manual_seed(0)))
    assert x.shape == (8, 1, SIDE, SIDE, SIDE)


def test_predict_a_nifti_volume(tmp_path):
    nib = pytest.importorskip("nibabel")
    path = make_volume_npz(tmp_path / "v.npz", n=(16, 8, 8))
    run = train(volume_config(path, epochs=1), tmp_path / "run")
    vol = np.random.default_rng(1).integers(0, 255, (20, 20, 16)).astype(np.int16)
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 1.5, 1.0])), tmp_path / "v.nii.gz")
    p = load_run(run.path).predict_proba([tmp_path / "v.nii.gz"])
    assert p.shape == (1, 2) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_default_model_for_volumes_and_mismatches(tmp_path):
    default = config_from_dict({"data": {"dataset": "adrenalmnist3d"}})
    chosen = match_model(default, 3, "adrenalmnist3d").model
    assert (chosen.name, chosen.width) == (VOLUME_MODEL["name"], VOLUME_MODEL["width"])
    assert match_model(default, 2, "breastmnist") is default
    with pytest.raises(ConfigError, match=r"resnet18 is a 2D model but adrenalmnist3d holds 3D volumes\. "
                                          r"Choose a 3D model \(.*cnn3d_small.*resnet10_3d"):
        match_model(config_from_dict({"model": {"name": "resnet18"}}), 3, "adrenalmnist3d")
    with pytest.raises(ConfigError, match=r"cnn3d_small is a 3D model but breastmnist holds 2D images"):
        match_model(config_from_dict({"model": {"name": "cnn3d_small"}}), 2, "breastmnist")


def test_mismatch_is_refused_before_the_run_folder_exists(tmp_path):
    path = make_volume_npz(tmp_path / "v.npz", n=(8, 4, 4))
    with pytest.raises(ConfigError, match="2D model"):
        train(volume_config(path, model={"name": "resnet9", "width": 4}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_default_model_recorded_in_config(tmp_path, caplog):
    path = make_volume_npz(tmp_path / "v.npz", n=(8, 4, 4), side=8)
    cfg = config_from_dict({"data": {"dataset": str(path)}, "train": {"epochs": 1, "batch_size": 8},
                            "eval": {"n_boot": 100}})
    with caplog.at_level(logging.WARNING, logger="medclass.runs.volumes"):
        run = train(cfg, tmp_path / "run")
    text = (run.path / "config.yaml").read_text()
    assert "name: cnn3d_small" in text and "width: 8" in text
    # the substitution is said out loud: an explicit --model resnet9 looks the same as no --model
    assert any("resnet9 takes 2D images: training the 3D default cnn3d_small" in r.getMessage()
               for r in caplog.records)


REAL = next((d for d in (os.environ.get("MEDCLASS_DATA"), SHARED_DATA)
             if d and (Path(d) / "adrenalmnist3d.npz").is_file()), None)


@pytest.mark.skipif(REAL is None, reason="Requires: adrenalmnist3d.npz (set MEDCLASS_DATA to its folder)")
def test_real_adrenalmnist3d():
    ds = load_dataset("adrenalmnist3d", data_dir=REAL, download=False)
    assert ds.spatial_dims == 3 and ds.positive_label == 1
    assert {s: v.images.shape for s, v in ds.splits.items()} == {
        "train": (1188, 28, 28, 28, 1), "val": (98, 28, 28, 28, 1), "test": (298, 28, 28, 28, 1)}


def test_explain_a_nifti_file_and_a_series_folder(tmp_path, capsys):
    nib = pytest.importorskip("nibabel")
    pytest.importorskip("pydicom")
    from tests.unit.data.test_series import canonical, write_slices

    path = make_volume_npz(tmp_path / "v.npz", n=(16, 8, 8))
    run = train(volume_config(path, epochs=1), tmp_path / "run")
    vol = np.random.default_rng(1).integers(0, 255, (20, 20, 16)).astype(np.int16)
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 1.5, 1.0])), tmp_path / "scan.nii.gz")
    (tmp_path / "series").mkdir()
    write_slices(tmp_path / "series", canonical((6, 5, 4)))
    out = tmp_path / "explain"
    assert main(["explain", str(run.path), str(tmp_path / "scan.nii.gz"), str(tmp_path / "series"),
                 "--out", str(out), "--filters", "--activations", "layer1"]) == 0
    assert (out / "filters.png").is_file() and (out / "scan_activations_layer1.png").is_file()
    printed = capsys.readouterr().out
    assert "scan.nii.gz" in printed and "series" in printed
    for name in ("scan_gradcam", "series_gradcam"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        heat = np.load(out / f"{name}.npy")
        assert heat.shape == (SIDE, SIDE, SIDE) and 0 <= heat.min() and heat.max() <= 1
    rows = explain_images(run.path, [tmp_path / "scan.nii.gz"], tmp_path / "api", method="occlusion")
    assert rows[0]["class"] in ("0", "1") and Path(rows[0]["overlay"]).is_file()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_exported_volume_model_reproduces_the_run(tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="Requires: onnx (pip install \"medclass[export]\")")
        pytest.importorskip("onnxruntime", reason="Requires: onnxruntime (pip install \"medclass[export]\")")
    nib = pytest.importorskip("nibabel")
    path = make_volume_npz(tmp_path / "v.npz", n=(16, 8, 8))
    run = train(volume_config(path, epochs=1), tmp_path / "run")  # eval.tta: the mirror average is in the graph
    evaluate_run(run.path, "test")
    written = export_run(run.path, fmt)
    assert written["check"]["max_abs_diff"] <= 1e-5
    sidecar = json.loads(Path(written["sidecar"]).read_text())
    assert sidecar["input"]["layout"] == "NDHWC" and sidecar["input"]["shape"] == ["batch", SIDE, SIDE, SIDE, 1]
    exported = load_exported(written["model"])
    _, saved, _ = read_predictions(run.predictions("test"))
    raw = np.load(path)["test_images"]
    assert np.abs(exported.predict_proba(raw) - saved).max() <= 1e-5
    vol = np.random.default_rng(1).integers(0, 255, (20, 20, 16)).astype(np.int16)
    nib.save(nib.Nifti1Image(vol, np.diag([1.0, 1.0, 1.5, 1.0])), tmp_path / "scan.nii.gz")
    scan = [tmp_path / "scan.nii.gz"]
    assert np.abs(exported.predict_proba(scan) - load_run(run.path).predict_proba(scan)).max() <= 1e-5
    with pytest.raises(DataError, match=r"takes a uint8 batch of shape \(N, 12, 12, 12, 1\)"):
        exported.predict_batch(np.zeros((1, SIDE, SIDE, 1), np.uint8))


def test_slice_pooling_gallery_shows_slice_weights(tmp_path):
    path = make_volume_npz(tmp_path / "v.npz", n=(16, 8, 8))
    run = train(volume_config(path, model={"name": "slices_resnet9_attn", "width": 4}, epochs=1), tmp_path / "run")
    evaluate_run(run.path, "test")
    gallery = json.loads(Path(build_gallery(run.path, "test", per_group=1)).with_suffix(".json").read_text())
    items = [it for g in gallery["groups"] for it in g["items"]]
    assert items and all((run.path / "explain" / it["slices_png"]).is_file() for it in items)
    report = write_report(run.path, "test").read_text()
    assert "each axial slice's weight in the pooled prediction" in report
