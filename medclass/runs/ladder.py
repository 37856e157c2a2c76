"""The transfer-learning ladder: one target dataset, six ways to use (or not use) a source network.

:func:`run_ladder` answers "how much does pretraining on dataset A help on dataset B, and how much of the
network has to move?" with one table. The rungs, from least to most borrowed:

==============  ===================================================================================
``handcrafted`` HOG + uniform-LBP histogram -> SVM (:mod:`medclass.runs.baselines`); no network at all
``scratch``     the network trained from random initialisation, every layer (``model.transfer=full``)
``deep-svm``    the source network's pooled features -> SVM, no training of the network (Bar et al. 2015)
``linear``      source weights, only the classifier trains (``model.transfer=linear``: a linear probe)
``last-k``      source weights, the classifier and the last block train (``last-k``, ``trainable_blocks=1``)
``finetune``    source weights, everything trains, the backbone at 0.1x the rate (``discriminative``)
==============  ===================================================================================

The source is a medclass run folder, or a dataset name, in which case that network is trained first
(``out_dir/source``) with the same architecture and settings. Every rung makes its choices on validation
only: the network rungs keep the checkpoint with the best validation AUC (as every medclass run does), the
SVM rungs pick ``C`` by validation AUC with the test features passed in unlabelled. Test labels are read in one
place, :func:`_score`, after a rung has produced its test probabilities; each rung is scored there once, with
medclass's bootstrap intervals. The results go to ``out_dir/ladder.json`` and ``out_dir/ladder.md``.

Wall seconds are per rung (training and scoring; for the transfer rungs, not the source's training, which is
reported on its own line).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, build_config, deep_merge
from ..data.build import build_dataset
from ..data.datasets import ImageDataset
from ..errors import ConfigError, RunFolderError, did_you_mean
from ..evaluation.assess import AssessConfig, assess
from ..models.checkpoint import read_weights_metadata
from ..run_folder import RunFolder, load_run_config
from ..utils.io import atomic_write_json, atomic_write_text
from .baselines import deep_features, fit_classifier, handcrafted_features
from .environment import resolve_device
from .evaluate import evaluate_run
from .train import train

__all__ = ["run_ladder", "RUNGS", "format_table"]

log = logging.getLogger(__name__)

RUNGS: dict[str, str] = {
    "handcrafted": "HOG + LBP histogram -> SVM (no network)",
    "scratch": "random init, every layer trains",
    "deep-svm": "source network's features -> SVM",
    "linear": "source weights, linear probe (classifier only)",
    "last-k": "source weights, classifier + last block train",
    "finetune": "source weights, all layers, backbone lr x0.1",
}

# rung -> model settings of the network rungs
_NETWORK_RUNGS: dict[str, dict[str, Any]] = {
    "scratch": {"transfer": "full"},
    "linear": {"transfer": "linear"},
    "last-k": {"transfer": "last-k", "trainable_blocks": 1},
    "finetune": {"transfer": "discriminative"},
}


def run_ladder(dataset: str, source: str | os.PathLike, out_dir: str | os.PathLike, *, epochs: int = 10,
               seed: int = 0, data_dir: str | None = None, model: str = "resnet18", width: int | None = None,
               size: int | None = None, source_epochs: int | None = None, backbone_lr_factor: float = 0.1,
               n_boot: int = 2000, device: str = "auto", rungs: Sequence[str] | None = None,
               classifier: str = "svm", overrides: Mapping[str, Any] | None = None,
               overwrite: bool = False) -> dict[str, Any]:
    """Run the transfer ladder on ``dataset`` with the network of ``source``; write ``ladder.json`` and ``ladder.md``.

    Args:
        dataset: the target: a MedMNIST name or an ``.npz`` in MedMNIST layout.
        source: a medclass run folder (its architecture and width are used), or a dataset to train one on.
        out_dir: where the rung runs, ``ladder.json`` and ``ladder.md`` go.
        epochs: training epochs of every network rung (and of the source, unless ``source_epochs``).
        seed: seed of every run and of the bootstrap.
        data_dir: folder holding the ``.npz`` files (default: ``$MEDCLASS_DATA``, then the cache).
        model, width: architecture of the source trained here and of every rung.
        size: MedMNIST image side (28, 64, 128 or 224); unset: the config default (28).
        source_epochs: epochs for training the source (default ``epochs``).
        backbone_lr_factor: ``finetune``: the backbone's learning rate relative to the head's.
        n_boot: bootstrap replicates of the 95% intervals.
        device: ``auto``, ``cpu`` or ``cuda``.
        rungs: which rungs to run, in table order (default: all of :data:`RUNGS`).
        classifier: ``svm`` or ``logistic`` for the feature rungs.
        overrides: further config settings for every run (``{"train": {"batch_size": 64}}``).
        overwrite: replace run folders left in ``out_dir`` by an earlier ladder (else that is an error).

    Returns:
        The dict written to ``ladder.json``: ``{"dataset", "source", "rungs": [{"rung", "test": {"auc", "acc",
        "intervals"}, "val_auc", "chosen", "seconds", ...}], ...}``.
    """
    rungs = tuple(RUNGS) if rungs is None else tuple(rungs)
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise ConfigError(f"Unknown ladder rung {unknown[0]!r}.{did_you_mean(unknown[0], RUNGS)} Rungs: "
                          f"{', '.join(RUNGS)}.")
    out = Path(out_dir)
    needs_source = any(r not in ("handcrafted", "scratch") for r in rungs)
    folders = [r for r in rungs if r in _NETWORK_RUNGS] + (["source"] if needs_source and not Path(source).is_dir()
                                                           else [])
    taken = [str(out / f) for f in folders if (out / f).exists() and any((out / f).iterdir())]
    if taken and not overwrite:  # before hours of training, not in the middle
        raise RunFolderError(f"The ladder folder '{out}' already holds runs ({', '.join(taken)}). Use --overwrite "
                             f"to replace them, or choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    base: dict[str, Any] = {"seed": seed,
                            "data": {"dataset": str(dataset), "data_dir": data_dir, **({"size": size} if size else {})},
                            "model": {"name": model, "width": width},
                            "train": {"epochs": epochs, "device": device, "backbone_lr_factor": backbone_lr_factor},
                            "eval": {"n_boot": n_boot}}
    base = deep_merge(base, overrides or {})
    result: dict[str, Any] = {"dataset": str(dataset), "rungs": []}
    ds = _load(build_config(overrides=base))  # configuration and data errors surface before any training
    source_dir = None
    if needs_source:
        source_dir, source_info = _source_run(source, out, base, source_epochs or epochs, overwrite)
        base = deep_merge(base, {"model": {"name": source_info["model"], "width": source_info["width"]}})
        result["source"] = source_info
    target_cfg = build_config(overrides=base)
    result.update(task=ds.task, labels=list(ds.labels), n={s: len(ds.split(s)) for s in ("train", "val", "test")},
                  model=target_cfg.model.name, width=target_cfg.model.width, epochs=epochs, seed=seed, n_boot=n_boot)

    for rung in rungs:
        t0 = time.perf_counter()
        log.info("ladder rung %s", rung)
        if rung in _NETWORK_RUNGS:
            row = _network_rung(rung, base, out / rung, source_dir, overwrite)
        else:
            row = _feature_rung(rung, ds, source_dir, classifier, seed, target_cfg.train.device, n_boot)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        row = {"rung": rung, "description": RUNGS[rung], **row}
        result["rungs"].append(row)
        log.info("%s: test auc %.4f acc %.4f", rung, row["test"]["auc"], row["test"]["acc"])

    table = format_table(result)
    atomic_write_json(out / "ladder.json", result)
    atomic_write_text(out / "ladder.md", table + "\n")
    return result


def _load(cfg: RunConfig) -> ImageDataset:
    return build_dataset(cfg.data)


def _source_run(source: str | os.PathLike, out: Path, base: Mapping[str, Any], epochs: int,
                overwrite: bool) -> tuple[Path, dict[str, Any]]:
    """The source run folder (trained here when ``source`` names a dataset) and what the table says about it."""
    path = Path(source)
    if path.is_dir():
        folder = RunFolder(path).require_complete()
        cfg = load_run_config(folder)
        info = {"run": str(path), "dataset": cfg.data.dataset, "model": cfg.model.name, "width": cfg.model.width}
        test = folder.metrics("test")
        if test.is_file():
            info["test_auc"] = json.loads(test.read_text())["auc"]
        return path, info
    src_dir = out / "source"
    t0 = time.perf_counter()
    cfg = build_config(overrides=deep_merge(base, {"data": {"dataset": str(source)}, "train": {"epochs": epochs}}))
    train(cfg, src_dir, overwrite=overwrite)
    metrics = evaluate_run(src_dir, "test")
    cfg = load_run_config(src_dir)
    return src_dir, {"run": str(src_dir), "dataset": str(source), "model": cfg.model.name, "width": cfg.model.width,
                     "epochs": cfg.train.epochs, "test_auc": metrics["auc"],
                     "seconds": round(time.perf_counter() - t0, 1)}


def _network_rung(rung: str, base: Mapping[str, Any], run_dir: Path, source_dir: Path | None,
                  overwrite: bool) -> dict[str, Any]:
    settings = dict(_NETWORK_RUNGS[rung])
    if rung != "scratch":
        settings["pretrained"] = str(source_dir)  # runs.train loads it (the classifier too, when shapes match)
    cfg = build_config(overrides=deep_merge(base, {"model": settings}))
    train(cfg, run_dir, overwrite=overwrite)
    m = evaluate_run(run_dir, "test")  # scored once, with the checkpoint chosen on validation
    # the checkpoint's own record of its choice (metrics/test.json's "checkpoint" block may lack it)
    meta = read_weights_metadata(RunFolder(run_dir).best_weights)
    return {"run": str(run_dir), "test": _summary(m), "val_auc": meta.get("val_auc"),
            "chosen": f"epoch {meta.get('epoch')}"}


def _feature_rung(rung: str, ds: ImageDataset, source_dir: Path | None, classifier: str, seed: int, device: str,
                  n_boot: int) -> dict[str, Any]:
    splits = ("train", "val", "test")
    if rung == "handcrafted":
        X = {s: handcrafted_features(ds.split(s).images) for s in splits}
    else:
        dev = str(resolve_device(device))
        X = {s: deep_features(source_dir, ds.split(s).images, device=dev) for s in splits}
    # only train and val labels go in; the test split is passed as features
    fit = fit_classifier(X["train"], ds.split("train").labels, X["val"], ds.split("val").labels, X["test"],
                         n_classes=ds.num_classes, classifier=classifier, seed=seed)
    m = _score(ds, fit.test_probs, fit.val_probs, n_boot, seed)
    return {"test": _summary(m), "val_auc": fit.val_auc[fit.C], "chosen": f"C={fit.C:g}",
            "val_auc_by_C": {str(k): v for k, v in fit.val_auc.items()}, "n_features": int(X["train"].shape[1])}


def _score(ds: ImageDataset, test_probs: np.ndarray, val_probs: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """The one place the feature rungs read test labels: after their test probabilities are fixed."""
    result = assess(ds.split("test").labels, test_probs, ds.task, ds.labels, positive_label=ds.positive_label,
                    val=(ds.split("val").labels, val_probs), cfg=AssessConfig(n_boot=n_boot, seed=seed))
    return {**result.pop("metrics"), **result}


def _summary(m: Mapping[str, Any]) -> dict[str, Any]:
    iv = m.get("intervals", {})
    return {"auc": m["auc"], "acc": m["acc"], "n": m.get("n"),
            "intervals": {k: {"low": iv[k]["low"], "high": iv[k]["high"]} for k in ("auc", "acc") if k in iv}}


def _cell(test: Mapping[str, Any], key: str) -> str:
    iv = test["intervals"].get(key)
    ci = f" [{iv['low']:.3f}, {iv['high']:.3f}]" if iv else ""
    return f"{test[key]:.3f}{ci}"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_table(result: Mapping[str, Any]) -> str:
    """The ladder as a Markdown table (rung, what it is, test AUC and ACC with 95% intervals, wall seconds)."""
    lines = ["| rung | what | chosen on val | val AUC | test AUC [95% CI] | test ACC [95% CI] | wall s |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rungs"]:
        lines.append(f"| {r['rung']} | {r['description']} | {r['chosen']} | {_num(r['val_auc'])} | "
                     f"{_cell(r['test'], 'auc')} | {_cell(r['test'], 'acc')} | {r['seconds']:.1f} |")
    src = result.get("source")
    if src:
        extra = f", {src['epochs']} epochs, {src['seconds']:.0f} s" if "seconds" in src else ""
        auc = f", its own test AUC {src['test_auc']:.3f}" if "test_auc" in src else ""
        lines.append("")
        lines.append(f"Source network: {src['model']} trained on {src['dataset']} ({src['run']}{extra}{auc}).")
    return "\n".join(lines)
