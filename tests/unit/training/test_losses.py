import pytest
import torch
from torch import nn

from medclass.config import TrainConfig
from medclass.errors import ConfigError
from medclass.tasks import get_task
from medclass.training import build_loss

BINARY, MULTICLASS, MULTILABEL = get_task("binary"), get_task("multiclass"), get_task("multilabel")


def _data(n=32, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, requires_grad=True), torch.randint(0, k, (n,), generator=g)


def _grad(loss_fn, logits, target):
    logits = logits.detach().requires_grad_(True)
    loss = loss_fn(logits, target)
    loss.backward()
    return loss.detach(), logits.grad


@pytest.mark.parametrize("weights,smoothing", [(None, 0.0), (torch.tensor([0.3, 2.0]), 0.0), (None, 0.2)])
def test_binary_bce_on_the_logit_difference_is_two_class_cross_entropy(weights, smoothing):
    logits, y = _data()
    cfg = TrainConfig(loss="bce", label_smoothing=smoothing)
    bce, g_bce = _grad(build_loss(BINARY, cfg, weights), logits, y)
    ce, g_ce = _grad(nn.CrossEntropyLoss(weight=weights, label_smoothing=smoothing), logits, y)
    assert torch.allclose(bce, ce, atol=1e-6) and torch.allclose(g_bce, g_ce, atol=1e-6)


def test_auto_is_the_tasks_loss_and_masked_bce_is_exact_without_missing_labels():
    logits, y = _data(k=3)
    w = torch.tensor([1.0, 2.0, 0.5])
    auto = build_loss(MULTICLASS, TrainConfig(label_smoothing=0.1), w)
    assert isinstance(auto, nn.CrossEntropyLoss) and auto.label_smoothing == 0.1 and torch.equal(auto.weight, w)
    target = (torch.rand(32, 3, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    pw = torch.tensor([3.0, 1.0, 0.2])
    ours, g_ours = _grad(build_loss(MULTILABEL, TrainConfig(), pw), logits, target)
    ref, g_ref = _grad(nn.BCEWithLogitsLoss(pos_weight=pw), logits, target)
    assert torch.equal(ours, ref) and torch.equal(g_ours, g_ref)  # bit for bit: default results do not change


@pytest.mark.parametrize("name", ["bce", "hinge", "mse"])
def test_multilabel_missing_labels_are_left_out(name):
    logits, _ = _data(n=8, k=3)
    g = torch.Generator().manual_seed(2)
    target = (torch.rand(8, 3, generator=g) > 0.5).float()
    target[0, 1] = target[3, 2] = target[5, 0] = -1
    known = target >= 0
    pw = torch.tensor([2.0, 1.0, 0.5])
    loss_fn = build_loss(MULTILABEL, TrainConfig(loss=name), pw)
    loss, grad = _grad(loss_fn, logits, target)
    assert torch.all(grad[~known] == 0)  # an unknown label pushes nothing
    # the same as the mean over the known entries alone, whatever the logits of the unknown ones
    scrambled = logits.detach().clone()
    scrambled[~known] = 100.0
    assert torch.allclose(loss_fn(scrambled, target), loss, atol=1e-6)
    t = target.clamp(min=0)
    x = logits.detach()
    per = {"bce": nn.functional.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none"),
           "hinge": torch.relu(1 - (2 * t - 1) * x) * torch.where(t > 0, pw, 1.0),
           "mse": (torch.sigmoid(x) - t) ** 2 * torch.where(t > 0, pw, 1.0)}[name]
    assert torch.allclose(loss, per[known].mean(), atol=1e-6)
    all_missing = torch.full_like(target, -1)
    assert loss_fn(logits, all_missing).item() == 0.0


def test_hinge_and_mse_match_their_definitions():
    logits, y = _data(k=4)
    assert torch.equal(build_loss(MULTICLASS, TrainConfig(loss="hinge"))(logits, y), nn.MultiMarginLoss()(logits, y))
    margin = torch.zeros(4, 4)
    margin[torch.arange(4), torch.arange(4)] = 0.5  # the right class half a unit above the others: not enough
    # (three wrong classes, each 1 - 0.5 short of the margin) / four classes
    assert build_loss(MULTICLASS, TrainConfig(loss="hinge"))(margin, torch.arange(4)).item() == pytest.approx(0.375)
    assert build_loss(MULTICLASS, TrainConfig(loss="hinge"))(2 * margin, torch.arange(4)).item() == 0.0
    mse = build_loss(MULTICLASS, TrainConfig(loss="mse"))(logits, y)
    ref = nn.MSELoss()(torch.softmax(logits, 1), nn.functional.one_hot(y, 4).float())
    assert torch.allclose(mse, ref)
    # class weights: a weighted mean over images, as cross-entropy's
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])
    weighted = build_loss(MULTICLASS, TrainConfig(loss="mse"), w)(logits, y)
    zero = y == 0
    per = ((torch.softmax(logits, 1) - nn.functional.one_hot(y, 4)) ** 2).mean(1)
    assert torch.allclose(weighted, per[zero].mean())


def test_losses_that_do_not_fit_the_task_are_refused():
    with pytest.raises(ConfigError, match="train.loss=cross-entropy needs one label per image.*multilabel"):
        build_loss(MULTILABEL, TrainConfig(loss="cross-entropy"))
    with pytest.raises(ConfigError, match="train.loss=bce applies to binary and multilabel tasks, not multiclass"):
        build_loss(MULTICLASS, TrainConfig(loss="bce"))


@pytest.mark.parametrize("task,name", [(t, n) for t in (BINARY, MULTICLASS, MULTILABEL)
                                       for n in ("auto", "cross-entropy", "bce", "hinge", "mse")
                                       if not (t.multilabel and n == "cross-entropy")
                                       and not (t is MULTICLASS and n == "bce")])
def test_every_loss_trains_a_linear_model(task, name):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    k = 2 if task is BINARY else 3
    if task.multilabel:
        y = (x[:, :k] > 0).long()
        y[::7, 0] = -1  # some missing labels
    else:
        y = x[:, :k].argmax(1)
    torch.manual_seed(0)
    model = nn.Linear(5, k)
    loss_fn = build_loss(task, TrainConfig(loss=name), task.balanced_weights(y.numpy(), k))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = loss_fn(model(x), task.target(y))
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
