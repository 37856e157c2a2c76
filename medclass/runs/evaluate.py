"""Score a finished run on one split with the checkpoint chosen on validation: ``medclass evaluate``."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch

from ..config import RunConfig, config_from_dict, load_yaml, replace
from ..data.datasets import ImageDataset, load_dataset
from ..data.loader import BatchLoader
from ..evaluation.metrics import classification_metrics
from ..tasks import get_task
from ..training.checkpoint import load_weights
from ..training.inference import predict_proba
from ..transforms import Normalize
from ..utils.io import atomic_write_json
from .environment import resolve_device
from .folder import RunFolder
from .predictions import write_predictions

log = logging.getLogger(__name__)

__all__ = ["evaluate_run", "score_split"]


def score_split(folder: RunFolder, ds: ImageDataset, split: str, cfg: RunConfig,
                device: torch.device) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Metrics, probabilities and labels of ``split`` under the run's best checkpoint."""
    from .train import build_model  # train imports this module

    state, meta = load_weights(folder.best_weights)
    model = build_model(meta).to(device)
    model.load_state_dict(state)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loader = BatchLoader(ds.split(split), cfg.eval.batch_size, Normalize(meta["mean"], meta["std"]), device=device,
                         channels_last=cfg.train.channels_last)
    t0 = time.perf_counter()
    probs, labels, loss = predict_proba(model, loader.batches(), get_task(ds.task), tta=cfg.eval.tta,
                                        loss_fn=get_task(ds.task).loss())
    seconds = time.perf_counter() - t0
    metrics = classification_metrics(labels, probs, ds.task, ds.labels, threshold=cfg.eval.threshold,
                                     positive_label=ds.positive_label)
    metrics = {"dataset": ds.name, "split": split, **metrics, "loss": loss,
               "checkpoint": {"file": "checkpoints/best.safetensors", "epoch": meta.get("epoch"),
                              "chosen_by": "val_auc", "val_auc": meta.get("val_auc")},
               "tta": cfg.eval.tta, "seconds": round(seconds, 3)}
    return metrics, probs, labels


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", data_dir: str | None = None,
                 device: str | None = None) -> dict[str, Any]:
    """Score ``split`` of a complete run, write ``metrics/<split>.json`` and ``predictions/<split>.csv``.

    Args:
        run_dir: a run folder whose status is ``complete``.
        split: ``train``, ``val`` or ``test``.
        data_dir: where the dataset lives on this machine, if not where the run found it.
        device: override the run's device (``cpu``, ``cuda``).

    Returns:
        The metrics dict also written to ``metrics/<split>.json``.
    """
    folder = RunFolder(run_dir).require_complete()
    cfg = config_from_dict(load_yaml(folder.config))
    if data_dir is not None:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=data_dir))
    ds = load_dataset(cfg.data.dataset, size=cfg.data.size, data_dir=cfg.data.data_dir, download=cfg.data.download)
    dev = resolve_device(device or cfg.train.device)
    metrics, probs, labels = score_split(folder, ds, split, cfg, dev)
    write_predictions(folder.predictions(split), labels, probs)
    atomic_write_json(folder.metrics(split), metrics)
    log.info("%s %s: auc %.4f acc %.4f (n=%d)", ds.name, split, metrics["auc"], metrics["acc"], metrics["n"])
    return metrics
