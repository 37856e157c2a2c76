"""Stop a diverging run: a loss that is not finite, or that has risen far above where training started.

A learning rate far too high (``train.lr=1000``) sends the loss to 1e13 within an epoch while the run would
otherwise go on to "complete" with a chance-level model. :class:`DivergenceGuard` watches every batch's loss:

- a NaN or infinite loss stops at once;
- otherwise the loss of the run's first batch, computed before any step, is its *start* (what the
  initialisation gives: about ln K for K classes); ``patience`` consecutive batches above ``factor`` times the
  start (and above ``floor``) stop the run. A rate far too high ruins the weights within a few steps, so later
  batches cannot be the reference.

It raises :class:`~medclass.errors.DivergenceError` before the optimiser steps on that batch, so the last
completed epoch on disk is untouched and the run can be resumed from it with a lower learning rate. Its state
(the start) is saved with the resume state, so a resumed run judges divergence against the same start.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import DivergenceError

__all__ = ["DivergenceGuard"]


class DivergenceGuard:
    """Raise :class:`DivergenceError` when the training loss is not finite or far above its start.

    Args:
        factor: how many times the start loss counts as diverged (100: cross-entropy 0.69 -> 69).
        patience: consecutive batches above the limit before stopping (one noisy batch is not divergence).
        warmup: how many of the first batches make the start (their mean; 1: the first batch only).
        floor: the limit is never below this, so a start near zero (an easy task) does not make a small
            loss look like divergence.
    """

    def __init__(self, factor: float = 100.0, patience: int = 3, warmup: int = 1, floor: float = 10.0):
        self.factor, self.patience, self.warmup, self.floor = factor, patience, warmup, floor
        self.first: list[float] = []
        self.above = 0

    @property
    def start(self) -> float | None:
        return sum(self.first) / len(self.first) if self.first else None

    def check(self, loss: float, epoch: int, batch: int, lr: float) -> None:
        where = f"epoch {epoch + 1}, batch {batch + 1}"
        if not math.isfinite(loss):
            raise DivergenceError(f"Training diverged at {where}: the loss became {loss}. {self._advice(lr)}")
        if len(self.first) < self.warmup:
            self.first.append(loss)
            return
        limit = max(self.factor * self.start, self.floor)
        self.above = self.above + 1 if loss > limit else 0
        if self.above >= self.patience:
            raise DivergenceError(f"Training diverged at {where}: the loss is {loss:.3g}, more than {self.factor:g} "
                                  f"times where it started ({self.start:.3g}) for {self.patience} batches in a row. "
                                  f"{self._advice(lr)}")

    @staticmethod
    def _advice(lr: float) -> str:
        return (f"The learning rate ({lr:.3g}) is probably far too high: lower it (about 10x, or find one with "
                f"`medclass lr-find`), or set train.grad_clip.")

    def state_dict(self) -> dict[str, Any]:
        return {"first": list(self.first), "above": self.above}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first = [float(v) for v in state.get("first", [])]
        self.above = int(state.get("above", 0))
