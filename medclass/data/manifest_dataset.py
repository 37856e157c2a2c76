"""Your own images as an :class:`ImageDataset`: a manifest read (:mod:`.manifest`), decoded once through the input
pipeline (:mod:`.decode`), split by patient (:mod:`.splits`) and checked for leakage (:mod:`.leakage`).

:func:`load_manifest_dataset` is what training and evaluation use; :func:`check_manifest` does the same work
without refusing anything, for ``medclass data check``. The dataset carries its
:class:`~medclass.data.pipeline.InputPipeline` (channels resolved, the training files' kinds recorded), which
the run saves and every later use of the model applies.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import DataConfig, config_to_dict, replace
from ..errors import ConfigError, DataError
from .cases import group_cases
from .datasets import ArraySplit, ImageDataset
from .decode import DecodedManifest, decode_manifest, decoding_pipeline
from .leakage import LeakageReport, check_leakage, enforce
from .manifest import MAX_LISTED, SPLIT_COLUMN, SPLIT_NAMES, BadRow, Manifest, fail_or_skip, read_manifest
from .split_files import apply_split, load_split, split_csv_text
from .splits import check_split_classes, cross_validation_splits, split_by_ratios
from .statistics import size_summary

__all__ = ["ManifestCheck", "check_manifest", "load_manifest_dataset"]

SUBGROUP_MAX_VALUES = 20  # metadata columns with more distinct values (ids, ages) are not subgroups


@dataclass
class ManifestCheck:
    """What :func:`check_manifest` found: the usable rows, their split, the leakage report and the bad rows."""

    manifest: Manifest
    decoded: DecodedManifest
    split: list[str]
    bad: list[BadRow]
    leakage: LeakageReport | None

    @property
    def ok(self) -> bool:
        return not self.bad and (self.leakage is None or self.leakage.ok)

    def summary(self) -> str:
        """A human-readable report: counts per split and class, bad rows, leakage."""
        m, split = self.manifest, np.asarray(self.split)
        groups = m.patient_ids
        lines = [f"manifest {m.source}: {len(m)} usable image(s), {len(self.bad)} bad row(s); task {m.task}, "
                 f"classes {', '.join(m.classes)}",
                 f"decoding: {self.decoded.seconds:.1f}s{' (from the cache)' if self.decoded.cached else ''}"]
        kind = m.kind
        for name in SPLIT_NAMES:
            idx = np.flatnonzero(split == name)
            per = kind.count_text(m.labels[idx], m.classes)
            pats = f", {len({groups[i] for i in idx})} patients" if groups is not None else ""
            cases = f", {len({m.case_ids[i] for i in idx})} cases" if m.case_ids is not None else ""
            lines.append(f"  {name:<5} {len(idx):>6} images{cases}{pats}: {per}")
        for b in self.bad[:MAX_LISTED]:
            lines.append(f"  bad {b}")
        if len(self.bad) > MAX_LISTED:
            lines.append(f"  ... and {len(self.bad) - MAX_LISTED} more bad rows")
        if self.leakage is not None:
            lines.append(self.leakage.summary())
        return "\n".join(lines)


def check_manifest(cfg: DataConfig, *, split_file: str | os.PathLike | None = None,
                   progress: Callable[[int, int], None] | None = None) -> ManifestCheck:
    """Read, decode (cached), split and check a manifest for leakage without refusing anything.

    Bad rows are collected (not raised) so that one report lists them all; the leakage report is returned
    whatever ``cfg.leakage`` says. :func:`load_manifest_dataset` applies the policies.
    """
    m = read_manifest(replace(cfg, skip_bad=True))
    dec = decode_manifest(m, cfg, progress)
    bad = m.bad + dec.bad
    m = m.subset(dec.keep)
    if not len(m):
        raise DataError(f"Manifest '{m.source}': no image could be read. First problems:\n  "
                        + "\n  ".join(str(b) for b in bad[:MAX_LISTED]))
    split = _assign_splits(m, cfg, split_file)
    if m.case_ids is not None:  # a case's rows that do not fit together are refused here too, with their rows
        group_cases(m, dec.images, split, cfg.views, dec.modalities, case_column=cfg.case_column,
                    view_column=cfg.view_column)
    report = check_leakage(split, patient_ids=m.patient_ids, content_hashes=dec.content_hashes,
                           perceptual_hashes=_perceptual(dec, cfg), paths=m.paths, rows=m.rows,
                           near_duplicate_bits=cfg.near_duplicate_bits)
    return ManifestCheck(m, dec, split, bad, report)


def load_manifest_dataset(cfg: DataConfig, *, split_file: str | os.PathLike | None = None,
                          leakage: bool = True,
                          progress: Callable[[int, int], None] | None = None) -> ImageDataset:
    """The :class:`ImageDataset` of a manifest: decoded (cached), split by patient, checked for leakage.

    Args:
        cfg: the data settings (``cfg.manifest`` set).
        split_file: a saved ``split.csv`` to reuse (overrides ``cfg.split_file``).
        leakage: run the leakage checks and apply ``cfg.leakage`` (off when re-loading a run's data).
        progress: ``fn(done, total)`` while decoding.
    """
    m = read_manifest(cfg)
    if m.case_ids is not None and cfg.volumes:
        raise ConfigError(f"Manifest '{m.source}' groups volumes into cases ('{cfg.case_column}'); cases are made of "
                          f"2D images (views or slices). Drop the case column to classify each volume, or give the "
                          f"slices as rows of a case.")
    pipeline = decoding_pipeline(cfg)
    dec = decode_manifest(m, cfg, progress, pipeline)
    fail_or_skip(dec.bad, cfg, m.source, "(unreadable or invalid images)")
    bad = m.bad + dec.bad
    m = m.subset(dec.keep)
    if not len(m):
        raise DataError(f"Manifest '{m.source}': no image could be read.")
    assignment = _assign_splits(m, cfg, split_file)
    if m.kind.needs_classes_in_every_split:
        check_split_classes(assignment, m.labels, m.classes, str(m.source))
    groups = m.groups if m.groups is not None else [f"row-{r}" for r in m.rows]
    files: dict[str, str] = {"split.csv": split_csv_text(m.paths, assignment, groups)}
    facts: dict = {"manifest": str(m.source), "image_root": str(m.root),
                   "preprocess": config_to_dict(cfg.preprocess),
                   "decode": {"seconds": round(dec.seconds, 3), "from_cache": dec.cached,
                              "source_sizes": _size_range(dec.source_sizes)},
                   "patients": len(set(groups)) if m.patient_ids is not None else None,
                   "bad_rows": len(bad), **m.facts}
    if bad:
        files["bad_rows.csv"] = _bad_rows_csv(bad)
    if leakage and cfg.leakage != "off":
        report = check_leakage(assignment, patient_ids=m.patient_ids, content_hashes=dec.content_hashes,
                                perceptual_hashes=_perceptual(dec, cfg), paths=m.paths, rows=m.rows,
                                near_duplicate_bits=cfg.near_duplicate_bits)
        files["leakage.json"] = json.dumps(report.to_dict(), indent=2) + "\n"
        facts["leakage"] = {"ok": report.ok, "leaks": len(report.leaks), "policy": cfg.leakage,
                            **({"near_duplicates_checked": False} if cfg.volumes else {})}
        enforce(report, cfg.leakage)
    images, labels = np.asarray(dec.images), m.labels
    meta = {"path": np.array(m.paths), "row": np.array([str(r) for r in m.rows])}
    if m.patient_ids is not None:
        meta["patient_id"] = np.array(m.patient_ids)
    meta.update({col: np.array(values) for col, values in m.metadata.items()})
    views: tuple[str, ...] = ()
    if m.case_ids is not None:  # several rows, one example: (cases, V, H, W, C)
        cases = group_cases(m, images, assignment, cfg.views, dec.modalities, case_column=cfg.case_column,
                            view_column=cfg.view_column)
        images, labels, assignment, meta, views = cases.images, cases.labels, cases.split, cases.meta, cases.views
        facts["cases"] = cases.facts()
    splits = {}
    assignment = np.asarray(assignment)
    for name in SPLIT_NAMES:
        idx = np.flatnonzero(assignment == name)
        splits[name] = ArraySplit(images=np.ascontiguousarray(images[idx]), labels=labels[idx],
                                  meta={k: v[idx] for k, v in meta.items()})
    facts["subgroup_columns"] = [c for c, v in m.metadata.items() if c in meta
                                 and 1 < len(set(v)) <= SUBGROUP_MAX_VALUES]
    channels = int(images.shape[-1])
    return ImageDataset(name=m.source.stem, task=m.task, labels=m.classes, channels=channels,
                        size=cfg.size, splits=splits, license="your data", citation="", source=str(m.source),
                        positive_label=m.kind.default_positive_label, path=str(m.source), files=files,
                        facts=facts, views=views, pipeline=pipeline.with_(channels=channels, views=views, expected={
                            **dec.expected, "size": size_summary(dec.source_sizes, dec.spacings)}),
                        spatial_dims=pipeline.spatial_dims)


def _perceptual(dec: DecodedManifest, cfg: DataConfig) -> list[int | None] | None:
    """The perceptual hashes to check for near-duplicates; None for volumes (a perceptual hash is 2D), so the
    leakage report says near-duplicates were not checked."""
    return None if cfg.volumes else dec.perceptual_hashes


def _assign_splits(m: Manifest, cfg: DataConfig, split_file: str | os.PathLike | None) -> list[str]:
    split_file = split_file or cfg.split_file
    if split_file:
        return list(apply_split(load_split(split_file), m.paths, str(split_file)))
    groups = m.groups
    if m.split is not None:
        if cfg.folds:
            raise ConfigError("data.folds splits the non-test patients into folds, but the manifest fixes the split "
                              f"in its '{SPLIT_COLUMN}' column. Drop the column, or set data.folds=0.")
        return list(m.split)
    strata = m.strata()[0]
    by_ratio = split_by_ratios(strata, groups, tuple(cfg.split_ratios), seed=cfg.split_seed)
    if cfg.folds:
        return list(cross_validation_splits(strata, groups, cfg.folds, cfg.fold, np.asarray(by_ratio) == "test",
                                            cfg.split_seed))
    return list(by_ratio)


def _bad_rows_csv(bad: Sequence[BadRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "path", "reason"])
    w.writerows((b.row, b.path, b.reason) for b in bad)
    return buf.getvalue()


def _size_range(sizes: Sequence[tuple[int, int]]) -> dict | None:
    if not sizes:
        return None
    a = np.asarray(sizes)
    return {"min": a.min(0).tolist(), "max": a.max(0).tolist(), "mixed": bool(len({tuple(s) for s in sizes}) > 1)}
