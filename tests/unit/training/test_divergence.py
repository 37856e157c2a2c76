"""A diverging run stops with one clear line and resumes from its last good epoch at a lower learning rate."""

from __future__ import annotations

import json
import math

import pytest
import torch

from medclass.cli.main import main
from medclass.errors import DivergenceError
from medclass.models import load_weights
from medclass.run_folder import RunFolder
from medclass.training.divergence import DivergenceGuard


def test_guard_stops_on_nan_and_on_a_loss_far_above_its_start():
    g = DivergenceGuard(factor=100, patience=3, warmup=2, floor=1.0)
    g.check(0.7, 0, 0, 1e-3)
    g.check(0.69, 0, 1, 1e-3)
    for b, loss in enumerate([0.5, 80.0, 90.0, 0.4, 75.0, 0.3]):  # never 3 in a row above 69.5
        g.check(loss, 0, b + 2, 1e-3)
    g.check(100.0, 1, 0, 1e-3)
    g.check(200.0, 1, 1, 1e-3)
    with pytest.raises(DivergenceError, match=r"epoch 2, batch 3: the loss is 1e\+13, more than 100 times where it "
                                              r"started \(0.695\) for 3 batches in a row"):
        g.check(1e13, 1, 2, 1e-3)
    with pytest.raises(DivergenceError, match="the loss became nan.*learning rate \\(1e\\+03\\)"):
        DivergenceGuard().check(math.nan, 0, 0, 1000.0)
    restored = DivergenceGuard()
    restored.load_state_dict(g.state_dict())
    assert restored.start == g.start


def test_lr_1000_stops_with_one_line_and_resumes_at_a_lower_rate(toy_npz, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--dataset", str(toy_npz), "--set", "model.width=4", "--batch-size", "16", "--quiet"]
    assert main(["train", *common, "--epochs", "4", "--lr", "1000", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: Training diverged at epoch")
    st = RunFolder(run).read_status()
    assert st["state"] == "failed" and st["diverged"] is True
    if st["epochs_completed"] == 0:  # diverged inside the first epoch: nothing to resume, as the message said
        assert "start again with a lower train.lr" in err
        return
    assert f"medclass train --resume {run} --lr 1e+02" in err
    assert main(["train", "--resume", str(run), "--lr", "0.003", "--quiet"]) == 0
    st = RunFolder(run).read_status()
    assert st["state"] == "complete" and st["lr_changes"][0]["to"] == 0.003
    assert "lr: 0.003" in (run / "config.yaml").read_text()
    state, _ = load_weights(run / "checkpoints" / "last.safetensors")
    assert all(torch.isfinite(t.float()).all() for t in state.values())


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "plateau"])
def test_resume_at_a_lower_rate_scales_the_schedule(toy_npz, tmp_path, schedule):
    """The schedule keeps its shape: each later epoch trains at the uninterrupted run's rate times the ratio."""
    from medclass.runs.train import resume, train
    from tests.conftest import fast_config
    from tests.unit.training.test_loop import _InterruptAt

    cfg = fast_config(toy_npz, epochs=4, lr=0.004, schedule=schedule)
    a = train(cfg, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", callbacks=[_InterruptAt(epoch=2, batch=0)])
    b = resume(tmp_path / "b", lr=0.002)
    lr_a = [float(r["lr"]) for r in a.read_history()]
    lr_b = [float(r["lr"]) for r in b.read_history()]
    assert lr_b[:2] == lr_a[:2] and lr_b[2:] == pytest.approx([v / 2 for v in lr_a[2:]], rel=1e-4)
    assert json.loads((tmp_path / "b" / "status.json").read_text())["lr_changes"] == [
        {"after_epoch": 2, "from": 0.004, "to": 0.002}]
