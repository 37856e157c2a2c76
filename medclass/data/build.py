"""One entry point from a :class:`~medclass.config.DataConfig` to an :class:`ImageDataset`.

A MedMNIST name (or .npz path) loads the published arrays; a manifest CSV goes through
:mod:`medclass.data.manifest` (decode, preprocess, cache, split, leakage checks). Either way training,
evaluation and reports see the same object.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import DataConfig
from .datasets import ImageDataset, load_dataset
from .download import ProgressFn

__all__ = ["build_dataset"]


def build_dataset(cfg: DataConfig, *, progress: ProgressFn | None = None,
                  run_dir: str | os.PathLike | None = None) -> ImageDataset:
    """The dataset ``cfg`` describes.

    Args:
        cfg: the data settings.
        progress: ``fn(done, total)`` while a MedMNIST file downloads.
        run_dir: an existing run folder whose saved ``split.csv`` must be reused (evaluation, explanation),
            so a manifest is split exactly as it was for training.
    """
    if cfg.manifest is not None:
        from .manifest import load_manifest_dataset

        split_file = cfg.split_file
        if run_dir is not None and (Path(run_dir) / "split.csv").is_file():
            split_file = str(Path(run_dir) / "split.csv")
        return load_manifest_dataset(cfg, split_file=split_file, check_leakage=run_dir is None)
    return load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir, download=cfg.download, progress=progress)
