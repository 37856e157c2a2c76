"""Optimisers and per-step learning-rate schedules from :class:`~medclass.config.TrainConfig`."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import TrainConfig

__all__ = ["build_optimizer", "build_scheduler"]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and normalisation parameters (1-D tensors), the usual practice.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A scheduler stepped once per optimisation step. Its ``state_dict`` is all a resume needs."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                   pct_start=max(cfg.warmup, 1e-3))
    if cfg.schedule == "multistep":
        # Milestones fall on epoch boundaries, as in the MedMNIST reference (epochs 50 and 75 of 100).
        bounds = [round(m * cfg.epochs) * steps_per_epoch for m in cfg.milestones]
        return torch.optim.lr_scheduler.LambdaLR(opt, _MultiStep(bounds, cfg.gamma))
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, _WarmupCosine(round(cfg.warmup * total), total))
    return torch.optim.lr_scheduler.LambdaLR(opt, _Constant())


class _Constant:
    def __call__(self, step: int) -> float:
        return 1.0


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
