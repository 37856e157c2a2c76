"""External validation: score a finished run on data it never saw (another site, another scanner).

``medclass evaluate RUN --manifest other_site.csv`` reads the manifest with the run's own settings (label column,
classes, patient column), decodes every file through the run's own :class:`~medclass.data.pipeline.InputPipeline`
(cached like training data), scores it with the validation-chosen checkpoint and the validation-chosen operating
points, with intervals that resample patients and results per metadata subgroup, and records what shifted
between the training data and the new set (:mod:`medclass.evaluation.shift`): class prevalence, intensity
statistics, image size and spacing, and calibration at each operating point. Everything goes to
``metrics/external-<name>.json`` and ``predictions/external-<name>.csv``; the report shows a section per set.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..config import replace
from ..data.cases import group_cases
from ..data.datasets import ArraySplit, ImageDataset
from ..data.decode import decode_manifest
from ..data.manifest import fail_or_skip, read_manifest
from ..data.manifest_dataset import SUBGROUP_MAX_VALUES
from ..data.pipeline import InputPipeline
from ..data.statistics import intensity_statistics, size_summary
from ..errors import ConfigError, DataError
from ..evaluation.kinds import get_kind
from ..evaluation.shift import intensity_shift, operating_point_shift, prevalence_shift
from ..models import read_weights_metadata
from ..run_folder import RunFolder, load_run_config, read_predictions, write_predictions
from ..utils.io import atomic_write_json, read_json
from .environment import resolve_device
from .evaluate import assess_card, predict_split

__all__ = ["evaluate_external", "external_name"]

log = logging.getLogger(__name__)

def external_name(manifest: str | os.PathLike, name: str | None = None) -> str:
    """The set's name in file names: ``name``, else the manifest's stem, reduced to letters, digits, ``-_.``."""
    raw = name or Path(manifest).stem
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.")
    if not clean:
        raise ConfigError(f"The external set's name {raw!r} has no letters or digits; give one with --name.")
    return clean


def evaluate_external(run_dir: str | os.PathLike, manifest: str | os.PathLike, *,
                      image_root: str | os.PathLike | None = None, name: str | None = None, skip_bad: bool = False,
                      device: str | None = None, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Score run ``run_dir`` on the labelled images of ``manifest`` and write ``metrics/external-<name>.json``.

    Args:
        run_dir: a complete run folder.
        manifest: a CSV with the run's path and label columns (and optionally patient ids and metadata).
        image_root: folder the manifest's paths are relative to (default: the CSV's folder).
        name: the set's name (default: the manifest's file name).
        skip_bad: skip unreadable rows (listed in the result) instead of stopping.
        device: override the run's device.
        progress: ``fn(done, total)`` while the files are decoded.

    Returns:
        The evaluation (also written): headline metrics with patient-level intervals, operating points chosen on
        the run's validation split, subgroups, ``shift`` (prevalence, intensity, size/spacing, calibration) and
        ``files`` (where it was written).

    Raises:
        ConfigError: labels that are not the run's classes. DataError: unreadable manifest or files.
        RunFolderError: an unfinished run.
    """
    folder = RunFolder(run_dir).require_complete()
    set_name = external_name(manifest, name)
    cfg = load_run_config(folder)
    meta = read_weights_metadata(folder.best_weights)
    pipeline = InputPipeline.from_checkpoint_meta(meta)
    card = read_json(folder.dataset_card)
    classes = tuple(card["labels"])
    kind = get_kind(card["task"])
    ext = replace(cfg.data, manifest=str(manifest), image_root=None if image_root is None else str(image_root),
                  split_file=None, folds=0, fold=0, refit=False, skip_bad=skip_bad,
                  classes=classes if kind.class_index else cfg.data.classes)
    if kind.class_index:
        _check_labels(Path(manifest), ext.label_columns[0], classes)
    m = read_manifest(ext)
    dec = decode_manifest(m, ext, progress, pipeline=pipeline)
    fail_or_skip(dec.bad, ext, m.source, "(unreadable or invalid images)")
    bad = m.bad + dec.bad
    m = m.subset(dec.keep)
    if not len(m):
        raise DataError(f"Manifest '{m.source}': no image could be read.")
    split_meta = {"path": np.array(m.paths), "row": np.array([str(r) for r in m.rows])}
    if m.patient_ids is not None:
        split_meta["patient_id"] = np.array(m.patient_ids)
    split_meta.update({c: np.array(v) for c, v in m.metadata.items()})
    images = np.array(dec.images)  # a writable copy of the (read-only, memory-mapped) decode cache
    split = f"external-{set_name}"
    y = m.labels
    if bool(pipeline.views) != (m.case_ids is not None):
        raise DataError(f"Manifest '{m.source}': the run classifies "
                        + (f"cases of {len(pipeline.views)} images ({', '.join(pipeline.views)}), but the manifest "
                           f"has no '{ext.case_column}' column grouping its rows into cases." if pipeline.views else
                           f"single images, but the manifest groups its rows into cases ('{ext.case_column}'): drop "
                           f"the column to score each image."))
    if pipeline.views:
        cases = group_cases(m, images, [split] * len(m), pipeline.views, dec.modalities, case_column=ext.case_column,
                            view_column=ext.view_column)
        images, y, split_meta = cases.images, cases.labels, cases.meta
    ds = ImageDataset(name=m.source.stem, task=card["task"], labels=classes, channels=int(images.shape[-1]),
                      size=pipeline.size, splits={split: ArraySplit(images, y, split_meta)},
                      positive_label=card.get("positive_label"), pipeline=pipeline, views=pipeline.views)
    with folder.lock(f"evaluate --manifest {set_name}"):
        dev = resolve_device(device or cfg.train.device)
        probs, labels, _, _ = predict_split(folder, ds, split, cfg, dev)
        values = kind.values
        val = read_predictions(folder.predictions("val"), values=values)[:2] if folder.predictions("val").is_file() \
            else None
        subgroups = [c for c, v in m.metadata.items() if c in split_meta and 1 < len(set(v)) <= SUBGROUP_MAX_VALUES]
        result = assess_card({**card, "subgroup_columns": subgroups}, labels, probs, split_meta, cfg, val)
        shift = _shift(card, pipeline, images, labels, probs, val, result, dec, folder)
        metrics = {"dataset": card["name"], "split": split, "external": {
            "name": set_name, "manifest": str(Path(manifest).resolve()), "image_root": str(m.root),
            "rows_scored": len(m), **({"cases_scored": len(y)} if pipeline.views else {}),
            "bad_rows": [str(b) for b in bad[:50]], "n_bad_rows": len(bad),
            "pipeline": pipeline.describe(), "operating_points_from": "the run's validation split"},
            **result.pop("metrics"), "checkpoint": {"file": "checkpoints/best.safetensors", "epoch": meta.get("epoch")},
            **result, "shift": shift}
        files = {"metrics": str(folder.metrics(split)), "predictions": str(folder.predictions(split))}
        metrics["files"] = files
        write_predictions(folder.predictions(split), labels, probs, split_meta)
        atomic_write_json(folder.metrics(split), metrics)
    log.info("%s on %s: n=%d", folder.path, set_name, metrics["n"])
    return metrics


def _check_labels(path: Path, column: str, classes: tuple[str, ...]) -> None:
    """Refuse a manifest whose labels are not the run's classes, before any file is decoded."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or column not in [h.strip() for h in reader.fieldnames]:
                return  # read_manifest names the missing column
            values = {(r.get(column) or "").strip() for r in reader}
    except (OSError, UnicodeDecodeError, csv.Error):
        return  # read_manifest says what is wrong with the file
    unknown = sorted(v for v in values - set(classes) if v)
    if unknown:
        raise ConfigError(f"Manifest '{path}': the label(s) {', '.join(map(repr, unknown[:8]))} in column '{column}' "
                          f"are not classes of this run ({', '.join(classes)}). An external set is scored against "
                          f"the run's own classes: rename its labels to those.")


def _shift(card: dict[str, Any], pipeline: InputPipeline, images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
           val: tuple[np.ndarray, np.ndarray] | None, result: dict[str, Any], dec, folder: RunFolder) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kind = get_kind(card["task"])
    if kind.class_index:
        out["prevalence"] = prevalence_shift(card["splits"]["train"]["per_class"], labels, card["labels"])
    train_stats = pipeline.expected.get("intensity")
    new_stats = intensity_statistics(images)
    out["intensity"] = (intensity_shift(train_stats, new_stats) if train_stats else
                        {"new": new_stats, "train": None, "note": "this run predates recorded training statistics"})
    out["size"] = {"train": pipeline.expected.get("size"), "new": size_summary(dec.source_sizes, dec.spacings)}
    kinds = {k: v for k, v in dec.expected.items() if k in ("sources", "modalities", "photometric")}
    out["file_kinds"] = {"train": {k: pipeline.expected.get(k) for k in kinds}, "new": kinds}
    ops = result.get("operating_points")
    if kind.has_positive_class and ops and val is not None:
        pos = card.get("positive_label")
        pos = 1 if pos is None else int(pos)
        out["calibration"] = operating_point_shift(labels, probs[:, pos], val[0], val[1][:, pos],
                                                   {o["name"]: o["threshold"] for o in ops}, positive=pos)
    return out
