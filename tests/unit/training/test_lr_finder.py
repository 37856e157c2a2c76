import numpy as np
import pytest
import torch
from torch import nn

from medclass.runs.diagnostics import lr_range_test
from medclass.tasks import get_task
from medclass.training import find_lr, plot_lr_range
from tests.conftest import fast_config


def test_range_test_on_toy_data_has_the_expected_shape_and_a_sane_suggestion(toy_npz):
    r = lr_range_test(fast_config(toy_npz), start=1e-7, end=10, steps=100)
    lrs = np.array(r.lrs)
    assert lrs[0] == pytest.approx(1e-7) and np.allclose(lrs[1:] / lrs[:-1], 1e8 ** (1 / 99))  # exponential ramp
    trend = np.array(r.trend)
    initial = trend[:10].mean()
    assert np.abs(trend[:10] - initial).max() < 0.25 * initial  # flat while the rate is tiny
    assert np.nanmin(trend) < 0.2 * initial  # then the loss falls far...
    i_min = int(np.nanargmin(trend))
    assert 20 < i_min  # ...after the flat start, not in it
    assert 1e-4 <= r.suggestion <= 1 and r.suggestion < r.min_loss_lr
    assert r.suggestion in r.lrs and r.min_loss_div10 == pytest.approx(r.min_loss_lr / 10)


def _mlp_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(200):
        x = torch.randn(32, 2, generator=g)
        batches.append((x, (x[:, 0] * x[:, 1] > 0).long()))
    return model, batches


def test_stops_when_the_loss_diverges_and_leaves_the_model_and_optimizer_alone(tmp_path):
    model, batches = _mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    r = find_lr(model, get_task("binary"), nn.CrossEntropyLoss(), opt, iter(batches), start=1e-5, end=1e3,
                steps=150, progress=lambda i, lr, loss: seen.append(lr))
    assert r.diverged and len(r.lrs) < 150 and seen == r.lrs
    assert r.smoothed[-1] > 4 * min(r.smoothed[:-1]) or not np.isfinite(r.losses[-1])
    assert 1e-3 <= r.suggestion <= 10
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert opt.param_groups[0]["lr"] == 0.01 and not opt.state  # the original optimiser never stepped
    png = plot_lr_range(r, tmp_path / "plots" / "lr.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _RecordingSGD(torch.optim.SGD):
    seen: list[list[float]] = []  # a class attribute: the range test's copy records here too

    def step(self, closure=None):
        _RecordingSGD.seen.append([g["lr"] for g in self.param_groups])
        return super().step(closure)


def test_groups_keep_their_ratio_and_bad_arguments_are_refused():
    model, batches = _mlp_problem()
    opt = _RecordingSGD([{"params": model[0].parameters(), "lr": 0.1}, {"params": model[2].parameters()}], lr=1.0)
    _RecordingSGD.seen.clear()
    r = find_lr(model, get_task("binary"), nn.CrossEntropyLoss(), opt, iter(batches), start=1e-4, end=1e-1, steps=10)
    assert len(r.lrs) == 10 and r.lrs[-1] == pytest.approx(0.1)
    backbone, head = np.array(_RecordingSGD.seen).T
    assert np.allclose(head, r.lrs) and np.allclose(backbone, 0.1 * head)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]  # the caller's optimiser is untouched
    with pytest.raises(ValueError, match="0 < start < end"):
        find_lr(model, get_task("binary"), nn.CrossEntropyLoss(), opt, iter(batches), start=1.0, end=0.1)
    with pytest.raises(ValueError, match="no batch"):
        find_lr(model, get_task("binary"), nn.CrossEntropyLoss(), opt, iter([]))
