import pytest
import torch
from torch import nn

from medclass.config import TrainConfig, replace
from medclass.models import load_weights
from medclass.run_folder import RunFolder
from medclass.runs.train import prepare_training, resume, train
from medclass.tasks import get_task
from medclass.training import Callback, TrainStep, amp_enabled, build_optimizer
from tests.conftest import fast_config


def test_amp_auto_means_cuda_only():
    assert amp_enabled("auto", "cuda") and amp_enabled("auto", torch.device("cuda", 1))
    assert not amp_enabled("auto", "cpu") and not amp_enabled("off", "cuda")
    with pytest.raises(ValueError, match="amp must be 'auto' or 'off'"):
        amp_enabled("bf16", "cpu")


def _steps(amp: str, grad_clip: float = 0.0, lr: float = 0.1, n: int = 3):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    task = get_task("binary")
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.0, lr=lr, weight_decay=0.0))
    step = TrainStep(model, task, nn.CrossEntropyLoss(), opt, grad_clip=grad_clip, amp=amp)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 2, (8,), generator=g)
    before = [p.detach().clone() for p in model.parameters()]
    losses = [step(x, y) for _ in range(n)]
    return step, losses, before, [p.detach() for p in model.parameters()]


def _distance(a, b):
    return float(torch.sqrt(sum(((x - y) ** 2).sum() for x, y in zip(a, b, strict=True))))


def test_amp_auto_on_cpu_changes_nothing():
    step, losses_auto, _, params_auto = _steps("auto")
    assert not step.amp and not step.scaler.is_enabled()
    assert not isinstance(step.autocast(), torch.autocast)
    _, losses_off, _, params_off = _steps("off")
    assert losses_auto == losses_off
    assert all(torch.equal(a, b) for a, b in zip(params_auto, params_off, strict=True))


def test_gradient_clipping_bounds_the_step():
    # plain SGD moves the weights by lr * grad: with the gradient norm clipped to 1e-3, by exactly 1e-3
    _, _, before, after = _steps("off", grad_clip=1e-3, lr=1.0, n=1)
    assert _distance(after, before) == pytest.approx(1e-3, rel=1e-4)
    _, _, before, after = _steps("off", grad_clip=0.0, lr=1.0, n=1)
    assert _distance(after, before) > 0.01  # the unclipped gradient is much larger


class _ScriptedValidation(Callback):
    """Replace validation with a fixed sequence of losses, to drive the plateau schedule."""

    def __init__(self, losses):
        self.losses = list(losses)

    def on_fit_start(self, trainer):
        it = iter(self.losses)
        trainer.validate = lambda: {"val_loss": next(it), "val_auc": 0.5, "val_acc": 0.5}


def test_plateau_schedule_steps_once_per_epoch_on_the_validation_loss(toy_npz, tmp_path):
    cfg = fast_config(toy_npz, epochs=5, schedule="plateau", plateau_patience=1, gamma=0.1, lr=0.01)
    setup = prepare_training(cfg, None, [_ScriptedValidation([1.0, 0.9, 0.95, 0.96, 0.5])])
    trainer = setup.trainer
    trainer.callbacks = [cb for cb in trainer.callbacks if type(cb).__name__ in ("_ScriptedValidation",)]
    history = trainer.fit()
    # lr during each epoch: it drops after the second epoch in a row without a lower validation loss
    assert [r["lr"] for r in history] == pytest.approx([0.01, 0.01, 0.01, 0.01, 0.001])


class _InterruptAt(Callback):
    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, batch, loss):
        if trainer.epoch == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def test_plateau_clipping_and_another_loss_resume_exactly(toy_npz, tmp_path):
    cfg = fast_config(toy_npz, epochs=6, schedule="plateau", plateau_patience=0, gamma=0.5, lr=1.0,
                      optimizer="nesterov", grad_clip=0.5, loss="bce", label_smoothing=0.1)
    cfg = replace(cfg, model=replace(cfg.model, dropout=0.2))
    a = train(cfg, tmp_path / "a")
    lrs = [float(r["lr"]) for r in a.read_history()]
    assert min(lrs) < lrs[0]  # the plateau schedule did act in this run
    # Interrupted in the third epoch, whose validation loss is above the best so far (the second epoch's
    # blew up): only a restored plateau state (best loss, bad epochs) lowers the rate after it, as here.
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", callbacks=[_InterruptAt(epoch=2, batch=1)])
    resume(tmp_path / "b")
    b = RunFolder(tmp_path / "b")
    wa, _ = load_weights(a.last_weights)
    wb, _ = load_weights(b.last_weights)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    timing = {"seconds", "val_seconds", "images_per_s", "data_share"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(a.read_history()) == strip(b.read_history())
