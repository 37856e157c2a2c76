"""Score a finished run on one split with the checkpoint chosen on validation: ``medclass evaluate``.

The split's predictions are written to ``predictions/<split>.csv`` and its evaluation (metrics with
bootstrap intervals, operating points chosen on the validation predictions, curves, calibration) to
``metrics/<split>.json``. The test split is used for nothing else: every choice (checkpoint,
thresholds, temperature) was made on validation.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch

from ..config import EvalConfig, RunConfig, replace
from ..data.build import build_dataset
from ..data.datasets import ImageDataset
from ..data.loader import BatchLoader
from ..data.pipeline import InputPipeline
from ..errors import ConfigError, RunFolderError
from ..evaluation.assess import AssessConfig, assess
from ..evaluation.kinds import class_kind, get_kind
from ..evaluation.label_shift import estimate_priors
from ..evaluation.taxonomy import Taxonomy, parse_taxonomy
from ..models import build_model, load_weights
from ..run_folder import RunFolder, load_run_config, read_predictions, write_predictions
from ..tasks import task_from_meta
from ..training.inference import predict_proba
from ..training.losses import build_loss
from ..utils.io import atomic_write_json
from .environment import resolve_device
from .volumes import use_channels_last

log = logging.getLogger(__name__)

__all__ = ["evaluate_run", "score_split", "evaluate_predictions", "assess_config", "assess_card", "assess_coarse",
           "task_heads"]


def assess_config(ev: EvalConfig, seed: int = 0, unit: str = "image") -> AssessConfig:
    """``unit``: what one example is (``image``, or ``volume`` for a 3D dataset), as reports name it."""
    return AssessConfig(n_boot=ev.n_boot, level=ev.ci_level, seed=seed, sensitivity_target=ev.sensitivity_target,
                        specificity_target=ev.specificity_target, temperature_scaling=ev.temperature_scaling,
                        threshold=ev.threshold, unit=unit)


def predict_split(folder: RunFolder, ds: ImageDataset, split: str, cfg: RunConfig,
                  device: torch.device) -> tuple[np.ndarray, np.ndarray, dict[str, Any], float]:
    """Probabilities and labels of ``split`` under the run's best checkpoint, its metadata, and the loss."""
    state, meta = load_weights(folder.best_weights)
    model = build_model(meta).to(device)
    model.load_state_dict(state)
    model = use_channels_last(model, cfg.train.channels_last, ds.spatial_dims)
    loader = BatchLoader(ds.split(split), cfg.eval.batch_size, InputPipeline.from_checkpoint_meta(meta).normalizer,
                         device=device,
                         channels_last=cfg.train.channels_last)
    task = task_from_meta(meta)
    loss_fn = build_loss(task, replace(cfg.train, label_smoothing=0.0))  # the training loss, unsmoothed
    probs, labels, loss = predict_proba(model, loader.batches(), task, tta=cfg.eval.tta, loss_fn=loss_fn)
    return probs, labels, meta, loss


def score_split(folder: RunFolder, ds: ImageDataset, split: str, cfg: RunConfig, device: torch.device,
                val: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The evaluation dict written to ``metrics/<split>.json``, with the probabilities and labels."""
    t0 = time.perf_counter()
    probs, labels, meta, loss = predict_split(folder, ds, split, cfg, device)
    seconds = time.perf_counter() - t0
    card = {"task": ds.task, "labels": ds.labels, "positive_label": ds.positive_label, "unit": ds.unit, **ds.facts}
    result = assess_card(card, labels, probs, ds.split(split).meta, cfg, val if split != "val" else (labels, probs))
    if cfg.eval.label_shift != "none" and split != "val" and val is not None:
        result["label_shift"] = label_shift_block(card, labels, probs, ds.split(split).meta, cfg, val)
    monitor = task_from_meta(meta).monitor
    metrics = {"dataset": ds.name, "split": split, **result.pop("metrics"), "loss": loss,
               "checkpoint": {"file": "checkpoints/best.safetensors", "epoch": meta.get("epoch"),
                              "chosen_by": meta.get("chosen_by", monitor), monitor: meta.get(monitor),
                              **{k: meta[k] for k in ("tolerance_se", "guard") if k in meta}},
               "tta": cfg.eval.tta, "inference_seconds": round(seconds, 3), **result}
    return metrics, probs, labels


def assess_card(card: dict[str, Any], labels: np.ndarray, probs: np.ndarray, meta: dict[str, np.ndarray],
                cfg: RunConfig, val: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """:func:`assess` for a dataset described by ``card`` (``dataset.json``): its task's heads, intervals over
    patients and per-metadata subgroups when ``meta`` has them (own images), and the coarse level of
    ``eval.taxonomy``. Shared by evaluation, cross-validation (out-of-fold) and ensembles."""
    subgroups = {c: meta[c] for c in card.get("subgroup_columns", ()) if c in meta}
    groups, acfg = meta.get("patient_id"), assess_config(cfg.eval, cfg.seed, card.get("unit", "image"))
    result = assess(labels, probs, card["task"], tuple(card["labels"]), positive_label=card.get("positive_label"),
                    val=val, groups=groups, subgroups=subgroups or None, cfg=acfg, heads=task_heads(card))
    if cfg.eval.taxonomy:
        result["taxonomy"] = assess_coarse(parse_taxonomy(cfg.eval.taxonomy, card["labels"]), labels, probs,
                                           tuple(card["labels"]), val=val, groups=groups, cfg=acfg)
    return result


def label_shift_block(card: dict[str, Any], labels: np.ndarray, probs: np.ndarray, meta: dict[str, np.ndarray],
                      cfg: RunConfig, val: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """``eval.label_shift``: the class priors estimated from this split's probabilities, and the metrics of the
    probabilities adapted to them (with intervals), beside the unadapted headline. Single-label tasks only."""
    kind = get_kind(card["task"])
    if not kind.class_index or kind.values:
        raise ConfigError(f"Label-shift adaptation re-weights the classes of a single-label task; this run is "
                          f"{card['task']}. Evaluate without --label-shift.")
    info = estimate_priors(cfg.eval.label_shift, probs, val)
    adapted = assess(labels, info.pop("adapted"), card["task"], tuple(card["labels"]),
                     positive_label=card.get("positive_label"), groups=meta.get("patient_id"),
                     cfg=assess_config(cfg.eval, cfg.seed))
    k = len(card["labels"])
    observed = np.bincount(np.asarray(labels).astype(int), minlength=k) / max(len(labels), 1)
    return {**info, "observed_priors": [float(v) for v in observed], "metrics": adapted["metrics"],
            "intervals": adapted["intervals"], "threshold": cfg.eval.threshold,
            "note": "probabilities re-weighted to the estimated class balance of this split's images; the "
                    "headline metrics above are not adapted"}


def task_heads(card: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """Multi-task datasets: (head name, its class names) per head, from a dataset card (``dataset.json``)."""
    if not get_kind(card["task"]).multihead:
        return []
    labels, bounds = card["labels"], np.cumsum([0, *card["heads"]])
    return [(name, tuple(labels[bounds[h]:bounds[h + 1]])) for h, name in enumerate(card["head_names"])]


def assess_coarse(tax: Taxonomy, labels: np.ndarray, probs: np.ndarray, fine: tuple[str, ...], *,
                  val: tuple[np.ndarray, np.ndarray] | None, groups: np.ndarray | None,
                  cfg: AssessConfig) -> dict[str, Any]:
    """The coarse level of a taxonomy: children's probabilities summed, then assessed like any task."""
    cval = None if val is None else (tax.labels(val[0]), tax.probabilities(val[1]))
    res = assess(tax.labels(labels), tax.probabilities(probs), class_kind(len(tax.coarse)).name, tax.coarse,
                 val=cval, groups=groups, cfg=cfg)
    return {"classes": list(tax.coarse), "children": tax.to_dict(fine), **res.pop("metrics"), **res}


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", data_dir: str | None = None,
                 device: str | None = None, label_shift: str | None = None) -> dict[str, Any]:
    """Score ``split`` of a complete run, write ``metrics/<split>.json`` and ``predictions/<split>.csv``.

    Args:
        run_dir: a run folder whose status is ``complete``.
        split: ``train``, ``val`` or ``test``.
        data_dir: where the dataset lives on this machine, if not where the run found it.
        device: override the run's device (``cpu``, ``cuda``).
        label_shift: ``em`` or ``bbse`` to also report metrics adapted to the split's estimated class balance
            (``eval.label_shift``; the headline numbers stay unadapted).

    Returns:
        The dict also written to ``metrics/<split>.json``: headline metrics (``auc``, ``acc``, ``sensitivity``,
        ...), ``intervals``, and for binary tasks ``operating_points``, ``curves`` and ``calibration``.
    """
    folder = RunFolder(run_dir).require_complete()
    oof = folder.read_status().get("val_predictions") == "out-of-fold"  # a refit of `medclass cv`
    if split == "val" and oof:
        raise RunFolderError(f"Run '{folder.path}' was refit on train+val, so its val split is training data; its "
                             f"metrics/val.json holds the cross-validation's out-of-fold predictions instead. "
                             f"Score --split test.")
    with folder.lock(f"evaluate --split {split}"):
        cfg = load_run_config(folder, data_dir)
        if label_shift is not None:
            cfg = replace(cfg, eval=replace(cfg.eval, label_shift=label_shift))
        ds = build_dataset(cfg.data, run_dir=folder.path)
        dev = resolve_device(device or cfg.train.device)
        val = None
        if split != "val":
            if folder.predictions("val").is_file():
                val = read_predictions(folder.predictions("val"), values=ds.kind.values)[:2]
            else:  # a run folder from before validation predictions were saved
                p, y, _, _ = predict_split(folder, ds, "val", cfg, dev)
                val = (y, p)
        metrics, probs, labels = score_split(folder, ds, split, cfg, dev, val=val)
        if cfg.data.refit and split != "val":  # where the operating points were chosen
            metrics["val_predictions"] = ("out-of-fold (cross-validation)" if oof else
                                          "the val split, which this refit trained on (no out-of-fold predictions)")
        write_predictions(folder.predictions(split), labels, probs, ds.split(split).meta)
        atomic_write_json(folder.metrics(split), metrics)
    keys = ds.kind.summary_keys
    log.info("%s %s: %s (n=%d)", ds.name, split, " ".join(f"{k} {metrics[k]:.4f}" for k in keys), metrics["n"])
    return metrics


def evaluate_predictions(path: str | os.PathLike, task: str, labels: tuple[str, ...] | None = None, *,
                         val_path: str | os.PathLike | None = None, positive_label: int | None = None,
                         group_column: str | None = None, subgroup_columns: tuple[str, ...] = (),
                         cfg: AssessConfig = AssessConfig()) -> dict[str, Any]:
    """Evaluate predictions from any tool, saved as CSV (see :mod:`medclass.run_folder`)."""
    kind = get_kind(task)
    y, p, extra = read_predictions(path, extra_columns=(group_column, *subgroup_columns) if group_column
                                   else subgroup_columns, values=kind.values)
    p = kind.as_scores(p)  # binary: only the positive-class probability may be given
    if labels is None:
        labels = tuple(str(i) for i in range(p.shape[1]))
    val = read_predictions(val_path, values=kind.values)[:2] if val_path else None
    if val is not None:
        val = (val[0], kind.as_scores(val[1]))
    result = assess(y, p, task, labels, positive_label=positive_label, val=val,
                    groups=extra.get(group_column) if group_column else None,
                    subgroups={c: extra[c] for c in subgroup_columns}, cfg=cfg)
    return {"predictions": str(path), **result.pop("metrics"), **result}
