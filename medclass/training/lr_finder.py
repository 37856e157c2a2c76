"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017;
popularised by fastai's ``lr_find``): train for a short while with a learning rate that grows
exponentially from tiny to huge, and read a good rate off the loss curve.

The procedure, as fastai does it: one optimisation step per training batch, the rate going from
``start`` to ``end`` geometrically over ``steps`` steps; the loss is smoothed by a bias-corrected
exponential moving average (``smooth``, 0.98), and the test stops once the smoothed loss exceeds
``diverge`` (4) times the best seen, or is not finite.

Two readings of the curve are reported, both taken on ``trend``: a 5-point running median of the raw
losses (against single-batch spikes), then a Savitzky-Golay fit (a local quadratic over about a tenth
of the steps, ``scipy.signal.savgol_filter``); steps after the loss has exploded are left out. The fit
is centred, so it has no lag, unlike the online moving average, which trails the rate by about
``1 / (1 - smooth)`` = 50 steps (the better part of two decades of learning rate in a 100-step test)
and would point too far right:

- ``suggestion``: the rate where the loss falls fastest, the steepest negative slope of the loss
  against ``log10(lr)`` before the minimum (Smith's "where the loss decreases the fastest").
- ``min_loss_lr / 10``: one tenth of the rate at the lowest point of the trend, the other common rule
  (:attr:`LRRangeResult.min_loss_div10`).

The test trains deep copies of the model, optimiser and loss, so nothing has to be restored; with
several parameter groups (discriminative fine-tuning) every group's rate keeps its ratio to the largest.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure  # no pyplot: no global state, no display, any backend
from scipy.signal import medfilt, savgol_filter
from torch import nn

from ..tasks import Task
from .loop import TrainStep

log = logging.getLogger(__name__)

__all__ = ["LRRangeResult", "find_lr", "plot_lr_range"]


@dataclass
class LRRangeResult:
    """One range test: learning rates tried, the raw and smoothed losses, and the suggested rates.

    ``lrs[i]`` is the (largest group's) rate of step ``i`` and ``losses[i]`` the loss of that step's batch
    before its update; ``smoothed`` is the online moving average that decides when to stop, ``trend``
    the centred fit the suggestions are read from. ``diverged`` says the test stopped early because the
    loss exploded.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    trend: list[float]
    suggestion: float
    min_loss_lr: float
    diverged: bool

    @property
    def min_loss_div10(self) -> float:
        """The other rule of thumb: a tenth of the rate at the lowest point of the trend."""
        return self.min_loss_lr / 10


def find_lr(model: nn.Module, task: Task, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
            batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, start: float = 1e-7, end: float = 10.0,
            steps: int = 100, smooth: float = 0.98, diverge: float = 4.0, grad_clip: float = 0.0, amp: str = "off",
            progress: Callable[[int, float, float], None] | None = None) -> LRRangeResult:
    """Run the learning-rate range test and suggest a rate.

    Args:
        model, task, loss_fn, optimizer: what a real run would train; copies are trained (see module doc).
        batches: training batches, at least ``steps`` of them (cycle the epochs when one is shorter).
        start, end: first and last learning rate of the exponential ramp.
        steps: number of optimisation steps (rates tried).
        smooth: moving-average factor of the loss (0 keeps the raw loss).
        diverge: stop when the smoothed loss exceeds this multiple of the best smoothed loss.
        grad_clip, amp: as in :class:`~medclass.training.TrainStep`.
        progress: ``fn(step, lr, loss)`` after every step.

    Raises:
        ValueError: ``start``/``end``/``steps``/``smooth`` out of range, or no batch at all.
    """
    if not 0 < start < end:
        raise ValueError(f"find_lr needs 0 < start < end, got start={start!r}, end={end!r}.")
    if steps < 2:
        raise ValueError(f"find_lr needs steps >= 2, got {steps}.")
    if not 0 <= smooth < 1:
        raise ValueError(f"find_lr needs 0 <= smooth < 1, got {smooth!r}.")
    model, optimizer, loss_fn = copy.deepcopy((model, optimizer, loss_fn))
    train_step = TrainStep(model, task, loss_fn, optimizer, grad_clip=grad_clip, amp=amp)
    top = max(g["lr"] for g in optimizer.param_groups)
    scales = [g["lr"] / top for g in optimizer.param_groups]
    ratio = (end / start) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, diverged = 0.0, math.inf, False
    model.train()
    it = iter(batches)
    for i in range(steps):
        lr = start * ratio ** i
        for g, s in zip(optimizer.param_groups, scales, strict=True):
            g["lr"] = lr * s
        try:
            x, y = next(it)
        except StopIteration:
            log.warning("lr range test: only %d batches for %d steps; the test stopped early", i, steps)
            break
        loss = train_step.loss(x, y)
        value = loss.item()
        if not math.isfinite(value):
            diverged = True
            break
        avg = smooth * avg + (1 - smooth) * value
        s_loss = avg / (1 - smooth ** (i + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(s_loss)
        if progress is not None:
            progress(i + 1, lr, value)
        if s_loss > diverge * best:
            diverged = True
            break
        best = min(best, s_loss)
        train_step.update(loss)
    if not lrs:
        raise ValueError("find_lr: no batch to train on (or the loss was not finite at the first step).")
    trend, window = _trend(np.array(losses), diverge)
    suggestion, min_lr = _suggest(np.array(lrs), trend, window)
    log.info("lr range test: %d steps, suggestion %.3g, min-loss lr %.3g%s", len(lrs), suggestion, min_lr,
             " (stopped: loss diverged)" if diverged else "")
    return LRRangeResult(lrs, losses, smoothed, trend.tolist(), suggestion, min_lr, diverged)


def _trend(losses: np.ndarray, diverge: float) -> tuple[np.ndarray, int]:
    """The losses' centred trend and the fit's window (see the module docstring).

    A 5-point running median (against single-batch spikes), then a Savitzky-Golay quadratic over about a
    tenth of the steps. Steps after the loss first exceeds ``diverge`` times its starting level are left
    out (NaN): a fit through an explosion bends the points before it.
    """
    # scipy's filters rather than hand-written ones: they handle the ends with local fits too

    x = losses.astype(float)
    start_level = float(np.median(x[: max(len(x) // 10, 1)]))
    over = np.flatnonzero(x > diverge * start_level)
    n = int(over[0]) if len(over) else len(x)
    out = np.full(len(x), np.nan)
    window = max(5, (n // 10) | 1)  # odd, about a tenth of the steps
    if n < window:
        out[:n] = x[:n]
        return out, 1
    out[:n] = savgol_filter(medfilt(x[:n], 5), window, 2)
    return out, window


def _suggest(lrs: np.ndarray, trend: np.ndarray, window: int) -> tuple[float, float]:
    """``(steepest-descent lr, lr of the trend's lowest point)``.

    The rates grow geometrically, so the slope against step number is the slope against ``log10(lr)``
    times a constant. The last half-window before the minimum is not searched: there the fit reaches
    past the minimum (or the explosion that ended the test) and its slope is not to be trusted.
    """
    i_min = int(np.nanargmin(trend))
    min_lr = float(lrs[i_min])
    skip = max(len(lrs) // 10, 1)  # the first steps hardly train and their slope is noise
    last = i_min - window // 2
    if last - skip < 2:
        return min_lr / 10, min_lr
    slope = np.gradient(trend[: last + 1])
    return float(lrs[skip + int(np.argmin(slope[skip:]))]), min_lr


def plot_lr_range(result: LRRangeResult, path: str | os.PathLike) -> Path:
    """Draw the loss against the learning rate (log axis) with both suggestions; write ``path`` (PNG, PDF, SVG)."""
    path = Path(path)
    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="loss per step")
    ax.plot(result.lrs, result.trend, color="C0", lw=2, label="trend (Savitzky-Golay)")
    ax.axvline(result.suggestion, color="C3", ls="-", lw=1.2, label=f"steepest descent: {result.suggestion:.2g}")
    ax.axvline(result.min_loss_div10, color="C2", ls="--", lw=1.2,
               label=f"min-loss lr / 10: {result.min_loss_div10:.2g}")
    ax.set_xscale("log")
    # the raw loss explodes at the end; keep the interesting part of the curve in view
    ax.set_ylim(min(0.0, min(result.losses)), 1.3 * float(np.nanmax(result.trend[: len(result.trend) // 2 + 1])))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
