"""Your own images, step 1: the manifest CSV read and validated into a :class:`Manifest`.

A manifest has one row per image::

    path,label,patient_id,site,sex
    p001/img1.dcm,pneumonia,p001,A,F
    p001/img2.dcm,pneumonia,p001,A,F
    p002/scan.png,normal,p002,B,M

``path`` is relative to ``data.image_root`` (default: the manifest's folder); one label column, or several
0/1 columns for multi-label (``data.label_columns``; an empty cell is a missing label); an optional
``patient_id`` (rows sharing it always land in one split); an optional ``split`` column (train/val/test)
to fix the split yourself; an optional ``case_id`` (with ``view``) that makes several rows one example, a
multi-view study or a stack of slices (:mod:`medclass.data.cases`); every other column is metadata, reported
per subgroup at evaluation.

Loading runs in this order, and every problem names the CSV row and the file:

1. read and validate the CSV (columns, labels, patient ids, duplicates): this module;
2. decode every file once through the input pipeline, cached (:mod:`medclass.data.decode`);
3. split by patient (a saved split file, the ``split`` column, or stratified grouped ratios / K folds;
   :mod:`medclass.data.splits`);
4. check for leakage across splits (shared patients, exact and near-duplicate images;
   :mod:`medclass.data.leakage`), refused by default. Steps 2-4: :mod:`medclass.data.manifest_dataset`.

Rows that cannot be used are an error listing each one; with ``data.skip_bad`` they are skipped and listed in
``bad_rows.csv`` in the run folder instead, never dropped silently. DICOM header fields (names, dates,
institutions) are never read into anything medclass writes: only pixels, the technical fields needed to
display them, and the patient id the manifest supplies.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, DataError, did_you_mean
from ..evaluation.kinds import TaskKind, class_kind, get_kind
from ..utils.text import canonical_spelling, natural_key

__all__ = ["BadRow", "Manifest", "read_manifest", "fail_or_skip", "natural_key"]

log = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
SPLIT_NAMES = ("train", "val", "test")
MAX_LISTED = 10  # bad rows shown in an error message (all of them go to bad_rows.csv)


@dataclass(frozen=True)
class BadRow:
    """A manifest row that cannot be used: ``row`` as a spreadsheet numbers it (the header is row 1)."""

    row: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.path or 'no path'}): {self.reason}"


@dataclass
class Manifest:
    """A validated manifest: one entry per usable row, in file order."""

    source: Path
    root: Path
    rows: list[int]
    paths: list[str]
    labels: np.ndarray  # (N,) class indices (values: regression), or (N, L) 0/1 / class per head, -1 missing
    classes: tuple[str, ...]
    task: str
    patient_ids: list[str] | None
    split: list[str] | None
    metadata: dict[str, list[str]]
    bad: list[BadRow] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # multitask: heads (classes per head), head_names
    case_ids: list[str] | None = None  # the case column (several rows, one example: medclass.data.cases)
    views: list[str] | None = None  # with cases: the view column, when there is one

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: Sequence[int]) -> Manifest:
        keep = list(keep)
        pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
        return Manifest(self.source, self.root, pick(self.rows), pick(self.paths), self.labels[keep], self.classes,
                        self.task, pick(self.patient_ids), pick(self.split),
                        {k: pick(v) for k, v in self.metadata.items()}, list(self.bad), dict(self.facts),
                        pick(self.case_ids), pick(self.views))

    @property
    def groups(self) -> list[str] | None:
        """What a split keeps together: the patient, else the case (``None``: every row on its own)."""
        return self.patient_ids if self.patient_ids is not None else self.case_ids

    @property
    def kind(self) -> TaskKind:
        return get_kind(self.task, heads=self.facts.get("heads", ()))

    def strata(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """Labels to stratify splits on, with their names: the labels themselves for classification; for
        regression the value's quintile; for multi-task the first head's class (missing: a stratum of its own)."""
        return self.kind.strata(self.labels, self.classes)


# --- 1. the CSV -----------------------------------------------------------------------------------


def read_manifest(cfg: DataConfig) -> Manifest:
    """Read and validate ``cfg.manifest``; bad rows raise, or are set aside with ``cfg.skip_bad``."""
    src, root = _locate(cfg)
    header, records = _read_csv(src, cfg)
    kind = _kind_of(cfg)
    problem = kind.column_problem(cfg.label_columns)
    if problem:
        raise ConfigError(problem)
    t = _read_rows(records, header, cfg, kind)
    fail_or_skip(t.bad, cfg, src, "in the manifest")
    if not t.rows:
        raise DataError(f"Manifest '{src}': no usable rows are left.")
    _check_spellings(t, cfg, kind, src)
    labels, classes, facts = kind.encode(t.labels, cfg.label_columns, tuple(cfg.classes), f"Manifest '{src}'")
    if not cfg.task and kind.class_index:  # the task left to the labels: binary for two classes
        kind = class_kind(len(classes))
    split = t.splits if any(t.splits) else None
    if split is not None and not all(split):
        first = next(r for r, s in zip(t.rows, split) if not s)
        raise DataError(f"Manifest '{src}', row {first}: the '{SPLIT_COLUMN}' column is empty here but filled "
                        f"elsewhere. Fill it on every row (train, val or test), or drop the column to split by ratios.")
    if not t.has_patient and not t.has_case:
        log.warning("manifest %s has no '%s' column: each image counts as its own patient. If a patient has "
                    "several images, add patient ids so that they stay in one split.", src, cfg.patient_column)
    return Manifest(src, root, t.rows, t.paths, labels, classes, kind.name, t.patients if t.has_patient else None,
                    split, t.metadata, t.bad, facts, t.cases if t.has_case else None,
                    t.views if t.has_view else None)


def _locate(cfg: DataConfig) -> tuple[Path, Path]:
    """The manifest file and the folder its paths are relative to, both checked."""
    src = Path(cfg.manifest or "")
    if not cfg.manifest or not src.is_file():
        raise DataError(f"Manifest '{src}' does not exist. Pass a CSV with a '{cfg.path_column}' column and a label "
                        f"column ('{cfg.label_columns[0]}'), e.g. one written by `medclass data import-folder`.")
    root = Path(cfg.image_root) if cfg.image_root else src.parent
    if not root.is_dir():
        raise DataError(f"Image root '{root}' (data.image_root) is not a folder. Point it at the folder the "
                        f"manifest's paths are relative to.")
    return src, root


def _read_csv(src: Path, cfg: DataConfig) -> tuple[list[str], list[dict]]:
    """The header (stripped, columns checked) and the records of a UTF-8 CSV (comma, semicolon or tab)."""
    try:
        text = src.read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as e:
        raise DataError(f"Manifest '{src}' is not UTF-8 text ({e}). Save it as CSV UTF-8.") from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise DataError(f"Manifest '{src}' is empty. It needs a header row ({cfg.path_column},"
                        f"{','.join(cfg.label_columns)},...) and one row per image.")
    reader.fieldnames = header
    _check_columns(cfg, header, src)
    records = list(reader)
    if not records:
        raise DataError(f"Manifest '{src}' has a header but no rows. Add one row per image.")
    return header, records


@dataclass
class _Rows:
    """The usable rows of a manifest, column by column (cells stripped), and the bad ones."""

    has_patient: bool
    metadata: dict[str, list[str]]
    has_case: bool = False
    has_view: bool = False
    rows: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)  # the label cells of each row
    patients: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def _read_rows(records: list[dict], header: list[str], cfg: DataConfig, kind: TaskKind) -> _Rows:
    has_patient, has_case = cfg.patient_column in header, cfg.case_column in header
    has_view = has_case and cfg.view_column in header
    reserved = {cfg.path_column, *cfg.label_columns, cfg.patient_column, SPLIT_COLUMN,
                *((cfg.case_column, cfg.view_column) if has_case else ())}
    t = _Rows(has_patient, {c: [] for c in header if c not in reserved and c}, has_case, has_view)
    seen: dict[str, int] = {}
    classes = tuple(cfg.classes)
    for i, rec in enumerate(records, start=2):
        if None in rec:  # more cells than header columns
            t.bad.append(BadRow(i, (rec.get(cfg.path_column) or "").strip(),
                                f"has {len(header) + len(rec[None])} cells but the header has {len(header)} columns"))
            continue
        path = (rec.get(cfg.path_column) or "").strip()
        problem = _row_problem(rec, cfg, kind, classes, path, seen, has_patient) or _case_problem(rec, cfg, has_case,
                                                                                                  has_view)
        if problem:
            t.bad.append(BadRow(i, path, problem))
            continue
        seen[path] = i
        t.rows.append(i)
        t.paths.append(path)
        t.labels.append([(rec[c] or "").strip() for c in cfg.label_columns])
        t.patients.append((rec.get(cfg.patient_column) or "").strip() if has_patient else "")
        t.splits.append((rec.get(SPLIT_COLUMN) or "").strip().lower())
        t.cases.append((rec.get(cfg.case_column) or "").strip() if has_case else "")
        t.views.append((rec.get(cfg.view_column) or "").strip() if has_view else "")
        for c, values in t.metadata.items():
            values.append((rec.get(c) or "").strip())
    return t


def _check_spellings(t: _Rows, cfg: DataConfig, kind: TaskKind, src: Path) -> None:
    """Refuse class names that differ only in spelling (``Benign``/``benign``, ``1``/``1.0``/``01``, inner spaces,
    Unicode forms: equal after :func:`~medclass.utils.text.canonical_spelling`), which would silently become
    separate classes, unless ``data.classes`` lists every spelling of the group. Surrounding spaces are removed
    when the cells are read, so ``"benign "`` is ``benign`` already."""
    if not kind.named_classes:
        return
    listed = set(cfg.classes)
    problems = []
    for h, col in enumerate(cfg.label_columns):
        rows_of: dict[str, list[int]] = {}
        for row, cells in zip(t.rows, t.labels):
            if cells[h]:
                rows_of.setdefault(cells[h], []).append(row)
        groups: dict[str, list[str]] = {}
        for value in rows_of:
            groups.setdefault(canonical_spelling(value), []).append(value)
        for spellings in groups.values():
            if len(spellings) > 1 and not all(v in listed or f"{col}:{v}" in listed for v in spellings):
                problems.append(f"column '{col}': " + ", ".join(f"{v!r} ({_rows_text(rows_of[v])})"
                                                              for v in spellings))
    if problems:
        listing = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise DataError(f"Manifest '{src}': labels that differ only in spelling (letter case, spacing, Unicode form "
                        f"or how a number is written) would become separate classes:\n  {listing}{more}\n"
                        f"Fix the CSV so that each class is spelled one way, or, if they really are different "
                        f"classes, list every spelling in data.classes.")


def _rows_text(rows: list[int], show: int = 3) -> str:
    """``row 4`` or ``rows 2, 3, 5 and 7 more``."""
    if len(rows) == 1:
        return f"row {rows[0]}"
    shown = ", ".join(map(str, rows[:show]))
    return f"rows {shown}" + (f" and {len(rows) - show} more" if len(rows) > show else "")


def _check_columns(cfg: DataConfig, header: list[str], src: Path) -> None:
    missing = [c for c in (cfg.path_column, *cfg.label_columns) if c not in header]
    if cfg.patient_column not in header and cfg.patient_column != DataConfig.patient_column:
        missing.append(cfg.patient_column)  # named explicitly, so a patient-level split is asked for
    if missing:
        hints = "".join(did_you_mean(m, header) for m in missing)
        raise DataError(f"Manifest '{src}' lacks the column(s) {', '.join(repr(m) for m in missing)}.{hints} "
                        f"Its columns are: {', '.join(header)}. Rename them, or set data.path_column / "
                        f"data.label_columns / data.patient_column.")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"Manifest '{src}' has the column(s) {', '.join(dupes)} more than once; names must be unique.")


def _kind_of(cfg: DataConfig) -> TaskKind:
    """The kind ``data.task`` names; unset, several label columns are multi-label and one column is a
    classification whose number of classes decides between binary and multiclass after reading."""
    if cfg.task:
        return get_kind(cfg.task)
    return get_kind("multilabel") if len(cfg.label_columns) > 1 else class_kind(0)


def _row_problem(rec: dict, cfg: DataConfig, kind: TaskKind, classes: tuple[str, ...], path: str,
                 seen: dict[str, int], has_patient: bool) -> str | None:
    if not path:
        return f"the '{cfg.path_column}' cell is empty"
    if path in seen:
        return f"'{path}' is listed twice (also row {seen[path]}); each image must appear once"
    problem = kind.cell_problem([(rec.get(c) or "").strip() for c in cfg.label_columns], cfg.label_columns, classes)
    if problem:
        return problem
    if has_patient and not (rec.get(cfg.patient_column) or "").strip() and not (rec.get(SPLIT_COLUMN) or "").strip() \
            and not cfg.split_file:
        return (f"the patient id ('{cfg.patient_column}') is empty; a patient-level split needs one on every row "
                f"(use the image's own name if it is the patient's only image)")
    split = (rec.get(SPLIT_COLUMN) or "").strip().lower()
    if split and split not in SPLIT_NAMES:
        return f"split {split!r} must be train, val or test{did_you_mean(split, SPLIT_NAMES)}"
    return None


def _case_problem(rec: dict, cfg: DataConfig, has_case: bool, has_view: bool) -> str | None:
    if has_case and not (rec.get(cfg.case_column) or "").strip():
        return f"the case id ('{cfg.case_column}') is empty; every row of a manifest with cases needs one"
    if has_view and not (rec.get(cfg.view_column) or "").strip():
        return f"the view ('{cfg.view_column}') is empty; every row of a manifest with views needs one"
    view = (rec.get(cfg.view_column) or "").strip()
    if has_view and cfg.views and view not in cfg.views:
        return (f"view {view!r} is not one of the configured views ({', '.join(cfg.views)}; data.views)"
                f"{did_you_mean(view, cfg.views)}")
    return None


def fail_or_skip(bad: list[BadRow], cfg: DataConfig, src: Path, stage: str) -> None:
    if not bad:
        return
    listing = "\n  ".join(str(b) for b in bad[:MAX_LISTED])
    more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    if not cfg.skip_bad:
        raise DataError(f"Manifest '{src}': {len(bad)} row(s) cannot be used {stage}:\n  {listing}{more}\n"
                        f"Fix them, or set data.skip_bad=true (--skip-bad) to skip them; skipped rows are listed in "
                        f"bad_rows.csv in the run folder.")
    log.warning("skipping %d bad row(s) %s of %s (listed in bad_rows.csv):\n  %s%s", len(bad), stage, src, listing,
                more)
