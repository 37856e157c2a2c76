"""One entry point from a :class:`~medclass.config.DataConfig` to an :class:`ImageDataset`.

A MedMNIST name (or .npz path) loads the published arrays; a manifest CSV goes through
:mod:`medclass.data.manifest` (decode, preprocess, cache, split, leakage checks). Either way training,
evaluation and reports see the same object.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from ..config import DataConfig
from ..utils.io import atomic_write_json, read_json
from .datasets import ImageDataset, load_dataset
from .download import ProgressFn

__all__ = ["build_dataset"]

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
    if cfg.manifest is not None:
        from .manifest import load_manifest_dataset

        split_file = cfg.split_file
        if run_dir is not None and (Path(run_dir) / "split.csv").is_file():
            split_file = str(Path(run_dir) / "split.csv")
        return load_manifest_dataset(cfg, split_file=split_file, check_leakage=run_dir is None,
                                     progress=decode_progress)
    ds = load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir, download=cfg.download, progress=progress)
    if cfg.leakage != "off" and run_dir is None:
        ds = _with_duplicate_check(ds, cfg)
    return ds


def _with_duplicate_check(ds: ImageDataset, cfg: DataConfig) -> ImageDataset:
    """Check published splits for identical and near-identical images shared across splits.

    Published splits are fixed, so leaks are reported (dataset.json, leakage.json, the report), never refused.
    Patients cannot be checked: MedMNIST files carry no patient ids. The result is cached per file.
    """
    from .leakage import check_leakage, content_hash, perceptual_hash

    names = [s for s in ds.splits]
    split = [s for s in names for _ in range(len(ds.splits[s]))]
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
        hashes = {"content": [content_hash(a) for a in images], "perceptual": [str(perceptual_hash(a)) for a in images]}
        if cache is not None:
            try:
                atomic_write_json(cache, hashes)
            except OSError:
                pass
    report = check_leakage(split, patient_ids=None, content_hashes=hashes["content"],
                           perceptual_hashes=[int(h) for h in hashes["perceptual"]], paths=paths,
                           rows=list(range(len(split))), near_duplicate_bits=cfg.near_duplicate_bits)
    if not report.ok:
        log.warning("%s: the published splits share %d group(s) of identical or near-identical images; kept as "
                    "published (listed in leakage.json in the run folder)", ds.name, len(report.leaks))
        log.info("%s", report.summary())
    counts = {k: sum(leak.kind == k for leak in report.leaks) for k in ("duplicate", "near-duplicate")}
    facts = {**ds.facts, "leakage": {"ok": report.ok, "leaks": len(report.leaks), "policy": "published split",
                                     **counts, "patients_checked": False}}
    files = {**ds.files, "leakage.json": json.dumps(report.to_dict(), indent=2) + "\n"}
    return dataclasses.replace(ds, facts=facts, files=files)


def _hash_cache_dir(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir) / "hashes"
    from .download import default_cache_dir

    return Path(default_cache_dir()) / "hashes"
