import io

import pytest
import torch

from medclass.config import TrainConfig
from medclass.training import build_optimizer, build_scheduler


def _lrs(cfg, steps_per_epoch=4):
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    out = []
    for _ in range(cfg.epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_multistep_drops_at_epoch_boundaries():
    lrs = _lrs(TrainConfig(epochs=4, lr=1.0, schedule="multistep", milestones=(0.5, 0.75), gamma=0.1))
    assert lrs[:8] == [1.0] * 8
    assert lrs[8:12] == pytest.approx([0.1] * 4) and lrs[12:] == pytest.approx([0.01] * 4)


def test_cosine_and_onecycle_shapes():
    cos = _lrs(TrainConfig(epochs=5, lr=1.0, schedule="cosine", warmup=0.2))
    assert cos[0] < cos[3] and max(cos) == pytest.approx(1.0) and cos[-1] < 0.05
    oc = _lrs(TrainConfig(epochs=5, lr=1.0, schedule="onecycle", warmup=0.2))
    assert max(oc) == pytest.approx(1.0, rel=1e-3) and oc[0] < 0.1 and oc[-1] < 1e-3
    assert _lrs(TrainConfig(epochs=2, lr=0.3, schedule="constant")) == [0.3] * 8


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "multistep", "constant"])
def test_scheduler_state_loads_weights_only_and_resumes(schedule):
    cfg = TrainConfig(epochs=3, lr=0.5, schedule=schedule)
    ref = _lrs(cfg)
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, 4)
    for _ in range(5):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save({"o": opt.state_dict(), "s": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = build_optimizer(model, cfg)
    sched2 = build_scheduler(opt2, cfg, 4)
    opt2.load_state_dict(state["o"])
    sched2.load_state_dict(state["s"])
    rest = []
    for _ in range(7):
        rest.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step()
    assert rest == pytest.approx(ref[5:])


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    opt = build_optimizer(model, TrainConfig(weight_decay=0.1, optimizer="sgd"))
    decays = {p.ndim: g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays == {4: 0.1, 1: 0.0}
