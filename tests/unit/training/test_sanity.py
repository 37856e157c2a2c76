import pytest
import torch
from torch import nn

from medclass.tasks import get_task
from medclass.training import overfit_batches

BINARY = get_task("binary")


def _batch(labels: str, n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] > 0).long() if labels == "real" else torch.randint(0, 2, (n,), generator=g)
    return x, y


def _check(labels: str, lr: float = 0.5, steps: int = 200):
    torch.manual_seed(0)
    model = nn.Linear(2, 2)  # a linear model: it separates real labels, it cannot memorise 64 random ones
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return model, overfit_batches(model, BINARY, nn.CrossEntropyLoss(), opt, [_batch(labels)], steps=steps)


def test_passes_with_learnable_labels_and_leaves_the_model_alone():
    model, r = _check("real")
    assert model.weight.grad is None  # the original was never trained
    assert r.passed and r.end_loss < 0.05 < r.start_loss and r.batch_accuracy == 1.0 and not r.advice
    assert r.steps_to_threshold is not None and r.curve()[0] == (1, r.losses[0])
    # it stops once the loss has stayed at or below the threshold for three rounds, not after all 200 steps
    assert r.stopped_early and len(r.losses) == r.steps_to_threshold + 2 < 200
    assert all(loss <= 0.05 for loss in r.losses[-3:])


def test_settle_zero_runs_every_step():
    model = nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    r = overfit_batches(model, BINARY, nn.CrossEntropyLoss(), opt, [_batch("real")], steps=60, settle=0)
    assert len(r.losses) == 60 and not r.stopped_early and r.passed


def test_fails_when_the_labels_are_noise_for_a_small_model():
    _, r = _check("random")
    assert not r.passed and r.end_loss > 0.3 and r.batch_accuracy < 0.9
    assert any("labels" in a for a in r.advice) and any("too small" in a for a in r.advice)


def test_advice_for_a_learning_rate_too_low_or_too_high():
    _, low = _check("real", lr=1e-7)
    assert not low.passed and "too low" in low.advice[0]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.SGD(model.parameters(), lr=1e4)
    high = overfit_batches(model, BINARY, nn.CrossEntropyLoss(), opt, [_batch("real")], steps=50)
    assert not high.passed and "too high" in high.advice[0]


def test_two_batches_alternate():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    r = overfit_batches(model, BINARY, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1.0),
                        [_batch("real", 32, 0), _batch("real", 32, 1)], steps=200)
    assert r.n_batches == 2 and r.n_images == 64 and r.passed
    with pytest.raises(ValueError, match="at least one batch"):
        overfit_batches(model, BINARY, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()), [])
