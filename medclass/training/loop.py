"""The training loop: epochs of optimisation steps, validation after each, callbacks around both.

The model is not the loop: a network only defines ``forward``; the loss comes from
:func:`~medclass.training.losses.build_loss` and the output activation from the task; this
:class:`Trainer` owns epochs, steps, the weight average and validation, and hands everything else
(checkpoints, early stopping, progress bars) to callbacks.

One optimisation step (:class:`TrainStep`, also used by the sanity check and the learning-rate range
test) is: forward and loss, under float16 autocast when mixed precision is on; backward, through a
``GradScaler`` when it is on; gradient-norm clipping (on unscaled gradients); the optimiser step.
Mixed precision (``train.amp="auto"``) is used on CUDA only: on a CPU, float16/bfloat16 autocast makes
the convolutions of our small models many times slower (25-75x measured for bfloat16), so ``auto`` does
nothing there and a CPU run is bit-for-bit the float32 run. Validation always runs in float32.

The learning-rate scheduler is stepped after every optimisation step, except ``plateau``, stepped
once per epoch with the validation loss, before the epoch's callbacks save the resume state.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..data.loader import BatchLoader
from ..tasks import Task
from .callbacks import Callback
from .divergence import DivergenceGuard
from .inference import predict_proba
from .optim import is_epoch_scheduler
from .seeding import derive_seed, epoch_generator

log = logging.getLogger(__name__)

__all__ = ["Trainer", "TrainStep", "amp_enabled"]


def amp_enabled(mode: str, device: torch.device | str) -> bool:
    """Whether ``train.amp=mode`` turns mixed precision on for ``device``: ``auto`` on CUDA only."""
    if mode not in ("auto", "off"):
        raise ValueError(f"amp must be 'auto' or 'off', got {mode!r}")
    return mode == "auto" and torch.device(device).type == "cuda"


class TrainStep:
    """One optimisation step of ``model`` on a batch: loss, backward, clip, step (see the module docstring).

    Args:
        model, task, loss_fn, optimizer: what trains, on which targets, with which loss and optimiser.
        grad_clip: clip the global L2 norm of the gradients to this value; 0 disables it.
        amp: ``auto`` (float16 autocast and loss scaling on CUDA) or ``off``.
    """

    def __init__(self, model: nn.Module, task: Task, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, *,
                 grad_clip: float = 0.0, amp: str = "off"):
        self.model, self.task, self.loss_fn, self.optimizer = model, task, loss_fn, optimizer
        self.grad_clip = grad_clip
        self.device = next(model.parameters()).device
        self.amp = amp_enabled(amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)

    def autocast(self):
        """The forward pass's precision context: float16 autocast with amp, else nothing at all."""
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch (forward pass, with its graph)."""
        with self.autocast():
            return self.loss_fn(self.model(x), self.task.target(y))

    def update(self, loss: torch.Tensor) -> None:
        """Backward from ``loss``, clip, and step the optimiser."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> float:
        loss = self.loss(x, y)
        self.update(loss)
        return loss.item()


class Trainer:
    """Train ``model`` on ``train_loader`` for ``epochs``, validating on ``val_loader`` after each epoch.

    Each epoch's record (``history``) holds: epoch, train_loss, val_loss, the task's validation
    metrics (:meth:`~medclass.tasks.Task.validation_metrics`: val_auc and val_acc; regression val_mae and
    val_r2), lr (of the first
    parameter group, during the epoch), seconds (of training steps), val_seconds, images_per_s and data_share
    (the fraction of step time spent drawing and augmenting batches).

    Args:
        loss_fn: the training loss (:func:`~medclass.training.losses.build_loss`); default: the task's.
        eval_loss_fn: the validation loss, usually the same loss unweighted and unsmoothed; default: the
            task's plain loss. ``plateau`` schedules watch it.
        grad_clip: clip the gradients' global norm to this value; 0 disables it.
        amp: mixed precision, ``auto`` (CUDA only) or ``off``.
    """

    def __init__(self, model: nn.Module, task: Task, optimizer: torch.optim.Optimizer, scheduler,
                 train_loader: BatchLoader, val_loader: BatchLoader, *, epochs: int, seed: int,
                 loss_fn: nn.Module | None = None, eval_loss_fn: nn.Module | None = None, grad_clip: float = 0.0,
                 amp: str = "off", ema_decay: float = 0.0, tta: bool = False, threshold: float = 0.5,
                 callbacks: Sequence[Callback] = ()):
        self.model, self.task = model, task
        self.optimizer, self.scheduler = optimizer, scheduler
        self.train_loader, self.val_loader = train_loader, val_loader
        self.epochs, self.seed = epochs, seed
        device = next(model.parameters()).device
        self.loss_fn = (loss_fn if loss_fn is not None else task.loss()).to(device)
        self.eval_loss_fn = (eval_loss_fn if eval_loss_fn is not None else task.loss()).to(device)
        self.train_step = TrainStep(model, task, self.loss_fn, optimizer, grad_clip=grad_clip, amp=amp)
        self.tta, self.threshold = tta, threshold
        self.callbacks = list(callbacks)
        self.ema = None
        if ema_decay:
            self.ema = torch.optim.swa_utils.AveragedModel(
                model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema_decay), use_buffers=True)
        self.divergence = DivergenceGuard()
        self.epoch = 0  # epochs completed
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.should_stop = False

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated and saved: the moving average when enabled."""
        return self.ema.module if self.ema is not None else self.model

    def fit(self) -> list[dict[str, Any]]:
        for cb in self.callbacks:
            cb.on_fit_start(self)
        while self.epoch < self.epochs and not self.should_stop:
            record = self._train_epoch(self.epoch)
            t_val = time.perf_counter()
            record.update(self.validate())
            record["val_seconds"] = round(time.perf_counter() - t_val, 3)
            if is_epoch_scheduler(self.scheduler):
                self.scheduler.step(record["val_loss"])
            self.epoch += 1
            self.history.append(record)
            log.info("epoch %d/%d train_loss %.4f %s (%.1fs)", record["epoch"], self.epochs, record["train_loss"],
                     " ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_") and k != "val_seconds"),
                     record["seconds"])
            for cb in self.callbacks:
                cb.on_epoch_end(self, record)
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return self.history

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        for cb in self.callbacks:
            cb.on_epoch_start(self, epoch)
        torch.manual_seed(derive_seed(self.seed, "epoch", epoch, "torch"))  # dropout masks
        gen = epoch_generator(self.seed, epoch)
        self.model.train()
        loss_sum, n, data_time = 0.0, 0, 0.0
        t0 = time.perf_counter()
        t_data = t0
        for b, (x, y) in enumerate(self.train_loader.batches(gen)):
            data_time += time.perf_counter() - t_data
            loss = self.train_step.loss(x, y)
            self.divergence.check(loss.item(), epoch, b, self.optimizer.param_groups[0]["lr"])
            self.train_step.update(loss)
            if not is_epoch_scheduler(self.scheduler):
                self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            self.step += 1
            loss_sum += loss.item() * len(y)
            n += len(y)
            for cb in self.callbacks:
                cb.on_batch_end(self, b, loss.item())
            t_data = time.perf_counter()
        seconds = time.perf_counter() - t0
        return {"epoch": epoch + 1, "train_loss": loss_sum / max(n, 1), "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 1) if seconds else float("nan"),
                "data_share": round(data_time / seconds, 4) if seconds else float("nan")}

    def validate(self) -> dict[str, float]:
        probs, labels, loss = predict_proba(self.eval_model, self.val_loader.batches(), self.task, tta=self.tta,
                                            loss_fn=self.eval_loss_fn)
        return {"val_loss": loss, **self.task.validation_metrics(labels, probs, self.threshold)}

    # --- resume -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.train_step.scaler.state_dict(),
            "history": copy.deepcopy(self.history),
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
            "should_stop": self.should_stop,
            "divergence": self.divergence.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.train_step.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])
        self.should_stop = bool(state.get("should_stop", False))
        self.divergence.load_state_dict(state.get("divergence", {}))
        saved = state.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in saved:
                cb.load_state_dict(saved[type(cb).__name__])
