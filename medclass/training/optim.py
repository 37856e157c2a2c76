"""Optimisers and learning-rate schedules from :class:`~medclass.config.TrainConfig`.

Optimisers (all ``torch.optim``): ``sgd`` honours ``train.momentum`` and ``train.nesterov`` (defaults 0.9
and Nesterov, which is what ``sgd`` meant before the other names existed, so old run folders resume
unchanged; ``momentum=0`` gives plain SGD); ``momentum`` is heavy-ball momentum and ``nesterov`` Nesterov
momentum, both at ``train.momentum``; ``rmsprop``, ``adagrad``, ``adadelta``, ``adam`` and ``adamw`` use
PyTorch's defaults apart from the learning rate and weight decay. Weight decay never applies to 1-D
parameters (biases, normalisation scales), the usual practice.

Parameter groups: by default every trainable parameter trains at ``train.lr``. With transfer learning
(:func:`medclass.models.transfer.apply_transfer`) the caller passes ``{"head": [...], "backbone": [...]}``
and the backbone trains at ``train.lr * train.backbone_lr_factor`` (discriminative fine-tuning, about
1/10 of the head's rate). Schedules multiply each group's own rate, so the ratio holds throughout.

Schedules: ``constant``, ``step``, ``multistep``, ``cosine`` (with linear warm-up) and ``onecycle`` are
stepped once per optimisation step; ``plateau`` (``ReduceLROnPlateau`` on the validation loss, "divide by
10 when the validation loss stops improving") is stepped once per epoch with that loss, which
:class:`~medclass.training.Trainer` does when :func:`is_epoch_scheduler` says so. Every scheduler's
``state_dict`` holds only numbers and lists, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..config import OPTIMIZERS, SCHEDULES, TrainConfig, check_table_keys
from ..errors import ConfigError, did_you_mean

__all__ = ["OPTIMIZER_BUILDERS", "SCHEDULE_BUILDERS", "build_optimizer", "build_scheduler", "is_epoch_scheduler"]


def build_optimizer(model: nn.Module, cfg: TrainConfig,
                    groups: Mapping[str, Sequence[nn.Parameter]] | None = None) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` over ``model``'s trainable parameters.

    Args:
        model: its parameters with ``requires_grad`` are optimised (when ``groups`` is not given).
        cfg: reads optimizer, lr, weight_decay, momentum, nesterov, backbone_lr_factor.
        groups: ``{"head": params, "backbone": params}`` from ``apply_transfer``; the backbone group's
            learning rate is ``cfg.lr * cfg.backbone_lr_factor``. Frozen parameters are skipped.

    Raises:
        ConfigError: nothing is left to train.
    """
    if groups is None:
        sets: list[tuple[Sequence[nn.Parameter], float]] = [(list(model.parameters()), 1.0)]
    else:
        unknown = set(groups) - {"head", "backbone"}
        if unknown:
            raise ValueError(f"build_optimizer: groups must be 'head' and 'backbone', got {sorted(unknown)}.")
        sets = [(groups.get("head", ()), 1.0), (groups.get("backbone", ()), cfg.backbone_lr_factor)]
    param_groups: list[dict[str, Any]] = []
    for params, scale in sets:
        params = [p for p in params if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for ps, wd in ((decay, cfg.weight_decay), (no_decay, 0.0)):
            if ps:
                param_groups.append({"params": ps, "weight_decay": wd, "lr": cfg.lr * scale})
    if not param_groups:
        raise ConfigError("No parameter is left to train: every layer is frozen. Check model.transfer and "
                          "model.trainable_blocks.")
    builder = OPTIMIZER_BUILDERS.get(cfg.optimizer)
    if builder is None:
        raise ConfigError(f"Unknown train.optimizer {cfg.optimizer!r}.{did_you_mean(cfg.optimizer, OPTIMIZERS)} "
                          f"Known: {', '.join(OPTIMIZERS)}.")
    return builder(param_groups, cfg)


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """The ``cfg.schedule`` scheduler. All but ``plateau`` are stepped once per optimisation step.

    Each parameter group keeps its own peak rate (the ``lr`` it was built with), so discriminative
    learning rates keep their ratio.
    """
    builder = SCHEDULE_BUILDERS.get(cfg.schedule)
    if builder is None:
        raise ConfigError(f"Unknown train.schedule {cfg.schedule!r}.{did_you_mean(cfg.schedule, SCHEDULES)} "
                          f"Known: {', '.join(SCHEDULES)}.")
    return builder(opt, cfg, steps_per_epoch)


def is_epoch_scheduler(scheduler: Any) -> bool:
    """True for schedulers stepped once per epoch with the validation loss (``plateau``)."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


class _Constant:
    def __call__(self, step: int) -> float:
        return 1.0


class _Step:
    def __init__(self, every: int, gamma: float):
        self.every, self.gamma = max(every, 1), gamma

    def __call__(self, step: int) -> float:
        return self.gamma ** (step // self.every)


class _MultiStep:
    def __init__(self, bounds: list[int], gamma: float):
        self.bounds, self.gamma = bounds, gamma

    def __call__(self, step: int) -> float:
        return self.gamma ** sum(step >= b for b in self.bounds)


class _WarmupCosine:
    def __init__(self, warmup: int, total: int):
        self.warmup, self.total = warmup, max(total, 1)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        t = (step - self.warmup) / max(self.total - self.warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


# --- one builder per name (the names are declared in medclass.config) -------------------------------------------

ParamGroups = list[dict[str, Any]]


def _sgd(groups: ParamGroups, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)


OPTIMIZER_BUILDERS: dict[str, Callable[[ParamGroups, TrainConfig], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "momentum": lambda groups, cfg: torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=False),
    "nesterov": lambda groups, cfg: torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True),
    "rmsprop": lambda groups, cfg: torch.optim.RMSprop(groups, lr=cfg.lr),
    "adagrad": lambda groups, cfg: torch.optim.Adagrad(groups, lr=cfg.lr),
    "adadelta": lambda groups, cfg: torch.optim.Adadelta(groups, lr=cfg.lr),
    "adam": lambda groups, cfg: torch.optim.Adam(groups, lr=cfg.lr),
    "adamw": lambda groups, cfg: torch.optim.AdamW(groups, lr=cfg.lr),
}


def _onecycle(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    # OneCycleLR divides by (pct_start * total - 1): a run of a few steps (one epoch of a small dataset) needs
    # the warm-up to span more than one step, else it fails with ZeroDivisionError
    pct = min(max(cfg.warmup, 1e-3, 1.01 / max(total, 1)), 0.99)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                               total_steps=max(total, 1), pct_start=pct)


def _multistep(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    # Milestones fall on epoch boundaries, as in the MedMNIST reference (epochs 50 and 75 of 100).
    bounds = [round(m * cfg.epochs) * steps_per_epoch for m in cfg.milestones]
    return torch.optim.lr_scheduler.LambdaLR(opt, _MultiStep(bounds, cfg.gamma))


def _cosine(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(opt, _WarmupCosine(round(cfg.warmup * total), total))


SCHEDULE_BUILDERS: dict[str, Callable[[torch.optim.Optimizer, TrainConfig, int], Any]] = {
    "constant": lambda opt, cfg, steps: torch.optim.lr_scheduler.LambdaLR(opt, _Constant()),
    "step": lambda opt, cfg, steps: torch.optim.lr_scheduler.LambdaLR(opt, _Step(cfg.step_size * steps, cfg.gamma)),
    "multistep": _multistep,
    "plateau": lambda opt, cfg, steps: torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=cfg.gamma, patience=cfg.plateau_patience),
    "cosine": _cosine,
    "onecycle": _onecycle,
}
check_table_keys(OPTIMIZER_BUILDERS, OPTIMIZERS, "medclass.training.optim.OPTIMIZER_BUILDERS")
check_table_keys(SCHEDULE_BUILDERS, SCHEDULES, "medclass.training.optim.SCHEDULE_BUILDERS")
