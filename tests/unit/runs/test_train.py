import json

import numpy as np
import pytest
import torch

from medclass.config import replace
from medclass.errors import ConfigError, RunFolderError
from medclass.models import load_weights
from medclass.run_folder import read_predictions
from medclass.runs import RunFolder, evaluate_run, load_run, resume, train
from medclass.training import Callback
from tests.conftest import fast_config


class _InterruptAt(Callback):
    """Simulate Ctrl-C in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, batch, loss):
        if trainer.epoch == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def test_train_writes_a_complete_run_folder(toy_npz, tmp_path):
    folder = train(fast_config(toy_npz), tmp_path / "run")
    for f in ("config.yaml", "environment.json", "status.json", "dataset.json", "history.csv",
              "checkpoints/best.safetensors", "checkpoints/last.safetensors", "checkpoints/last_state.pt",
              "metrics/val.json", "predictions/val.csv"):
        assert (folder.path / f).is_file(), f
    st = folder.read_status()
    assert st["state"] == "complete" and st["epochs_completed"] == 3 and 1 <= st["best_epoch"] <= 3
    hist = folder.read_history()
    assert [int(r["epoch"]) for r in hist] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_auc", "val_auc_se", "val_acc", "images_per_s", "data_share"} <= set(hist[0])
    # the kept epoch: the latest whose val AUC is within one standard error of the highest (checkpoint_tolerance=1)
    top = max(hist, key=lambda r: float(r["val_auc"]))
    tied = [int(r["epoch"]) for r in hist if float(r["val_auc"]) >= float(top["val_auc"]) - float(top["val_auc_se"])]
    assert st["best_epoch"] == max(tied) and st["highest_val_auc"] == pytest.approx(float(top["val_auc"]))
    env = json.loads((folder.path / "environment.json").read_text())
    assert env["seed"] == 0 and env["device"] == "cpu" and env["versions"]["torch"]
    _, meta = load_weights(folder.best_weights)
    assert meta["epoch"] == st["best_epoch"] and meta["model"] == "resnet9" and meta["labels"] == ["0", "1"]
    assert meta["tolerance_se"] == 1.0  # the rule travels with the weights, for evaluate and the report
    assert not (tmp_path / "run" / "metrics" / "test.json").exists()  # the test split is not touched


def test_same_seed_same_weights_and_resume_after_interrupt_is_exact(toy_npz, tmp_path):
    cfg = fast_config(toy_npz, epochs=4, augment={"hflip": True, "rotate": 10, "translate": 0.1})
    cfg = replace(cfg, model=replace(cfg.model, dropout=0.2))
    a = train(cfg, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", callbacks=[_InterruptAt(epoch=2, batch=1)])
    b = RunFolder(tmp_path / "b")
    assert b.read_status()["state"] == "interrupted" and b.read_status()["epochs_completed"] == 2
    with pytest.raises(RunFolderError, match="has not finished training.*--resume"):
        load_run(b.path)
    resume(b.path)
    for name in ("last.safetensors", "best.safetensors"):
        wa, _ = load_weights(a.checkpoints / name)
        wb, _ = load_weights(b.checkpoints / name)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name
    timing = {"seconds", "val_seconds", "images_per_s", "data_share"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(a.read_history()) == strip(b.read_history())


def test_existing_folder_refused_unless_overwrite(toy_npz, tmp_path):
    cfg = fast_config(toy_npz, epochs=1)
    train(cfg, tmp_path / "r")
    with pytest.raises(RunFolderError, match="already exists. Use --resume to continue it, --overwrite"):
        train(cfg, tmp_path / "r")
    train(cfg, tmp_path / "r", overwrite=True)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    with pytest.raises(RunFolderError, match="not a medclass run folder"):
        train(cfg, other, overwrite=True)
    assert (other / "thesis.tex").exists()


def test_unwritable_output_and_bad_data_leave_nothing(toy_npz, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(RunFolderError, match="Cannot write to output folder .* not a writable folder"):
        train(fast_config(toy_npz), blocker / "run")
    with pytest.raises(ConfigError, match="Unknown dataset"):
        train(fast_config("breastmnsit"), tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_resume_errors(toy_npz, tmp_path):
    with pytest.raises(RunFolderError, match="does not exist"):
        resume(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunFolderError, match="is not a medclass run folder .* nothing to resume"):
        resume(tmp_path / "plain")
    done = train(fast_config(toy_npz, epochs=1), tmp_path / "done")
    with pytest.raises(RunFolderError, match="already complete"):
        resume(done.path)


def test_evaluate_matches_sklearn_on_saved_predictions(toy_npz, tmp_path):
    from sklearn.metrics import accuracy_score, roc_auc_score

    folder = train(fast_config(toy_npz, epochs=4), tmp_path / "r")
    m = evaluate_run(folder.path, "test")
    saved = json.loads(folder.metrics("test").read_text())
    assert saved["auc"] == m["auc"] and saved["checkpoint"]["chosen_by"] == "val_auc"
    y, p, _ = read_predictions(folder.predictions("test"))
    assert len(y) == m["n"] == 32
    assert m["auc"] == pytest.approx(roc_auc_score(y, p[:, 1]), abs=1e-6)
    assert m["acc"] == pytest.approx(accuracy_score(y, p[:, 1] > 0.5), abs=1e-9)
    for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "confusion_matrix"):
        assert k in m
    assert m["auc"] > 0.9  # the toy task is easy


def test_predict_proba_converts_size_and_channels(toy_npz, tmp_path):
    from PIL import Image

    folder = train(fast_config(toy_npz, epochs=3), tmp_path / "r")
    model = load_run(folder.path)
    ds = np.load(toy_npz)
    imgs = ds["test_images"][:4]  # (4, 16, 16) uint8
    direct = model.predict_proba(imgs)
    assert direct.shape == (4, 2) and np.allclose(direct.sum(1), 1, atol=1e-5)
    # the same images, upscaled 4x, in colour, as PNG files: converted back the way training data looks
    paths = []
    for i, im in enumerate(imgs):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.stack([im] * 3, -1)).resize((64, 64), Image.Resampling.NEAREST).save(p)
        paths.append(p)
    from_files = model.predict_proba(paths)
    assert from_files.shape == (4, 2)
    assert (from_files.argmax(1) == direct.argmax(1)).all()
    assert model.predict(paths).tolist() == model.decide(from_files).tolist()


def test_predict_refuses_bad_input(toy_npz, tmp_path):
    from medclass.errors import DataError

    model = load_run(train(fast_config(toy_npz, epochs=1), tmp_path / "r").path)
    with pytest.raises(DataError, match="must hold uint8"):
        model.predict_proba(np.zeros((2, 16, 16), np.float32))
    with pytest.raises(DataError, match="does not exist"):
        model.predict_proba([tmp_path / "missing.png"])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png' could not be read"):
        model.predict_proba([tmp_path / "broken.png"])
    with pytest.raises(DataError, match="No images"):
        model.predict_proba([])


def test_corrupted_best_checkpoint_is_a_clear_error(toy_npz, tmp_path):
    from medclass.errors import CheckpointError

    folder = train(fast_config(toy_npz, epochs=1), tmp_path / "r")
    data = folder.best_weights.read_bytes()
    folder.best_weights.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="best.safetensors' is corrupted or truncated"):
        load_run(folder.path)
    folder.last_state.write_bytes(b"junk")
    folder.write_status("interrupted")
    with pytest.raises(CheckpointError, match="last_state.pt' is corrupted or truncated"):
        resume(folder.path)


def test_imagenet_weights_use_imagenet_statistics_unless_set():
    from medclass.config import build_config
    from medclass.runs.train import _input_statistics

    base = {"model": {"name": "resnet18", "pretrained": "imagenet"}}
    cfg = build_config(overrides=base)
    assert _input_statistics(cfg, 3) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    mean, std = _input_statistics(cfg, 1)  # grey input: the first convolution sums the RGB filters
    assert mean[0] == pytest.approx(0.449) and std[0] == pytest.approx(0.226)
    own = build_config(overrides={**base, "data": {"mean": [0.3], "std": [0.2]}})
    assert _input_statistics(own, 1) == ((0.3,), (0.2,))
    assert _input_statistics(build_config(), 1) == ((0.5,), (0.5,))
