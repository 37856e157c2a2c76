"""Train a model into a run folder, or resume one: the function behind ``medclass train``.

Order of work, so that bad input fails before anything is written: validate the configuration,
check the output folder, load (or download) the data, build the model; only then create the run
folder, write the resolved configuration and environment, and train. Each epoch writes the history,
the last weights and the resume state; the best weights by validation AUC are kept separately. The
test split is never loaded here: it is scored later, once, by :func:`medclass.runs.evaluate.evaluate_run`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig, config_to_dict, replace, validate
from ..data.build import build_dataset
from ..data.datasets import ImageDataset
from ..data.download import ProgressFn
from ..data.loader import BatchLoader
from ..data.pipeline import InputPipeline
from ..data.statistics import intensity_statistics, size_summary
from ..errors import ConfigError, DataError, DivergenceError, RunFolderError
from ..evaluation.taxonomy import parse_taxonomy
from ..models import build_model, get_model_card, model_metadata, save_weights
from ..models.pretrained import load_pretrained
from ..models.transfer import apply_transfer
from ..run_folder import RunFolder, checkpoint_rule, checkpoint_rule_record, load_run_config, write_predictions
from ..tasks import Task, get_task
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
    seed_everything,
)
from ..transforms import BatchAugment, build_normalizer
from ..transforms.augment import ViewwiseAugment
from ..transforms.augment3d import BatchAugment3D
from ..utils.io import atomic_write_json, atomic_write_text, atomic_write_yaml
from .environment import collect_environment, resolve_device
from .evaluate import score_split
from .volumes import case_model, check_case_model, match_model, use_channels_last

log = logging.getLogger(__name__)

__all__ = ["train", "resume", "prepare_training", "TrainingSetup", "dataset_task", "run_metadata"]


def run_metadata(cfg: RunConfig, ds: ImageDataset, pipeline: InputPipeline, task: Task) -> dict[str, Any]:
    """What this run's checkpoints record (:func:`medclass.models.model_metadata`): model, task, labels, pipeline,
    configuration."""
    return model_metadata(model=cfg.model.name, model_kwargs={"width": cfg.model.width, "drop_rate": cfg.model.dropout},
                          task=task, labels=ds.labels, in_chans=ds.channels, input_size=ds.size,
                          positive_label=ds.positive_label, dataset=ds.name, pipeline=pipeline.to_dict(),
                          config=config_to_dict(cfg), head_names=tuple(ds.facts.get("head_names", ())),
                          case=case_model(cfg, ds))


def dataset_task(cfg: RunConfig, ds: ImageDataset) -> Task:
    """The task of a dataset with the model's head; a regression target's mean and sd come from the train split."""
    heads = ds.kind.heads
    scale = {}
    if ds.kind.values:
        v = ds.split("train").labels.astype(float)
        sd = float(v.std())
        if not sd > 0:
            raise DataError(f"Every training value of the regression target is {v[0]:g}: there is nothing to learn. "
                            f"Check the label column.")
        scale = {"target_mean": float(v.mean()), "target_std": sd}
    return get_task(ds.task, head=cfg.model.head, heads=heads, **scale)


@dataclass
class TrainingSetup:
    """Everything :func:`train` and :func:`resume` assemble before the loop starts."""

    cfg: RunConfig
    dataset: ImageDataset
    device: torch.device
    meta: dict[str, Any]
    pipeline: InputPipeline
    trainer: Trainer


def prepare_training(cfg: RunConfig, folder: RunFolder | None, callbacks: Sequence[Callback] = (), *,
                     download_progress: ProgressFn | None = None, decode_progress: ProgressFn | None = None,
                     load_initial_weights: bool = True, resuming: bool = False) -> TrainingSetup:
    """Data, input pipeline, model, loss, optimiser, schedule and callbacks for ``cfg``, as training uses them.

    The sanity check and the learning-rate range test build their trainer here too, with ``folder=None``
    (nothing is saved). A resumed run (``resuming``) reuses its saved ``split.csv`` so its splits cannot drift.
    """
    t = cfg.train
    device = resolve_device(t.device)
    ds = build_dataset(cfg.data, progress=download_progress, decode_progress=decode_progress,
                       run_dir=folder.path if resuming and folder is not None else None)
    cfg = match_model(cfg, ds.spatial_dims, ds.name)  # volumes: a 3D model (the default one when none was chosen)
    cfg = check_case_model(cfg, ds)  # cases: the fusion resolved
    if len(cfg.data.mean) not in (1, ds.channels):
        raise ConfigError(f"data.mean has {len(cfg.data.mean)} values but {ds.name} images have {ds.channels} "
                          f"channel(s). Give 1 value or {ds.channels}.")
    if cfg.eval.taxonomy:  # a bad taxonomy fails now, not after training
        if not ds.kind.taxonomy:
            raise ConfigError(f"eval.taxonomy groups the classes of a multi-class task; {ds.name} is {ds.task}.")
        parse_taxonomy(cfg.eval.taxonomy, ds.labels)
    mean, std = _input_statistics(cfg, ds.channels)
    norm = build_normalizer(cfg.data.normalize, mean, std, ds.split("train").images)
    train_images = ds.split("train").images
    pipeline = ds.pipeline.with_(normalize=norm.to_meta(), expected={
        **ds.pipeline.expected, "intensity": intensity_statistics(train_images),
        **({} if "size" in ds.pipeline.expected or ds.spatial_dims == 3 else
           {"size": size_summary([train_images.shape[1:3]] * len(train_images), [])})})
    task = dataset_task(cfg, ds)
    meta = run_metadata(cfg, ds, pipeline, task)
    seed_everything(cfg.seed)
    model = build_model(meta)
    if cfg.model.pretrained and load_initial_weights:  # a resumed run restores its own weights instead
        encoders = model.encoders if ds.views else [model]  # cases: every view's encoder starts from the weights
        reports = [load_pretrained(enc, cfg.model.name, cfg.model.pretrained, in_chans=ds.channels,
                                   num_classes=meta["num_classes"]) for enc in encoders]
        meta["initial_weights"] = {"source": str(cfg.model.pretrained), "summary": reports[0].summary()}
    model = use_channels_last(model.to(device), t.channels_last and not ds.views, ds.spatial_dims)
    augment = None
    if t.augment.enabled:
        augment = BatchAugment3D(t.augment) if ds.spatial_dims == 3 else BatchAugment(t.augment)
        augment = ViewwiseAugment(augment) if ds.views else augment
    train_loader = BatchLoader(ds.split("train"), t.batch_size, pipeline.normalizer, shuffle=True, augment=augment,
                               device=device, channels_last=t.channels_last)
    val_loader = BatchLoader(ds.split("val"), cfg.eval.batch_size, pipeline.normalizer, device=device,
                             channels_last=t.channels_last)
    groups = None
    if cfg.model.transfer != "full":
        parts = apply_transfer(model, get_model_card(cfg.model.name), cfg.model.transfer, cfg.model.trainable_blocks)
        groups = parts if cfg.model.transfer == "discriminative" else None  # else one rate for what trains
    optimizer = build_optimizer(model, t, groups)
    scheduler = build_scheduler(optimizer, t, len(train_loader))
    rule = checkpoint_rule_record(cfg)  # how the kept epoch was chosen travels with its weights
    sums: dict[str, str] = {}  # SHA-256 of the files written this epoch, recorded in status.json

    def save_best(trainer: Trainer, record: dict[str, Any]) -> None:
        if folder is not None:
            sums["checkpoints/best.safetensors"] = save_weights(
                folder.best_weights, trainer.eval_model.state_dict(),
                {**meta, "epoch": record["epoch"], task.monitor: record[task.monitor], **rule})

    weights = (task.balanced_weights(ds.split("train").labels, ds.num_classes) if t.class_weights == "balanced"
               else None)
    loss_fn = build_loss(task, t, weights)
    eval_loss_fn = build_loss(task, replace(t, label_smoothing=0.0))  # validation loss: unweighted, unsmoothed
    guard = uninformative_loss(task, eval_loss_fn, ds.split("val").labels, ds.num_classes) if t.checkpoint_guard \
        else None
    callbacks = [BestCheckpoint(save_best, monitor=task.monitor, keep=checkpoint_rule(cfg),
                                tolerance=t.checkpoint_tolerance, max_loss=guard),
                 EarlyStopping(t.early_stopping, monitor=task.monitor),
                 *([_SaveProgress(folder, meta, sums)] if folder is not None else []), *callbacks]
    trainer = Trainer(model, task, optimizer, scheduler, train_loader, val_loader, epochs=t.epochs, seed=cfg.seed,
                      loss_fn=loss_fn, eval_loss_fn=eval_loss_fn, grad_clip=t.grad_clip, amp=t.amp, ema_decay=t.ema,
                      tta=cfg.eval.tta, threshold=cfg.eval.threshold, callbacks=callbacks)
    return TrainingSetup(cfg, ds, device, meta, pipeline, trainer)


def uninformative_loss(task: Task, loss_fn: torch.nn.Module, labels: np.ndarray, num_classes: int) -> float | None:
    """The validation loss of a model that knows nothing: zero logits, i.e. uniform probabilities (1/K per class,
    1/2 per label); ``None`` for regression, whose zero output is the training mean rather than no knowledge."""
    if task.regression or len(labels) == 0:
        return None
    target = task.target(torch.as_tensor(labels))
    with torch.no_grad():
        return float(loss_fn(torch.zeros(len(labels), task.num_outputs(num_classes)), target))


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

    def __init__(self, folder: RunFolder, meta: dict[str, Any], sums: dict[str, str]):
        self.folder, self.meta, self.sums = folder, meta, sums

    def on_epoch_end(self, trainer, record):
        f = self.folder
        f.write_history(trainer.history)
        self.sums["checkpoints/last.safetensors"] = save_weights(f.last_weights, trainer.eval_model.state_dict(),
                                                                 {**self.meta, "epoch": record["epoch"]})
        self.sums["checkpoints/last_state.pt"] = save_state(f.last_state, trainer.state_dict())
        recorded = {**f.read_status().get("sha256", {}), **self.sums}
        f.write_status("running", epochs_completed=trainer.epoch, epochs=trainer.epochs,
                       best_epoch=record.get("best_epoch"), sha256=recorded)


def _preflight_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing or unwritable output folder before any data is loaded."""
    if out.exists():
        if not out.is_dir():
            raise RunFolderError(f"Output path '{out}' exists and is a file, not a folder. Choose another --out.")
        if not overwrite and any(e.name != ".lock" for e in out.iterdir()):
            half = " It was left half-made by a run that failed while starting; --overwrite replaces it." \
                if RunFolder(out).is_half_made() else ""
            raise RunFolderError(f"Run folder '{out}' already exists. Use --resume to continue it, --overwrite to "
                                 f"replace it, or choose another --out.{half}")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RunFolderError(f"Cannot write to output folder '{out}': '{parent}' is not a writable folder. "
                             f"Choose a folder you can write to with --out.")


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """``train.num_threads`` for the duration of a run; PyTorch's own setting is restored afterwards."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(cfg: RunConfig, out: str | os.PathLike, *, overwrite: bool = False, callbacks: Sequence[Callback] = (),
          download_progress: ProgressFn | None = None, decode_progress: ProgressFn | None = None) -> RunFolder:
    """Train ``cfg`` into the run folder ``out`` and return it.

    Args:
        cfg: the resolved configuration (see :func:`medclass.config.build_config`).
        out: the run folder to create. An existing folder is refused unless ``overwrite``.
        overwrite: replace an existing run folder (refused while another process is using it).
        callbacks: extra :class:`~medclass.training.Callback` objects (progress bars, loggers).
        download_progress: ``fn(bytes_done, bytes_total)`` while a dataset downloads.
        decode_progress: ``fn(images_done, images_total)`` while the files of a manifest are decoded.

    Raises:
        ConfigError, DataError, DatasetNotFoundError, ChecksumError, RunFolderError.

    Example:
        >>> from medclass import build_config, train
        >>> cfg = build_config("default", overrides={"data": {"dataset": "breastmnist"}})
        >>> run = train(cfg, "runs/b0")  # doctest: +SKIP
    """
    validate(cfg)
    out = Path(out)
    _preflight_out(out, overwrite)
    folder = RunFolder(out)
    with _threads(cfg.train.num_threads):
        setup = prepare_training(cfg, folder, callbacks, download_progress=download_progress,
                                 decode_progress=decode_progress)  # data and model errors surface here
        out.mkdir(parents=True, exist_ok=True)
        with folder.lock("train"):
            folder.create(overwrite=overwrite)
            atomic_write_yaml(folder.config, config_to_dict(setup.cfg))  # as trained (a volume's default model)
            atomic_write_json(folder.preprocessing, setup.pipeline.to_dict())
            atomic_write_json(folder.environment, collect_environment(setup.device, cfg.seed))
            atomic_write_json(folder.dataset_card, setup.dataset.describe())
            for name, text in setup.dataset.files.items():  # split.csv, bad_rows.csv, leakage.json (own images)
                atomic_write_text(folder.path / name, text)
            folder.write_status("running", epochs_completed=0, epochs=cfg.train.epochs,
                                started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            return _run(setup, folder)


def resume(run_dir: str | os.PathLike, *, callbacks: Sequence[Callback] = (), data_dir: str | None = None,
           download_progress: ProgressFn | None = None, decode_progress: ProgressFn | None = None,
           lr: float | None = None) -> RunFolder:
    """Continue an interrupted (or diverged) run from its last completed epoch.

    With the same seed on the same device the final weights equal those of an uninterrupted run: each
    epoch's shuffling, augmentation and dropout are derived from ``(seed, epoch)``, and the model,
    optimiser, scheduler, weight average and callback states are restored from ``last_state.pt``.

    ``lr`` continues with another peak learning rate (after :class:`~medclass.errors.DivergenceError`): every
    rate of the optimiser and its schedule is scaled by ``lr / train.lr``, the new rate is saved in
    ``config.yaml`` and the change is recorded in ``status.json`` (``lr_changes``).
    """
    folder = RunFolder(run_dir).require_run("resume")
    with folder.lock("resume"):
        status = folder.read_status()
        if status.get("state") == "complete":
            raise RunFolderError(f"Run '{folder.path}' is already complete; there is nothing to resume. "
                                 f"Start a new run (another --out) to train longer.")
        cfg = load_run_config(folder, data_dir)
        old_lr = cfg.train.lr
        if lr is not None:
            cfg = replace(cfg, train=replace(cfg.train, lr=float(lr)))
        validate(cfg)
        has_state = folder.last_state.is_file()
        with _threads(cfg.train.num_threads):
            setup = prepare_training(cfg, folder, callbacks, download_progress=download_progress,
                                     decode_progress=decode_progress, load_initial_weights=not has_state,
                                     resuming=True)
            if has_state:
                setup.trainer.load_state_dict(load_state(folder.last_state))
                log.info("resuming %s after epoch %d of %d", folder.path, setup.trainer.epoch, cfg.train.epochs)
                if lr is not None and lr != old_lr:
                    _scale_rates(setup.trainer, lr / old_lr)
            if lr is not None and lr != old_lr:
                changes = [*status.get("lr_changes", []), {"after_epoch": setup.trainer.epoch, "from": old_lr,
                                                           "to": float(lr)}]
                atomic_write_yaml(folder.config, config_to_dict(cfg))
                folder.write_status(status.get("state", "interrupted"), lr_changes=changes)
            else:
                log.info("no completed epoch in %s: starting from the beginning", folder.path)
            if not folder.preprocessing.is_file():  # a run folder from before the pipeline was saved
                atomic_write_json(folder.preprocessing, setup.pipeline.to_dict())
            folder.write_status("running", resumed=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            return _run(setup, folder)


def _scale_rates(trainer: Trainer, ratio: float) -> None:
    """Multiply every learning rate the optimiser and its schedule hold by ``ratio`` (a resumed run's new rate)."""
    for group in trainer.optimizer.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if key in group:
                group[key] *= ratio
    sched = trainer.scheduler
    for attr in ("base_lrs", "_last_lr", "min_lrs"):
        if isinstance(getattr(sched, attr, None), list):
            setattr(sched, attr, [v * ratio for v in getattr(sched, attr)])


def _run(setup: TrainingSetup, folder: RunFolder) -> RunFolder:
    trainer = setup.trainer
    t0 = time.perf_counter()
    try:
        trainer.fit()
    except DivergenceError as e:
        lr = setup.cfg.train.lr
        folder.write_status("failed", epochs_completed=trainer.epoch, error=f"DivergenceError: {e}", diverged=True)
        raise DivergenceError(f"{e} Epochs 1-{trainer.epoch} are saved: medclass train --resume {folder.path} "
                              f"--lr {lr / 10:.2g}" if trainer.epoch else
                              f"{e} No epoch was completed: start again with a lower train.lr (--lr {lr / 10:.2g}) "
                              f"and --overwrite.") from None
    except KeyboardInterrupt:
        folder.write_status("interrupted", epochs_completed=trainer.epoch)
        raise
    except BaseException as e:
        with contextlib.suppress(OSError):  # a full disk may refuse the status too; the error says what happened
            folder.write_status("failed", epochs_completed=trainer.epoch, error=f"{type(e).__name__}: {e}")
        raise
    _finish(setup, folder, time.perf_counter() - t0)
    return folder


def _finish(setup: TrainingSetup, folder: RunFolder, seconds: float) -> None:
    """Score the validation split with the best weights, then mark the run complete."""
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
        checkpoint=best.keep, checkpoint_tolerance=cfg.train.checkpoint_tolerance, **refit,
        **({"checkpoint_passed_over": [e for e in best.passed_over if e != best.best_epoch]}
           if best.max_loss is not None else {}),
        train_seconds=round(train_seconds, 2), wall_seconds=round(seconds, 2),
        images_per_s=round(sum(r["images_per_s"] * r["seconds"] for r in hist) / max(train_seconds, 1e-9), 1),
        data_share=round(sum(r["data_share"] * r["seconds"] for r in hist) / max(train_seconds, 1e-9), 4),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
