"""Checks to run before a long training run, built from the same configuration as the run itself.

- :func:`sanity_check`: can the model overfit one or two mini-batches to about zero loss? (``medclass
  sanity``; see :mod:`medclass.training.sanity`.)
- :func:`lr_range_test`: the learning-rate range test (``medclass lr-find``; see
  :mod:`medclass.training.lr_finder`).

Both assemble the data, model (with its pretrained weights and transfer strategy), loss and optimiser
exactly as :func:`medclass.runs.train` does, through the same setup code, then train copies for a
few hundred steps. Nothing is written to disk.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator

import torch

from ..config import AugmentConfig, RunConfig, replace, validate
from ..data.download import ProgressFn
from ..training import (
    LRRangeResult,
    SanityResult,
    derive_seed,
    epoch_generator,
    find_lr,
    overfit_batches,
)
from ..training.loop import Trainer
from .train import prepare_training

log = logging.getLogger(__name__)

__all__ = ["sanity_check", "lr_range_test"]

def sanity_check(cfg: RunConfig, n_batches: int = 1, steps: int = 200, threshold: float = 0.05, *,
                 progress: Callable[[int, float], None] | None = None,
                 download_progress: ProgressFn | None = None) -> SanityResult:
    """Overfit ``n_batches`` training batches of ``cfg`` for ``steps`` steps; pass if the loss ends below ``threshold``.

    The run's model, loss, optimiser and learning rate are used, with everything that keeps a loss above
    zero switched off: no augmentation, dropout, weight decay, label smoothing or weight average, and a
    constant learning rate (``train.lr``). The batches are the first of a shuffled epoch, so they mix
    classes as training batches do.

    Example:
        >>> r = sanity_check(build_config(overrides={"data": {"dataset": "breastmnist"}}))  # doctest: +SKIP
        >>> r.passed, r.start_loss, r.end_loss  # doctest: +SKIP
        (True, 0.69, 0.003)
    """
    if n_batches < 1:
        raise ValueError(f"sanity_check: n_batches must be >= 1, got {n_batches}.")
    t = cfg.train
    cfg = replace(cfg, model=replace(cfg.model, dropout=0.0),
                  train=replace(t, schedule="constant", weight_decay=0.0, label_smoothing=0.0, ema=0.0,
                                augment=AugmentConfig()))
    trainer = _trainer(cfg, download_progress)
    batches = list(itertools.islice(trainer.train_loader.batches(epoch_generator(cfg.seed, 0)), n_batches))
    if len(batches) < n_batches:
        log.warning("sanity check: the training split holds only %d batch(es) of %d images", len(batches),
                    t.batch_size)
    torch.manual_seed(derive_seed(cfg.seed, "sanity"))
    return overfit_batches(trainer.model, trainer.task, trainer.loss_fn, trainer.optimizer, batches, steps=steps,
                           threshold=threshold, grad_clip=t.grad_clip, amp=t.amp, progress=progress)


def lr_range_test(cfg: RunConfig, start: float = 1e-7, end: float = 10.0, steps: int = 100, *,
                  progress: Callable[[int, float, float], None] | None = None,
                  download_progress: ProgressFn | None = None) -> LRRangeResult:
    """The learning-rate range test on ``cfg``'s training data, model, loss and optimiser.

    Training batches are drawn as in a run (shuffled, augmented as configured), epoch after epoch until
    ``steps`` steps; regularisation stays as configured. ``train.lr`` and ``train.schedule`` are not used,
    except that with discriminative fine-tuning the backbone keeps ``train.backbone_lr_factor`` times the
    head's rate.

    Example:
        >>> r = lr_range_test(build_config(overrides={"data": {"dataset": "breastmnist"}}))  # doctest: +SKIP
        >>> r.suggestion  # doctest: +SKIP
        0.0052
    """
    # a constant schedule leaves each group's rate as built (OneCycle would rewrite it at construction)
    cfg = replace(cfg, train=replace(cfg.train, schedule="constant"))
    trainer = _trainer(cfg, download_progress)
    return find_lr(trainer.model, trainer.task, trainer.loss_fn, trainer.optimizer,
                   _endless_batches(trainer, cfg.seed), start=start, end=end, steps=steps,
                   grad_clip=cfg.train.grad_clip, amp=cfg.train.amp, progress=progress)


def _trainer(cfg: RunConfig, download_progress: ProgressFn | None) -> Trainer:
    validate(cfg)
    return prepare_training(cfg, None, download_progress=download_progress).trainer


def _endless_batches(trainer: Trainer, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for epoch in itertools.count():
        torch.manual_seed(derive_seed(seed, "epoch", epoch, "torch"))  # dropout masks, as in training
        yield from trainer.train_loader.batches(epoch_generator(seed, epoch))
