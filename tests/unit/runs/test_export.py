"""Export (medclass/runs/export.py): the traced graph equals the torch path for every registered family, every
normalisation and every task head; a real run round-trips through `medclass export` and `medclass predict
--engine onnx|torchscript`; bad input gets one clear line."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medclass.cli.main import main
from medclass.config import replace
from medclass.data.pipeline import InputPipeline
from medclass.errors import CheckpointError, ConfigError, RunFolderError
from medclass.models import create_model, get_model_card, list_models
from medclass.run_folder import RunFolder, _start_time
from medclass.runs import export as export_mod
from medclass.runs.export import (
    ONNX_UNSUPPORTED,
    ExportWrapper,
    coral_probabilities_export,
    export_module,
    export_run,
    load_exported,
    open_engine,
    random_batch,
)
from medclass.runs.train import train
from medclass.tasks import attach_coral_head, coral_probabilities, get_task
from medclass.training.inference import predict_proba
from tests.conftest import fast_config, make_npz

pytest.importorskip("onnxruntime", reason="Requires: onnxruntime (pip install \"medclass[export]\")")


def _pipeline(kind: str = "fixed", channels: int = 1, size: int = 28, seed: int = 0) -> InputPipeline:
    norm = {"kind": kind, "mean": [0.3] * channels, "std": [0.2] * channels}
    if kind == "mean-image":
        mi = np.random.default_rng(seed).random((channels, size, size))
        norm.update(mean_image_shape=[channels, size, size], mean_image=[round(float(v), 5) for v in mi.ravel()])
    return InputPipeline(size=size, channels=channels, normalize=norm)


def _settle_batchnorm(model: torch.nn.Module, pipeline: InputPipeline) -> torch.nn.Module:
    """Give BatchNorm layers the statistics of real inputs (a fresh model's unit variances let a deep network's
    logits grow to 1e4 and more, where float rounding alone moves them by more than 1e-5)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average
        model.train()
        with torch.no_grad():
            model(pipeline.to_tensor(random_batch(pipeline, 8, seed=2)))
    return model.eval()


def _exported(model, pipeline, task, tta=False, fmt="onnx"):
    data = export_module(ExportWrapper(model, pipeline, task, tta), fmt,
                         torch.from_numpy(random_batch(pipeline, 2, seed=0)))
    return open_engine(data, fmt)


def _torch(model, pipeline, task, batch, tta=False) -> np.ndarray:
    """Evaluation's own forward pass."""
    probs, _, _ = predict_proba(model, [(pipeline.to_tensor(batch), torch.zeros(len(batch)))], task, tta=tta)
    return probs


def _compare(model, pipeline, task, tta=False, fmt="onnx", n=3) -> float:
    """Largest |exported - torch| over a random batch of ``n`` (another size than traced: the axis is dynamic)."""
    batch = random_batch(pipeline, n, seed=1)
    got, expected = _exported(model, pipeline, task, tta, fmt)(batch), _torch(model, pipeline, task, batch, tta)
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max())


# --- the whole registry -------------------------------------------------------------------------------

FAST = ("resnet9", "resnet18", "densenet121", "convnext_atto")  # convnext_atto: a timm model
TWO_D = [n for n in list_models() if getattr(get_model_card(n), "spatial_dims", 2) == 2]


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in TWO_D
                                  if get_model_card(n).family not in ONNX_UNSUPPORTED])
def test_onnx_matches_torch_for_every_registered_model(name):
    """Within 1e-5 of torch; or, where torch's own float32 rounding is larger than that, as close to the float64
    result as torch's float32 forward pass is (within a factor 3).

    At random initialisation the deepest networks are ill-conditioned: resnet101, resnet152 and inception_v3
    move their probabilities by 1e-5 to 1e-4 through float32 rounding alone (torch float32 against torch float64),
    and ONNX Runtime, summing in another order, lands as far from float64 as torch does, not further.
    """
    torch.manual_seed(0)
    pipe, task = _pipeline(), get_task("multiclass")
    model = _settle_batchnorm(create_model(name, num_classes=3, in_chans=1, input_size=28), pipe)
    batch = random_batch(pipe, 3, seed=1)
    got, expected = _exported(model, pipe, task)(batch), _torch(model, pipe, task, batch)
    diff = float(np.abs(got - expected).max())
    if diff <= 1e-5:
        return
    assert name not in FAST, f"{name}: |onnx - torch| = {diff:.3g}"
    with torch.no_grad():
        exact = task.probabilities(model.double()(pipe.to_tensor(batch).double())).numpy()
    onnx_error, torch_error = np.abs(got - exact).max(), np.abs(expected - exact).max()
    assert onnx_error <= 3 * torch_error, f"{name}: |onnx - float64| = {onnx_error:.3g}, |torch - float64| = " \
                                          f"{torch_error:.3g}"


FAST_3D = ("cnn3d_small", "slices_resnet9_attn", "resnet9_25d")  # slices_*: adaptive pooling ONNX cannot express
THREE_D = list_models(spatial_dims=3)


@pytest.mark.parametrize("name", [n if n in FAST_3D else pytest.param(n, marks=pytest.mark.slow) for n in THREE_D])
def test_onnx_and_torchscript_match_torch_for_every_volume_model(name):
    """Volume models take uint8 (N, D, H, W, C) volumes; the mirror average (TTA) is traced along W as in 2D."""
    torch.manual_seed(0)
    pipe, task = InputPipeline(size=16, channels=1, spatial_dims=3), get_task("binary")
    model = _settle_batchnorm(create_model(name, num_classes=2, in_chans=1), pipe)
    batch = random_batch(pipe, 3, seed=1)
    assert batch.shape == (3, 16, 16, 16, 1)
    expected = _torch(model, pipe, task, batch, tta=True)
    for fmt in ("onnx", "torchscript"):
        assert np.abs(_exported(model, pipe, task, tta=True, fmt=fmt)(batch) - expected).max() <= 1e-5, fmt


def test_onnx_three_channels_with_imagenet_statistics():
    torch.manual_seed(0)
    card = get_model_card("resnet18")
    pipe = InputPipeline(size=28, channels=3, normalize={"kind": "fixed", "mean": list(card.mean),
                                                         "std": list(card.std)})
    model = _settle_batchnorm(create_model("resnet9", num_classes=2, in_chans=3, input_size=28), pipe)
    assert _compare(model, pipe, get_task("binary")) <= 1e-5


def test_families_onnx_cannot_express_are_named():
    # every family exports today; one that stops doing so goes into ONNX_UNSUPPORTED with its reason, and here
    assert ONNX_UNSUPPORTED == {}
    families = {get_model_card(n).family for n in TWO_D}
    assert set(ONNX_UNSUPPORTED) <= families


# --- step 3 of the pipeline and the task heads ------------------------------------------------------


@pytest.mark.parametrize("kind", ["fixed", "dataset", "image-zscore", "image-minmax", "mean-image"])
def test_every_normalisation_is_in_the_graph(kind):
    torch.manual_seed(0)
    pipe = _pipeline(kind, size=16)
    model = _settle_batchnorm(create_model("resnet9", num_classes=2, in_chans=1, input_size=16, width=4), pipe)
    assert _compare(model, pipe, get_task("binary")) <= 1e-5


@pytest.mark.parametrize("task,tta", [(get_task("ordinal", head="coral"), False), (get_task("multilabel"), True),
                                      (get_task("regression", target_mean=40.0, target_std=12.0), False),
                                      (get_task("multitask", heads=(2, 3)), True), (get_task("binary"), True)],
                         ids=["coral", "multilabel-tta", "regression", "multitask-tta", "binary-tta"])
def test_every_task_head_is_in_the_graph(task, tta):
    torch.manual_seed(0)
    pipe = _pipeline(size=16)
    coral = task.head == "coral"
    model = create_model("resnet9", num_classes=1 if coral else task.num_outputs(4), in_chans=1, input_size=16,
                         width=4)
    if coral:
        attach_coral_head(model, get_model_card("resnet9").classifier, 4)
    model = _settle_batchnorm(model, pipe)
    for fmt, tol in (("onnx", 1e-5), ("torchscript", 1e-6)):
        assert _compare(model, pipe, task, tta, fmt=fmt) <= tol * (50 if task.regression else 1)  # values ~40


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_coral_export_equals_coral_probabilities(k):
    logits = torch.randn(64, k - 1, generator=torch.Generator().manual_seed(k)) * 3  # many rows not monotone
    assert torch.equal(coral_probabilities_export(logits), coral_probabilities(logits))


def test_cummin_has_no_onnx_operator_hence_the_loop():
    # if this starts to pass, coral_probabilities_export can go and the wrapper can call task.probabilities
    class Cummin(torch.nn.Module):
        def forward(self, x):
            return coral_probabilities(x)

    with pytest.raises(Exception, match="cummin"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter announces its end
        torch.onnx.export(Cummin(), (torch.randn(2, 3),), io.BytesIO(), dynamo=False, opset_version=17)


# --- a real run, end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A tiny trained binary run (with TTA, so the mirror average is in the graph) and six PNG files."""
    tmp = tmp_path_factory.mktemp("export")
    npz = make_npz(tmp / "toy.npz")
    cfg = fast_config(npz, epochs=2)
    cfg = replace(cfg, data=replace(cfg.data, cache=False), model=replace(cfg.model, width=4),
                  eval=replace(cfg.eval, tta=True, n_boot=200))
    folder = train(cfg, tmp / "run")
    files = []
    for i, img in enumerate(np.load(npz)["test_images"][:6]):
        files.append(tmp / f"im{i}.png")
        Image.fromarray(img).save(files[-1])
    return folder.path, files


def _read_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r["p_0"]), float(r["p_1"])] for r in rows]), [r["prediction"] for r in rows]


@pytest.mark.parametrize("fmt,engine,tol", [("onnx", "onnx", 1e-5), ("torchscript", "torchscript", 1e-6)])
def test_export_then_predict_reproduces_torch(toy_run, tmp_path, capsys, fmt, engine, tol):
    run, files = toy_run
    out = tmp_path / f"m{'.onnx' if fmt == 'onnx' else '.pt'}"
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
    assert "check: max |exported - torch|" in capsys.readouterr().out
    assert main(["predict", str(run), *map(str, files), "--out", str(tmp_path / "torch.csv")]) == 0
    assert main(["predict", "--engine", engine, str(out), *map(str, files), "--out", str(tmp_path / "x.csv")]) == 0
    p_torch, d_torch = _read_csv(tmp_path / "torch.csv")
    p_exp, d_exp = _read_csv(tmp_path / "x.csv")
    assert np.abs(p_torch - p_exp).max() <= tol and d_exp == d_torch
    sidecar = json.loads(Path(str(out) + ".json").read_text())
    assert sidecar["check"]["max_abs_diff"] <= tol and sidecar["check"]["n"] == 8


def test_sidecar_describes_the_run(toy_run):
    run, _ = toy_run
    r = export_run(run, check=False)
    assert r["model"] == run / "export" / "model.onnx" and r["sidecar"] == run / "export" / "model.onnx.json"
    assert r["check"] is None
    s = json.loads(r["sidecar"].read_text())
    status = json.loads((run / "status.json").read_text())
    ckpt_sha = status["sha256"]["checkpoints/best.safetensors"]
    assert s["format"] == "medclass-export-1" and s["model_format"] == "onnx" and s["model_file"] == "model.onnx"
    assert s["run"]["checkpoint_sha256"] == ckpt_sha and s["run"]["id"] == f"run@{ckpt_sha[:12]}"
    assert s["run"]["epoch"] == status["best_epoch"] and s["medclass_version"]
    assert s["classes"] == ["0", "1"] and s["task"]["name"] == "binary" and s["tta"] is True
    assert s["input"] == {"name": "image", "dtype": "uint8", "layout": "NHWC", "shape": ["batch", 16, 16, 1],
                          "size": 16, "channels": 1, "made_by": s["input"]["made_by"]}
    assert s["output"]["shape"] == ["batch", 2] and s["output"]["columns"] == ["0", "1"]
    assert s["preprocessing"] == json.loads((run / "preprocessing.json").read_text())
    val = json.loads((run / "metrics" / "val.json").read_text())
    assert s["threshold"] == val["threshold"] == 0.5
    assert [o["name"] for o in s["operating_points"]] == ["default", "youden", "high_sensitivity", "high_specificity"]
    assert [o["threshold"] for o in s["operating_points"]] == [o["threshold"] for o in val["operating_points"]]
    assert s["operating_points_from"] == "metrics/val.json"
    assert any("tta" in step for step in s["graph"])
    m = load_exported(run)  # a run folder: its export/model.onnx
    assert m.classes_ == ["0", "1"] and m.pipeline_ == InputPipeline.from_dict(s["preprocessing"])
    assert len(m.operating_points_) == 4 and m.threshold == 0.5 and m.tta


def test_operating_points_recomputed_from_val_predictions(toy_run, tmp_path):
    run, _ = toy_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export"))
    val = json.loads((copy / "metrics" / "val.json").read_text(encoding="utf-8"))
    expected = [o["threshold"] for o in val.pop("operating_points")]
    (copy / "metrics" / "val.json").write_text(json.dumps(val))
    s = json.loads(export_run(copy, check=False)["sidecar"].read_text())
    assert s["operating_points_from"] == "predictions/val.csv"
    assert [o["threshold"] for o in s["operating_points"]] == pytest.approx(expected, abs=1e-6)


# --- bad input, one clear line each -----------------------------------------------------------------


def test_unfinished_run_says_how_to_finish_it(toy_run, tmp_path, capsys):
    run, _ = toy_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    RunFolder(copy).write_status("interrupted", epochs_completed=1)
    with pytest.raises(RunFolderError, match=f"medclass train --resume {copy}"):
        export_run(copy)
    assert main(["export", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "has not finished training" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_missing_onnx_package_names_the_extra(toy_run, tmp_path, monkeypatch, missing):
    run, _ = toy_run
    monkeypatch.setitem(sys.modules, missing, None)  # `import onnx` now raises ImportError
    with pytest.raises(ConfigError, match=r'pip install "medclass\[export\]"'):
        export_run(run, out=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    assert export_run(run, fmt="torchscript", out=tmp_path / "m.pt", check=False)["model"].is_file()


def test_loading_without_onnxruntime_names_the_extra(toy_run, tmp_path, monkeypatch):
    run, _ = toy_run
    model = export_run(run, out=tmp_path / "m.onnx", check=False)["model"]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ConfigError, match=r'ONNX Runtime.*pip install "medclass\[export\]"'):
        load_exported(model)


def test_model_without_sidecar_or_with_another_sidecar(toy_run, tmp_path, capsys):
    run, files = toy_run
    model = export_run(run, out=tmp_path / "a" / "m.onnx", check=False)["model"]
    lone = tmp_path / "lone.onnx"
    shutil.copy(model, lone)
    with pytest.raises(CheckpointError, match="has no sidecar 'lone.onnx.json'"):
        load_exported(lone)
    assert main(["predict", "--engine", "onnx", str(lone), str(files[0])]) == 2
    assert "has no sidecar" in capsys.readouterr().err
    sidecar = Path(str(model) + ".json")
    s = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**s, "format": "medclass-export-0"}))
    with pytest.raises(CheckpointError, match="sidecar of format 'medclass-export-0'.*reads 'medclass-export-1'"):
        load_exported(model)
    sidecar.write_text(json.dumps({**s, "model_sha256": "0" * 64}))  # another export's sidecar
    with pytest.raises(CheckpointError, match="is not the model its sidecar"):
        load_exported(model)
    sidecar.write_text(json.dumps(s))
    with pytest.raises(ConfigError, match="was exported as onnx, not torchscript; run it with --engine onnx"):
        load_exported(model, engine="torchscript")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no exported model"):
        load_exported(tmp_path / "empty")
    with pytest.raises(ConfigError, match="must not end in .json"):
        export_run(run, out=tmp_path / "m.json")
    with pytest.raises(ConfigError, match="Did you mean 'onnx'"):
        export_run(run, fmt="onx")


# --- writing: atomic, and under the run folder's lock -------------------------------------------------


def test_failed_export_leaves_no_model_that_looks_complete(toy_run, tmp_path, monkeypatch):
    run, files = toy_run
    out = tmp_path / "m.onnx"
    export_run(run, out=out, check=False)
    before = out.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_mod, "export_module", boom)
    with pytest.raises(OSError):
        export_run(run, out=tmp_path / "new.onnx")
    assert list(tmp_path.glob("new*")) == [] and out.read_bytes() == before
    monkeypatch.undo()
    # killed between the model and its sidecar: the new model beside the old sidecar is refused, not run
    monkeypatch.setattr(export_mod, "atomic_write_json", boom)
    monkeypatch.setattr(export_mod, "OPSET", 16)  # a different model file
    with pytest.raises(OSError):
        export_run(run, out=out, check=False)
    assert out.read_bytes() != before and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(CheckpointError, match="is not the model its sidecar"):
        load_exported(out)


def test_export_into_the_run_folder_holds_its_lock(toy_run, tmp_path):
    run, _ = toy_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (copy / ".lock").write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(),
                                                "start": _start_time(other.pid), "purpose": "evaluate",
                                                "since": "now", "token": "another process"}))
        with pytest.raises(RunFolderError, match="is in use: process .* `evaluate`"):
            export_run(copy, check=False)
        assert not (copy / "export").exists()
        # outside the run folder nothing is written to it, so no lock is needed
        assert export_run(copy, out=tmp_path / "out" / "m.onnx", check=False)["model"].is_file()
    finally:
        other.kill()
        other.wait()
