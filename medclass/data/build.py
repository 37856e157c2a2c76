"""One entry point from a :class:`~medclass.config.DataConfig` to an :class:`ImageDataset`.

A MedMNIST name (or .npz path) loads the published arrays; a manifest CSV goes through
:mod:`medclass.data.manifest` (decode, preprocess, cache, split, leakage checks). Either way training,
evaluation and reports see the same object.

Cross-validation and refits change the published train/val split, never the test split:
``data.folds=K`` with ``data.fold=k`` pools the official train and val images, splits them into K
stratified folds (:func:`~medclass.data.splits.kfold`: scikit-learn's ``StratifiedKFold``, shuffled with
``data.split_seed``; MedMNIST has no patient ids, so the unit is the image) and makes fold k the val split;
``data.refit`` trains on train and val together (a manifest: every non-test patient). Both are recorded in
the dataset description (``dataset.json``), and each image keeps where it came from in ``meta["source"]``
(``"train[12]"``: the 13th image of the official train split).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError
from ..utils.io import atomic_write_json, read_json
from .datasets import ArraySplit, ImageDataset, load_dataset
from .download import ProgressFn, default_cache_dir
from .hashing import content_hash, perceptual_hash
from .leakage import check_leakage
from .manifest_dataset import load_manifest_dataset
from .splits import kfold

__all__ = ["build_dataset", "cross_validation_fold", "refit_splits"]

log = logging.getLogger(__name__)


def build_dataset(cfg: DataConfig, *, progress: ProgressFn | None = None,
                  run_dir: str | os.PathLike | None = None, decode_progress: ProgressFn | None = None) -> ImageDataset:
    """The dataset ``cfg`` describes.

    Args:
        cfg: the data settings.
        progress: ``fn(done, total)`` while a MedMNIST file downloads.
        decode_progress: ``fn(done, total)`` while a manifest's files are decoded (not when cached).
        run_dir: an existing run folder whose saved ``split.csv`` must be reused (evaluation, explanation),
            so a manifest is split exactly as it was for training.
    """
    if cfg.refit and cfg.folds:
        raise ConfigError(f"data.refit trains on every non-test image, so it cannot also hold out fold {cfg.fold} of "
                          f"data.folds={cfg.folds}. Set data.folds=0 for the refit.")
    if cfg.manifest is not None:
        split_file = cfg.split_file
        if run_dir is not None and (Path(run_dir) / "split.csv").is_file():
            split_file = str(Path(run_dir) / "split.csv")
        ds = load_manifest_dataset(cfg, split_file=split_file, leakage=run_dir is None,
                                   progress=decode_progress)
        if cfg.folds and not split_file:
            ds = _with_facts(ds, cross_validation={
                "folds": cfg.folds, "fold": cfg.fold, "seed": cfg.split_seed, "pool": "every non-test patient",
                "unit": "patient" if ds.facts.get("patients") else ds.unit, "test": "unchanged by the folds"})
        return refit_splits(ds, pool="every non-test patient") if cfg.refit else ds
    ds = load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir, download=cfg.download, progress=progress)
    assignment = None
    if cfg.folds:
        _check_fold(cfg.folds, cfg.fold)
        assignment = _fold_assignment(ds, cfg.folds, cfg.fold, cfg.split_seed)
    if cfg.leakage != "off" and run_dir is None:  # checked on the splits actually trained and validated on
        ds = _with_duplicate_check(ds, cfg, assignment)
    if cfg.folds:
        return _apply_assignment(ds, assignment, cross_validation={
            "folds": cfg.folds, "fold": cfg.fold, "seed": cfg.split_seed, "pool": "official train + val",
            "unit": "image (MedMNIST has no patient ids)", "test": "official test split, unchanged"})
    return refit_splits(ds) if cfg.refit else ds


def cross_validation_fold(ds: ImageDataset, folds: int, fold: int, seed: int = 0) -> ImageDataset:
    """Fold ``fold`` of ``folds`` over the pooled train and val images of a published dataset; test unchanged.

    The pool (train images, then val images, in file order) is split by :func:`~medclass.data.splits.kfold`
    (stratified, shuffled with ``seed``; the same seed gives the same folds for every ``fold``, so folds
    ``0 .. folds - 1`` cover each pooled image once as val). Images keep their file order within each split.

    Raises:
        ConfigError: ``folds`` < 2 or ``fold`` not in ``0 .. folds - 1``.
    """
    _check_fold(folds, fold)
    return _apply_assignment(ds, _fold_assignment(ds, folds, fold, seed), cross_validation={
        "folds": folds, "fold": fold, "seed": seed, "pool": "official train + val", "unit": "image",
        "test": "official test split, unchanged"})


def refit_splits(ds: ImageDataset, pool: str = "official train + val") -> ImageDataset:
    """Train on train and val together; val is kept (the loop validates every epoch) but is training data now."""
    tr, va = ds.split("train"), ds.split("val")
    tr_meta, va_meta = _with_source(tr, "train"), _with_source(va, "val")
    keys = [k for k in tr_meta if k in va_meta]
    train = ArraySplit(images=np.concatenate([tr.images, va.images]), labels=np.concatenate([tr.labels, va.labels]),
                       meta={k: np.concatenate([tr_meta[k], va_meta[k]]) for k in keys})
    splits = {**ds.splits, "train": train, "val": ArraySplit(va.images, va.labels, va_meta)}
    return _with_facts(dataclasses.replace(ds, splits=splits), refit={
        "train": pool, "val": "kept so the loop runs, but it is training data: its metrics are not a validation"})


def _check_fold(folds: int, fold: int) -> None:
    if folds < 2:
        raise ConfigError(f"data.folds must be >= 2 for cross-validation (0 turns it off). Got {folds} instead.")
    if not 0 <= fold < folds:
        raise ConfigError(f"data.fold must be in 0..{folds - 1} with data.folds={folds}. Got {fold} instead.")


def _fold_assignment(ds: ImageDataset, folds: int, fold: int, seed: int) -> np.ndarray:
    """Split name (train, val, test) of every image, in the order train, val, test of the published file."""
    tr, va = ds.split("train"), ds.split("val")
    pooled = np.concatenate([tr.labels, va.labels])
    k = kfold(pooled, None, n_folds=folds, seed=seed, class_names=ds.labels)
    names = np.where(k == fold, "val", "train").astype("<U5")
    return np.concatenate([names] + [np.full(len(s), n, dtype="<U5") for n, s in ds.splits.items()
                                     if n not in ("train", "val")])


def _apply_assignment(ds: ImageDataset, assignment: np.ndarray, **facts) -> ImageDataset:
    names = [n for n in ds.splits if n not in ("train", "val")]
    order = ["train", "val", *names]
    pool = {n: (ds.splits[n], _with_source(ds.splits[n], n)) for n in order}
    images = np.concatenate([pool[n][0].images for n in order])
    labels = np.concatenate([pool[n][0].labels for n in order])
    source = np.concatenate([pool[n][1]["source"] for n in order])
    splits = {}
    for n in order:
        idx = np.flatnonzero(assignment == n)
        splits[n] = (ds.splits[n] if n in names else
                     ArraySplit(np.ascontiguousarray(images[idx]), labels[idx], {"source": source[idx]}))
    return _with_facts(dataclasses.replace(ds, splits=splits), **facts)


def _with_source(s: ArraySplit, name: str) -> dict[str, np.ndarray]:
    """The split's metadata with ``source`` (where each image is in the published file) added if absent."""
    if "source" in s.meta or "path" in s.meta:
        return dict(s.meta)
    return {**s.meta, "source": np.array([f"{name}[{i}]" for i in range(len(s))])}


def _with_facts(ds: ImageDataset, **facts) -> ImageDataset:
    return dataclasses.replace(ds, facts={**ds.facts, **facts})


def _with_duplicate_check(ds: ImageDataset, cfg: DataConfig, assignment: np.ndarray | None = None) -> ImageDataset:
    """Check published splits for identical and near-identical images shared across splits.

    Published splits are fixed, so leaks are reported (dataset.json, leakage.json, the report), never refused.
    Patients cannot be checked: MedMNIST files carry no patient ids. The result is cached per file. With
    ``assignment`` (cross-validation folds, one split name per image in file order) the folds are checked.
    Volumes are checked for identical copies only (a perceptual hash is a 2D image's).
    """
    names = [s for s in ds.splits]
    split = [s for s in names for _ in range(len(ds.splits[s]))] if assignment is None else list(assignment)
    paths = [f"{s}[{i}]" for s in names for i in range(len(ds.splits[s]))]
    stat = Path(ds.path).stat() if ds.path and Path(ds.path).is_file() else None
    key = f"{Path(ds.path).name}-{stat.st_size}-{stat.st_mtime_ns}" if stat else None
    cache = _hash_cache_dir(cfg) / f"{key}.json" if key else None
    hashes = None
    if cache is not None and cache.is_file():
        try:
            hashes = read_json(cache)
        except (OSError, ValueError):
            hashes = None
    if hashes is None or len(hashes.get("content", ())) != len(split):
        images = [img for s in names for img in ds.splits[s].images]
        hashes = {"content": [content_hash(a) for a in images],
                  "perceptual": [None if ds.spatial_dims == 3 else str(perceptual_hash(a)) for a in images]}
        if cache is not None:
            try:
                atomic_write_json(cache, hashes)
            except OSError:
                pass
    report = check_leakage(split, patient_ids=None, content_hashes=hashes["content"],
                           perceptual_hashes=[None if h is None else int(h) for h in hashes["perceptual"]], paths=paths,
                           rows=list(range(len(split))), near_duplicate_bits=cfg.near_duplicate_bits)
    if not report.ok:
        log.warning("%s: the %s share %d group(s) of identical or near-identical images; kept as "
                    "they are (listed in leakage.json in the run folder)", ds.name,
                    "published splits" if assignment is None else "cross-validation folds", len(report.leaks))
        log.info("%s", report.summary())
    counts = {k: sum(leak.kind == k for leak in report.leaks) for k in ("duplicate", "near-duplicate")}
    policy = "published split" if assignment is None else "cross-validation folds"
    facts = {**ds.facts, "leakage": {"ok": report.ok, "leaks": len(report.leaks), "policy": policy,
                                     **counts, "patients_checked": False,
                                     **({"near_duplicates_checked": False} if ds.spatial_dims == 3 else {})}}
    files = {**ds.files, "leakage.json": json.dumps(report.to_dict(), indent=2) + "\n"}
    return dataclasses.replace(ds, facts=facts, files=files)


def _hash_cache_dir(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir) / "hashes"
    return Path(default_cache_dir()) / "hashes"
