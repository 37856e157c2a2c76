"""Write a run's report: ``medclass report``, the heatmap gallery built first when it is missing or stale."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from ..reports.html import build_report
from ..run_folder import RunFolder
from .gallery import build_gallery

__all__ = ["write_report"]


def write_report(run_dir: str | os.PathLike, split: str = "test", out: str | os.PathLike | None = None, *,
                 gallery: bool = True, data_dir: str | None = None) -> Path:
    """``report.html`` of a complete, scored run (:func:`medclass.reports.build_report`), holding the run's lock.

    With ``gallery`` the heatmap gallery is built first when it is missing or older than the split's predictions
    (the dataset files must be in reach: ``data_dir``; a MedMNIST file is never downloaded for it). Otherwise, or
    when it cannot be built, the report names the command that builds it.
    """
    folder = RunFolder(run_dir).require_complete()
    builder = partial(_gallery, data_dir=data_dir) if gallery else None
    with folder.lock("report"):
        return build_report(folder.path, split, out, gallery_builder=builder)


def _gallery(run_dir: Path, split: str, data_dir: str | None) -> Path:
    return build_gallery(run_dir, split, data_dir=data_dir, download=False)
