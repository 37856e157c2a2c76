"""Small behaviours plugged into the training loop, one concern each.

A callback overrides any of the hooks below. Stateful callbacks (early stopping, best checkpoint)
expose ``state_dict`` / ``load_state_dict`` so a resumed run continues with their memory intact.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["Callback", "EarlyStopping", "BestCheckpoint"]


class Callback:
    def on_fit_start(self, trainer) -> None: ...
    def on_epoch_start(self, trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer, batch: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class _Monitor:
    def __init__(self, monitor: str, mode: str):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.mode = monitor, mode

    def value(self, record: dict[str, Any]) -> float:
        if self.monitor not in record:
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, which the epoch record lacks. "
                           f"Available: {', '.join(record)}.")
        return float(record[self.monitor])

    def improves(self, new: float, best: float | None) -> bool:
        if math.isnan(new):
            return False
        return best is None or (new > best if self.mode == "max" else new < best)


class EarlyStopping(Callback, _Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (0 disables it)."""

    def __init__(self, patience: int, monitor: str = "val_auc", mode: str = "max"):
        _Monitor.__init__(self, monitor, mode)
        self.patience = patience
        self.best: float | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, trainer, record):
        if not self.patience:
            return
        v = self.value(record)
        if self.improves(v, self.best):
            self.best, self.bad_epochs = v, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                log.info("early stopping: %s has not improved for %d epochs (best %.4f)",
                         self.monitor, self.patience, self.best)
                trainer.should_stop = True

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class BestCheckpoint(Callback, _Monitor):
    """Call ``save(trainer, record)`` whenever the epoch becomes the one to keep; remember which epoch.

    With ``tolerance=0`` that is each new best of ``monitor`` (the first epoch reaching the highest value is
    kept). With ``tolerance=k > 0`` and a standard error in the record (``<monitor>_se``), an epoch whose value
    is within ``k`` standard errors of the best so far counts as tied with it, and the latest tied epoch is
    kept. A validation AUC that has saturated (0.997 on PneumoniaMNIST from the second epoch on) otherwise
    picks one of many statistically equal epochs by noise, often a mid-schedule one taken at the peak learning
    rate whose probabilities are badly calibrated; the later epochs of an annealed schedule are the settled
    ones. The result equals the rule applied to the whole history: the latest epoch within ``k`` standard
    errors (of the best epoch's AUC) of the best.

    With ``keep="last"`` every epoch is saved, so the kept checkpoint is the final epoch's, whatever the
    monitor says: for a refit on train+val, whose validation split is training data and cannot choose.

    With ``max_loss`` (the validation loss of uniform probabilities: knowing nothing), an epoch whose validation
    loss is above it is *degenerate*: its probabilities are worse than no model however well it ranks, as in a
    3D run whose batch-norm statistics swung mid-schedule (validation AUC 0.90, validation loss 6.0, every
    volume called positive, accuracy 0.22). Such an epoch is kept only while no sound epoch has been (the best
    of them, provisionally); the first sound epoch replaces it, and degenerate epochs never set the best value
    that later epochs are compared with. Their numbers are in ``passed_over``.
    """

    def __init__(self, save: Callable[[Any, dict[str, Any]], os.PathLike | None], monitor: str = "val_auc",
                 mode: str = "max", keep: str = "best", tolerance: float = 0.0, max_loss: float | None = None):
        _Monitor.__init__(self, monitor, mode)
        if keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
        if not tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
        self.save, self.keep, self.tolerance = save, keep, float(tolerance)
        self.best: float | None = None  # the kept epoch's value
        self.best_epoch: int | None = None
        self.top: float | None = None  # the best value so far and its standard error (tolerance > 0)
        self.top_se: float = float("nan")
        self.max_loss = max_loss
        self.provisional = False  # the kept epoch is degenerate (no sound epoch yet)
        self.passed_over: list[int] = []  # degenerate epochs that the monitor alone would have kept

    def _degenerate(self, record: dict[str, Any]) -> bool:
        loss = record.get("val_loss")
        return (self.max_loss is not None and self.keep == "best" and loss is not None and not math.isnan(loss)
                and loss > self.max_loss)

    def _tied_or_better(self, v: float, record: dict[str, Any]) -> bool:
        if math.isnan(v):
            return False
        if self.improves(v, self.top):
            self.top, self.top_se = v, float(record.get(f"{self.monitor}_se", float("nan")))
            return True
        margin = self.tolerance * self.top_se
        if math.isnan(margin):  # no standard error in the record: only a new best is kept
            return False
        return v >= self.top - margin if self.mode == "max" else v <= self.top + margin

    def on_epoch_end(self, trainer, record):
        v, epoch = self.value(record), int(record["epoch"])
        if self._degenerate(record):
            if self.top is not None and self.improves(v, self.top):  # the monitor alone would have kept it
                self.passed_over.append(epoch)
                log.info("epoch %d: validation loss %.3f is worse than uniform probabilities (%.3f), so its "
                         "higher %s does not make it the kept epoch", epoch, record["val_loss"], self.max_loss,
                         self.monitor)
            if (self.best_epoch is None or self.provisional) and self.improves(v, self.best):
                self.best, self.best_epoch, self.provisional = v, epoch, True
                self.save(trainer, record)
            record["best_epoch"] = self.best_epoch
            return
        if self.provisional:  # the first sound epoch replaces a degenerate one, whatever their values
            self.best = self.best_epoch = self.top = None
            self.top_se, self.provisional = float("nan"), False
        if self.tolerance > 0 and self.keep == "best":
            keep = self._tied_or_better(v, record)
        else:
            keep = self.keep == "last" or self.improves(v, self.best)
        if keep:
            self.best, self.best_epoch = v, epoch
            self.save(trainer, record)
        record["best_epoch"] = self.best_epoch

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "top": self.top, "top_se": self.top_se,
                "provisional": self.provisional, "passed_over": list(self.passed_over)}

    def load_state_dict(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.top, self.top_se = state.get("top", self.best), state.get("top_se", float("nan"))
        self.provisional = bool(state.get("provisional", False))
        self.passed_over = list(state.get("passed_over", []))

