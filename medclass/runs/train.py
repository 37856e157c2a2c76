"""Train a model into a run folder, or resume one: the function behind ``medclass train``.

Order of work, so that bad input fails before anything is written: validate the configuration,
check the output folder, load (or download) the data, build the model; only then create the run
folder, write the resolved configuration and environment, and train. Each epoch writes the history,
the last weights and the resume state; the best weights by validation AUC are kept separately. The
test split is never loaded here: it is scored later, once, by :func:`medclass.runs.evaluate.evaluate_run`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig, config_from_dict, config_to_dict, load_yaml, replace, validate
from ..data.build import build_dataset
from ..data.datasets import ImageDataset
from ..data.download import ProgressFn
from ..data.loader import BatchLoader
from ..errors import ConfigError, DataError, RunFolderError
from ..models import create_model, get_model_card
from ..tasks import attach_coral_head, task_from_meta
from ..training import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    Trainer,
    build_loss,
    build_optimizer,
    build_scheduler,
    load_state,
    save_state,
    save_weights,
    seed_everything,
)
from ..transforms import BatchAugment, Normalizer, build_normalizer
from ..utils.io import atomic_write_json, atomic_write_text, atomic_write_yaml
from .environment import collect_environment, resolve_device
from .folder import RunFolder
from .predictions import write_predictions

log = logging.getLogger(__name__)

__all__ = ["train", "resume", "build_model", "model_metadata", "TrainingSetup"]


def model_metadata(cfg: RunConfig, ds: ImageDataset, norm: Normalizer | None = None) -> dict[str, Any]:
    """What a checkpoint records so that it alone can rebuild the model and prepare its input."""
    norm = norm or Normalizer("fixed", cfg.data.mean, cfg.data.std)
    return {
        "format": "medclass-weights-1",
        "model": cfg.model.name,
        "model_kwargs": {"width": cfg.model.width, "drop_rate": cfg.model.dropout},
        "num_classes": ds.num_classes,
        "in_chans": ds.channels,
        "input_size": ds.size,
        "task": ds.task,
        "head": cfg.model.head,
        **({"task_heads": list(ds.facts["heads"]), "head_names": list(ds.facts["head_names"])}
           if ds.task == "multitask" else {}),
        **(_target_scale(ds.split("train").labels) if ds.task == "regression" else {}),
        "labels": list(ds.labels),
        "positive_label": ds.positive_label,
        "mean": list(norm.mean),
        "std": list(norm.std),
        "normalize": norm.to_meta(),
        "dataset": ds.name,
        "config": config_to_dict(cfg),
    }


def _target_scale(values) -> dict[str, float]:
    """Mean and sd of the training targets (regression): the network learns the standardised value."""
    v = np.asarray(values, dtype=float)
    sd = float(v.std())
    if not np.isfinite(sd) or sd == 0:
        raise DataError(f"Every training value of the regression target is {v[0]:g}: there is nothing to learn. "
                        f"Check the label column.")
    return {"target_mean": float(v.mean()), "target_std": sd}


def build_model(meta: dict[str, Any]) -> torch.nn.Module:
    """The network a checkpoint's metadata describes, with the task's head (untrained)."""
    task = task_from_meta(meta)
    coral = task.head == "coral"
    model = create_model(meta["model"], num_classes=1 if coral else task.num_outputs(meta["num_classes"]),
                         in_chans=meta["in_chans"], input_size=meta["input_size"], **meta["model_kwargs"])
    if coral:
        attach_coral_head(model, get_model_card(meta["model"]).classifier, meta["num_classes"])
    return model


@dataclass
class TrainingSetup:
    """Everything :func:`train` and :func:`resume` assemble before the loop starts."""

    cfg: RunConfig
    dataset: ImageDataset
    device: torch.device
    meta: dict[str, Any]
    trainer: Trainer


def _setup(cfg: RunConfig, folder: RunFolder, extra_callbacks: Sequence[Callback],
           progress: ProgressFn | None, *, load_initial_weights: bool = True,
           decode_progress: ProgressFn | None = None, resuming: bool = False) -> TrainingSetup:
    t = cfg.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    device = resolve_device(t.device)
    # a resumed run reuses its saved split.csv (own images), so its splits cannot drift
    ds = build_dataset(cfg.data, progress=progress, decode_progress=decode_progress,
                       run_dir=folder.path if resuming else None)
    if len(cfg.data.mean) not in (1, ds.channels):
        raise ConfigError(f"data.mean has {len(cfg.data.mean)} values but {ds.name} images have {ds.channels} "
                          f"channel(s). Give 1 value or {ds.channels}.")
    if cfg.eval.taxonomy:  # a bad taxonomy fails now, not after training
        if ds.task != "multiclass":
            raise ConfigError(f"eval.taxonomy groups the classes of a multi-class task; {ds.name} is {ds.task}.")
        from ..evaluation.taxonomy import parse_taxonomy

        parse_taxonomy(cfg.eval.taxonomy, ds.labels)
    mean, std = _input_statistics(cfg, ds.channels)
    norm = build_normalizer(cfg.data.normalize, mean, std, ds.split("train").images)
    meta = model_metadata(cfg, ds, norm)
    seed_everything(cfg.seed)
    model = build_model(meta)
    if cfg.model.pretrained and load_initial_weights:  # a resumed run restores its own weights instead
        from ..models.pretrained import load_pretrained

        report = load_pretrained(model, cfg.model.name, cfg.model.pretrained, in_chans=ds.channels,
                                 num_classes=meta["num_classes"])
        meta["initial_weights"] = {"source": str(cfg.model.pretrained), "summary": report.summary()}
    model = model.to(device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    task = task_from_meta(meta)
    augment = BatchAugment(t.augment) if t.augment.enabled else None
    train_loader = BatchLoader(ds.split("train"), t.batch_size, norm, shuffle=True, augment=augment, device=device,
                               channels_last=t.channels_last)
    val_loader = BatchLoader(ds.split("val"), cfg.eval.batch_size, norm, device=device, channels_last=t.channels_last)
    groups = None
    if cfg.model.transfer != "full":
        from ..models.transfer import apply_transfer  # only needed off the default path

        parts = apply_transfer(model, get_model_card(cfg.model.name), cfg.model.transfer, cfg.model.trainable_blocks)
        groups = parts if cfg.model.transfer == "discriminative" else None  # else one rate for what trains
    optimizer = build_optimizer(model, t, groups)
    scheduler = build_scheduler(optimizer, t, len(train_loader))

    keep = checkpoint_rule(cfg)  # refit: the last epoch, as its val split is training data
    # how the kept epoch was chosen travels with its weights (evaluate and the report name the rule)
    rule = ({"chosen_by": "last_epoch"} if keep == "last" else
            {"tolerance_se": t.checkpoint_tolerance} if t.checkpoint_tolerance else {})

    def save_best(trainer: Trainer, record: dict[str, Any]) -> Path:
        return save_weights(folder.best_weights, trainer.eval_model.state_dict(),
                            {**meta, "epoch": record["epoch"], task.monitor: record[task.monitor], **rule})

    callbacks: list[Callback] = [BestCheckpoint(save_best, monitor=task.monitor, keep=keep,
                                                tolerance=t.checkpoint_tolerance),
                                 EarlyStopping(t.early_stopping, monitor=task.monitor),
                                 _SaveProgress(folder, meta), *extra_callbacks]
    weights = (task.balanced_weights(ds.split("train").labels, ds.num_classes) if t.class_weights == "balanced"
               else None)
    loss_fn = build_loss(task, t, weights)
    eval_loss_fn = build_loss(task, replace(t, label_smoothing=0.0))  # validation loss: unweighted, unsmoothed
    trainer = Trainer(model, task, optimizer, scheduler, train_loader, val_loader, epochs=t.epochs, seed=cfg.seed,
                      loss_fn=loss_fn, eval_loss_fn=eval_loss_fn, grad_clip=t.grad_clip, amp=t.amp, ema_decay=t.ema,
                      tta=cfg.eval.tta, threshold=cfg.eval.threshold, callbacks=callbacks)
    return TrainingSetup(cfg, ds, device, meta, trainer)


def checkpoint_rule(cfg: RunConfig) -> str:
    """``best`` or ``last``: which epoch's weights ``checkpoints/best.safetensors`` keeps (``train.checkpoint``)."""
    if cfg.train.checkpoint == "auto":
        return "last" if cfg.data.refit else "best"
    return cfg.train.checkpoint


def _input_statistics(cfg: RunConfig, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``data.mean`` / ``data.std``; with ImageNet weights and the 0.5 defaults untouched, the card's statistics.

    The ImageNet weights were trained on inputs normalised with ImageNet's mean and std. For grey images (whose
    first convolution sums the RGB filters) the channel averages are used.
    """
    d = cfg.data
    if cfg.model.pretrained != "imagenet" or d.normalize != "fixed" or (d.mean, d.std) != ((0.5,), (0.5,)):
        return d.mean, d.std
    card = get_model_card(cfg.model.name)
    if channels == len(card.mean):
        return card.mean, card.std
    return (sum(card.mean) / len(card.mean),), (sum(card.std) / len(card.std),)


class _SaveProgress(Callback):
    """After each epoch: history.csv, last weights, resume state, status. Runs after BestCheckpoint."""

    def __init__(self, folder: RunFolder, meta: dict[str, Any]):
        self.folder, self.meta = folder, meta

    def on_epoch_end(self, trainer, record):
        f = self.folder
        f.write_history(trainer.history)
        save_weights(f.last_weights, trainer.eval_model.state_dict(), {**self.meta, "epoch": record["epoch"]})
        save_state(f.last_state, trainer.state_dict())
        f.write_status("running", epochs_completed=trainer.epoch, epochs=trainer.epochs,
                       best_epoch=record.get("best_epoch"))


def _preflight_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing or unwritable output folder before any data is loaded."""
    if out.exists():
        if not out.is_dir():
            raise RunFolderError(f"Output path '{out}' exists and is a file, not a folder. Choose another --out.")
        if any(out.iterdir()) and not overwrite:
            raise RunFolderError(f"Run folder '{out}' already exists. Use --resume to continue it, --overwrite to "
                                 f"replace it, or choose another --out.")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RunFolderError(f"Cannot write to output folder '{out}': '{parent}' is not a writable folder. "
                             f"Choose a folder you can write to with --out.")


def train(cfg: RunConfig, out: str | os.PathLike, *, overwrite: bool = False, callbacks: Sequence[Callback] = (),
          download_progress: ProgressFn | None = None, decode_progress: ProgressFn | None = None) -> RunFolder:
    """Train ``cfg`` into the run folder ``out`` and return it.

    Args:
        cfg: the resolved configuration (see :func:`medclass.config.build_config`).
        out: the run folder to create. An existing folder is refused unless ``overwrite``.
        overwrite: replace an existing run folder.
        callbacks: extra :class:`~medclass.training.Callback` objects (progress bars, loggers).
        download_progress: ``fn(bytes_done, bytes_total)`` while a dataset downloads.
        decode_progress: ``fn(images_done, images_total)`` while the files of a manifest are decoded.

    Raises:
        ConfigError, DataError, DatasetNotFoundError, ChecksumError, RunFolderError.

    Example:
        >>> from medclass import build_config, train
        >>> run = train(build_config("default", overrides={"data": {"dataset": "breastmnist"}}), "runs/b0")  # doctest: +SKIP
    """
    validate(cfg)
    out = Path(out)
    _preflight_out(out, overwrite)
    folder = RunFolder(out)
    setup = _setup(cfg, folder, callbacks, download_progress,  # data and model errors surface here
                   decode_progress=decode_progress)
    folder.create(overwrite=overwrite)
    atomic_write_yaml(folder.config, config_to_dict(cfg))
    atomic_write_json(folder.environment, collect_environment(setup.device, cfg.seed))
    atomic_write_json(folder.dataset_card, setup.dataset.describe())
    for name, text in setup.dataset.files.items():  # split.csv, bad_rows.csv, leakage.json for your own images
        atomic_write_text(folder.path / name, text)
    folder.write_status("running", epochs_completed=0, epochs=cfg.train.epochs,
                        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return _run(setup, folder)


def resume(run_dir: str | os.PathLike, *, callbacks: Sequence[Callback] = (), data_dir: str | None = None,
           download_progress: ProgressFn | None = None, decode_progress: ProgressFn | None = None) -> RunFolder:
    """Continue an interrupted run from its last completed epoch.

    With the same seed on the same device the final weights equal those of an uninterrupted run: each
    epoch's shuffling, augmentation and dropout are derived from ``(seed, epoch)``, and the model,
    optimiser, scheduler, weight average and callback states are restored from ``last_state.pt``.
    """
    folder = RunFolder(run_dir).require_run("resume")
    status = folder.read_status()
    if status.get("state") == "complete":
        raise RunFolderError(f"Run '{folder.path}' is already complete; there is nothing to resume. "
                             f"Start a new run (another --out) to train longer.")
    cfg = config_from_dict(load_yaml(folder.config))
    if data_dir is not None:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=data_dir))
    validate(cfg)
    has_state = folder.last_state.is_file()
    setup = _setup(cfg, folder, callbacks, download_progress, load_initial_weights=not has_state,
                   decode_progress=decode_progress, resuming=True)
    if has_state:
        setup.trainer.load_state_dict(load_state(folder.last_state))
        log.info("resuming %s after epoch %d of %d", folder.path, setup.trainer.epoch, cfg.train.epochs)
    else:
        log.info("no completed epoch in %s: starting from the beginning", folder.path)
    folder.write_status("running", resumed=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return _run(setup, folder)


def _run(setup: TrainingSetup, folder: RunFolder) -> RunFolder:
    trainer = setup.trainer
    t0 = time.perf_counter()
    try:
        trainer.fit()
    except KeyboardInterrupt:
        folder.write_status("interrupted", epochs_completed=trainer.epoch)
        raise
    except BaseException as e:
        folder.write_status("failed", epochs_completed=trainer.epoch, error=f"{type(e).__name__}: {e}")
        raise
    _finish(setup, folder, time.perf_counter() - t0)
    return folder


def _finish(setup: TrainingSetup, folder: RunFolder, seconds: float) -> None:
    """Score the validation split with the best weights, then mark the run complete."""
    from .evaluate import score_split  # evaluate imports train's helpers

    trainer, cfg = setup.trainer, setup.cfg
    best = next(cb for cb in trainer.callbacks if isinstance(cb, BestCheckpoint))
    if best.best_epoch is None:
        raise RunFolderError(f"Run '{folder.path}': validation AUC was never defined (NaN every epoch), so no "
                             f"checkpoint could be chosen. Check that the validation split holds both classes.")
    metrics, probs, labels = score_split(folder, setup.dataset, "val", cfg, setup.device)
    refit = {"refit": True, "val_is_training_data": True} if cfg.data.refit else {}
    write_predictions(folder.predictions("val"), labels, probs, setup.dataset.split("val").meta)
    atomic_write_json(folder.metrics("val"), {**metrics, **refit})
    # with a tolerance the kept epoch's AUC may sit (within noise) below the highest one: record both
    highest = {f"highest_{best.monitor}": best.top} if best.tolerance and best.keep == "best" else {}
    hist = trainer.history
    train_seconds = sum(r["seconds"] for r in hist)
    folder.write_status(
        "complete", epochs_completed=trainer.epoch, epochs=cfg.train.epochs, best_epoch=best.best_epoch,
        monitor=best.monitor, **{f"best_{best.monitor}": best.best}, **highest,
        stopped_early=trainer.epoch < cfg.train.epochs,
        checkpoint=best.keep, **refit,
        train_seconds=round(train_seconds, 2), wall_seconds=round(seconds, 2),
        images_per_s=round(sum(r["images_per_s"] * r["seconds"] for r in hist) / max(train_seconds, 1e-9), 1),
        data_share=round(sum(r["data_share"] * r["seconds"] for r in hist) / max(train_seconds, 1e-9), 4),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


