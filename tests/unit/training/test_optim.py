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


def test_step_schedule_drops_every_step_size_epochs():
    lrs = _lrs(TrainConfig(epochs=5, lr=1.0, schedule="step", step_size=2, gamma=0.5))
    assert lrs == pytest.approx([1.0] * 8 + [0.5] * 8 + [0.25] * 4)


@pytest.mark.parametrize("name,cls,extra", [
    ("sgd", torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),  # what "sgd" always meant
    ("momentum", torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", torch.optim.RMSprop, {}), ("adagrad", torch.optim.Adagrad, {}),
    ("adadelta", torch.optim.Adadelta, {}), ("adam", torch.optim.Adam, {}), ("adamw", torch.optim.AdamW, {}),
])
def test_optimizer_menu(name, cls, extra):
    opt = build_optimizer(torch.nn.Linear(2, 2), TrainConfig(optimizer=name, lr=0.3))
    assert type(opt) is cls and opt.defaults["lr"] == 0.3
    assert {k: opt.defaults[k] for k in extra} == extra


def test_plain_sgd_is_sgd_with_momentum_zero():
    model = torch.nn.Linear(3, 1, bias=False)
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.0, lr=0.1, weight_decay=0.0))
    assert opt.defaults["nesterov"] is False
    w0 = model.weight.detach().clone()
    for _ in range(2):  # with momentum the second step would be larger than lr * grad
        opt.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
    assert torch.allclose(model.weight, w0 - 2 * 0.1 * torch.ones(1, 3))


def _two_part_model():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(2, 2))
    model[0].bias.requires_grad_(False)  # a frozen parameter is left out
    return model, {"backbone": list(model[:2].parameters()), "head": list(model[3].parameters())}


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "multistep", "step", "constant"])
def test_discriminative_groups_keep_their_ratio_under_every_schedule(schedule):
    model, groups = _two_part_model()
    cfg = TrainConfig(lr=0.5, backbone_lr_factor=0.1, weight_decay=0.01, schedule=schedule, epochs=3)
    opt = build_optimizer(model, cfg, groups)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in opt.param_groups for p in g["params"]} == trainable
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert by_param[id(model[0].weight)] == (0.05, 0.01) and by_param[id(model[1].weight)] == (0.05, 0.0)
    assert by_param[id(model[3].weight)] == (0.5, 0.01) and by_param[id(model[3].bias)] == (0.5, 0.0)
    sched = build_scheduler(opt, cfg, 4)
    for _ in range(11):
        head, backbone = opt.param_groups[0]["lr"], opt.param_groups[-1]["lr"]
        assert backbone == pytest.approx(0.1 * head, rel=1e-9)
        opt.step()
        sched.step()


def test_nothing_to_train_is_a_config_error():
    from medclass.errors import ConfigError

    model = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="every layer is frozen"):
        build_optimizer(model, TrainConfig())


def test_plateau_divides_by_gamma_when_the_validation_loss_stalls_and_resumes():
    from medclass.training import is_epoch_scheduler

    cfg = TrainConfig(lr=1.0, schedule="plateau", gamma=0.1, plateau_patience=1)
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=4)
    other = build_optimizer(torch.nn.Linear(2, 2), TrainConfig())
    assert is_epoch_scheduler(sched) and not is_epoch_scheduler(build_scheduler(other, TrainConfig(), 4))
    lrs = []
    for val_loss in (1.0, 0.9, 0.95, 0.97):
        sched.step(val_loss)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.1])  # two epochs without improvement, patience 1
    buf = io.BytesIO()
    torch.save({"o": opt.state_dict(), "s": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = build_optimizer(model, cfg)
    sched2 = build_scheduler(opt2, cfg, 4)
    opt2.load_state_dict(state["o"])
    sched2.load_state_dict(state["s"])
    for s in (sched, sched2):
        s.step(0.99)
        s.step(0.98)
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"] == pytest.approx(0.01)


def test_new_settings_are_validated():
    from medclass.config import build_config
    from medclass.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        build_config(overrides={"train": {"optimizer": "momentum", "momentum": 0.0, "loss": "hinge",
                                          "label_smoothing": 0.1, "schedule": "plateau", "gamma": 1.0,
                                          "grad_clip": -1, "amp": "bf16", "backbone_lr_factor": 0}})
    msg = str(e.value)
    assert "train.optimizer=momentum needs train.momentum > 0" in msg
    assert "train.label_smoothing applies to cross-entropy and bce only, not train.loss=hinge" in msg
    assert "train.gamma must be < 1 with train.schedule=plateau" in msg
    assert "train.grad_clip must be >= 0" in msg and "train.amp must be one of auto, off" in msg
    assert "train.backbone_lr_factor must be > 0" in msg


def test_every_declared_optimiser_and_schedule_has_one_builder():
    from medclass.config import OPTIMIZERS, SCHEDULES
    from medclass.training.optim import OPTIMIZER_BUILDERS, SCHEDULE_BUILDERS

    assert tuple(OPTIMIZER_BUILDERS) == OPTIMIZERS and tuple(SCHEDULE_BUILDERS) == SCHEDULES
    model = torch.nn.Linear(2, 2)
    for name in OPTIMIZERS:
        assert isinstance(build_optimizer(model, TrainConfig(optimizer=name)), torch.optim.Optimizer)
    for name in SCHEDULES:
        assert build_scheduler(build_optimizer(model, TrainConfig()), TrainConfig(schedule=name), 4) is not None


def test_a_name_declared_without_a_builder_fails_at_import():
    """The names live in medclass.config (the choices of train.optimizer/schedule/loss); the training modules'
    tables are checked against them when imported, so a name added on one side only cannot reach a run."""
    import subprocess
    import sys

    code = ("import medclass.config as c\n"
            "declared = {'OPTIMIZERS': (*c.OPTIMIZERS, 'lion'), 'LOSSES': c.LOSSES[:-1]}\n"
            "for key, names in declared.items():\n"
            "    old = getattr(c, key)\n"
            "    setattr(c, key, names)\n"
            "    try:\n        import medclass.training\n    except ImportError as e:\n        print(e)\n"
            "    setattr(c, key, old)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "OPTIMIZER_BUILDERS must have exactly the names the configuration declares" in out.stdout
    assert "missing: lion; not declared: none" in out.stdout
    assert "LOSS_BUILDERS must have exactly" in out.stdout and "missing: none; not declared: huber" in out.stdout
