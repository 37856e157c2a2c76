"""Your own images: a manifest CSV (or a folder per class) turned into an :class:`ImageDataset`.

A manifest has one row per image::

    path,label,patient_id,site,sex
    p001/img1.dcm,pneumonia,p001,A,F
    p001/img2.dcm,pneumonia,p001,A,F
    p002/scan.png,normal,p002,B,M

``path`` is relative to ``data.image_root`` (default: the manifest's folder); one label column, or several
0/1 columns for multi-label (``data.label_columns``; an empty cell is a missing label); an optional
``patient_id`` (rows sharing it always land in one split); an optional ``split`` column (train/val/test)
to fix the split yourself; every other column is metadata, reported per subgroup at evaluation.

Loading runs in this order, and every problem names the CSV row and the file:

1. read and validate the CSV (columns, labels, patient ids, duplicates);
2. decode every file (PNG/JPEG/TIFF 8/16 bit, DICOM, NIfTI; :mod:`medclass.data.readers`) and preprocess it
   to a uint8 image at ``data.size`` (:mod:`medclass.transforms.preprocess`), once: the result is cached as a
   memory-mapped array keyed by the files' sizes and modification times and the preprocessing settings, so
   later epochs and later runs never decode again;
3. split by patient (a saved split file, the ``split`` column, or stratified grouped ratios / K folds;
   :mod:`medclass.data.splits`);
4. check for leakage across splits (shared patients, exact and near-duplicate images;
   :mod:`medclass.data.leakage`), refused by default.

Rows that cannot be used are an error listing each one; with ``data.skip_bad`` they are skipped and listed in
``bad_rows.csv`` in the run folder instead, never dropped silently. DICOM header fields (names, dates,
institutions) are never read into anything medclass writes: only pixels, the technical fields needed to
display them, and the patient id the manifest supplies.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DataConfig, config_to_dict, replace
from ..errors import ConfigError, DataError, did_you_mean
from ..utils.io import atomic_write_bytes, atomic_write_json, read_json
from .datasets import ArraySplit, ImageDataset

__all__ = ["BadRow", "Decoded", "Manifest", "ManifestCheck", "check_manifest", "decode_manifest",
           "load_manifest_dataset", "read_manifest"]

log = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
SPLIT_NAMES = ("train", "val", "test")
CACHE_VERSION = 1  # bump when decoding or preprocessing changes what a cached array holds
MAX_LISTED = 10  # bad rows shown in an error message (all of them go to bad_rows.csv)
SUBGROUP_MAX_VALUES = 20  # metadata columns with more distinct values (ids, ages) are not subgroups


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

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: Sequence[int]) -> Manifest:
        keep = list(keep)
        pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
        return Manifest(self.source, self.root, pick(self.rows), pick(self.paths), self.labels[keep], self.classes,
                        self.task, pick(self.patient_ids), pick(self.split),
                        {k: pick(v) for k, v in self.metadata.items()}, list(self.bad), dict(self.facts))

    def strata(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """Labels to stratify splits on, with their names: the labels themselves for classification; for
        regression the value's quintile; for multi-task the first head's class (missing: a stratum of its own)."""
        if self.task == "regression":
            edges = np.unique(np.quantile(self.labels, [0.2, 0.4, 0.6, 0.8]))
            bins = np.digitize(self.labels, edges)
            return bins, tuple(f"quintile {k + 1}" for k in range(int(bins.max()) + 1))
        if self.task == "multitask":
            first = self.labels[:, 0]
            k = self.facts["heads"][0]
            return np.where(first < 0, k, first), (*self.classes[:k], "missing")
        return self.labels, self.classes


# --- 1. the CSV -----------------------------------------------------------------------------------


def read_manifest(cfg: DataConfig) -> Manifest:
    """Read and validate ``cfg.manifest``; bad rows raise, or are set aside with ``cfg.skip_bad``."""
    src = Path(cfg.manifest or "")
    if not cfg.manifest or not src.is_file():
        raise DataError(f"Manifest '{src}' does not exist. Pass a CSV with a '{cfg.path_column}' column and a label "
                        f"column ('{cfg.label_columns[0]}'), e.g. one written by `medclass data import-folder`.")
    root = Path(cfg.image_root) if cfg.image_root else src.parent
    if not root.is_dir():
        raise DataError(f"Image root '{root}' (data.image_root) is not a folder. Point it at the folder the "
                        f"manifest's paths are relative to.")
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
    if cfg.task == "multitask" and len(cfg.label_columns) < 2:
        raise ConfigError(f"data.task=multitask needs one label column per head (data.label_columns), got "
                          f"{len(cfg.label_columns)}: {', '.join(cfg.label_columns)}.")
    if cfg.task in ("regression", "ordinal", "binary", "multiclass") and len(cfg.label_columns) > 1:
        raise ConfigError(f"data.task={cfg.task} takes one label column, but data.label_columns names "
                          f"{len(cfg.label_columns)}. Use data.task=multitask (one head per column) or multilabel "
                          f"(0/1 columns).")
    multilabel = cfg.task == "multilabel" or (len(cfg.label_columns) > 1 and cfg.task != "multitask")
    has_patient = cfg.patient_column in header
    reserved = {cfg.path_column, *cfg.label_columns, cfg.patient_column, SPLIT_COLUMN}
    meta_cols = [h for h in header if h not in reserved and h]
    bad: list[BadRow] = []
    rows, paths, raw_labels, patients, splits = [], [], [], [], []
    metadata: dict[str, list[str]] = {c: [] for c in meta_cols}
    seen: dict[str, int] = {}
    classes = tuple(cfg.classes)
    for i, rec in enumerate(records, start=2):
        if None in rec:  # more cells than header columns
            bad.append(BadRow(i, (rec.get(cfg.path_column) or "").strip(),
                              f"has {len(header) + len(rec[None])} cells but the header has {len(header)} columns"))
            continue
        path = (rec.get(cfg.path_column) or "").strip()
        problem = _row_problem(rec, cfg, multilabel, () if cfg.task == "multitask" else classes, path, seen,
                               has_patient)
        if problem:
            bad.append(BadRow(i, path, problem))
            continue
        seen[path] = i
        rows.append(i)
        paths.append(path)
        raw_labels.append([(rec[c] or "").strip() for c in cfg.label_columns])
        patients.append((rec.get(cfg.patient_column) or "").strip() if has_patient else "")
        splits.append((rec.get(SPLIT_COLUMN) or "").strip().lower())
        for c in meta_cols:
            metadata[c].append((rec.get(c) or "").strip())
    _fail_or_skip(bad, cfg, src, "in the manifest")
    if not rows:
        raise DataError(f"Manifest '{src}': no usable rows are left.")
    facts: dict = {}
    if multilabel:
        classes = tuple(cfg.label_columns)
        labels = np.array([[int(float(v)) if v not in ("", "-1") else -1 for v in r] for r in raw_labels], np.int64)
        task = "multilabel"
    elif cfg.task == "regression":
        classes, task = (cfg.label_columns[0],), "regression"
        labels = np.array([float(r[0]) for r in raw_labels], np.float64)
    elif cfg.task == "multitask":
        labels, classes, heads = _multitask_labels(raw_labels, cfg, src)
        task, facts = "multitask", {"heads": heads, "head_names": list(cfg.label_columns)}
    else:
        values = [r[0] for r in raw_labels]
        if not classes:
            classes = tuple(sorted(set(values), key=natural_key))
        if len(classes) < 2:
            raise DataError(f"Manifest '{src}': the label column '{cfg.label_columns[0]}' holds only one class "
                            f"({classes[0]!r}). A classifier needs at least two; check the column or the file.")
        index = {c: k for k, c in enumerate(classes)}
        labels = np.array([index[v] for v in values], np.int64)
        task = cfg.task or ("binary" if len(classes) == 2 else "multiclass")
        if task == "binary" and len(classes) != 2:
            raise DataError(f"data.task is binary but the manifest has {len(classes)} classes: {', '.join(classes)}.")
    split = splits if any(splits) else None
    if split is not None and not all(splits):
        first = next(r for r, s in zip(rows, splits) if not s)
        raise DataError(f"Manifest '{src}', row {first}: the '{SPLIT_COLUMN}' column is empty here but filled "
                        f"elsewhere. Fill it on every row (train, val or test), or drop the column to split by ratios.")
    if not has_patient:
        log.warning("manifest %s has no '%s' column: each image counts as its own patient. If a patient has "
                    "several images, add patient ids so that they stay in one split.", src, cfg.patient_column)
    return Manifest(src, root, rows, paths, labels, classes, task, patients if has_patient else None, split,
                    metadata, bad, facts)


def _multitask_labels(raw: list[list[str]], cfg: DataConfig, src: Path):
    """One class index per head (column), -1 where the cell is empty; class names ``column:value``."""
    labels = np.full((len(raw), len(cfg.label_columns)), -1, np.int64)
    classes: list[str] = []
    heads: list[int] = []
    for h, col in enumerate(cfg.label_columns):
        values = sorted({r[h] for r in raw if r[h]}, key=natural_key)
        if len(values) < 2:
            raise DataError(f"Manifest '{src}': the label column '{col}' holds {len(values)} class(es); each head "
                            f"of a multi-task model needs at least two.")
        index = {v: k for k, v in enumerate(values)}
        labels[:, h] = [index[r[h]] if r[h] else -1 for r in raw]
        classes += [f"{col}:{v}" for v in values]
        heads.append(len(values))
    return labels, tuple(classes), heads


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


def _row_problem(rec: dict, cfg: DataConfig, multilabel: bool, classes: tuple[str, ...], path: str,
                 seen: dict[str, int], has_patient: bool) -> str | None:
    if not path:
        return f"the '{cfg.path_column}' cell is empty"
    if path in seen:
        return f"'{path}' is listed twice (also row {seen[path]}); each image must appear once"
    values = [(rec.get(c) or "").strip() for c in cfg.label_columns]
    if multilabel:
        wrong = [(c, v) for c, v in zip(cfg.label_columns, values) if v not in ("0", "1", "", "-1", "0.0", "1.0")]
        if wrong:
            got = ", ".join(f"{c}={v!r}" for c, v in wrong)
            return f"multi-label values must be 0, 1 or empty (unknown); got {got}"
    elif cfg.task == "multitask":
        if not any(values):
            return f"every label cell ({', '.join(cfg.label_columns)}) is empty"
    elif cfg.task == "regression":
        try:
            if not math.isfinite(float(values[0])):
                raise ValueError
        except ValueError:
            return f"the value {values[0]!r} in '{cfg.label_columns[0]}' is not a finite number (data.task=regression)"
    else:
        if not values[0]:
            return f"the label cell '{cfg.label_columns[0]}' is empty"
        if classes and values[0] not in classes:
            return (f"label {values[0]!r} is not one of the classes {', '.join(classes)} (data.classes)"
                    f"{did_you_mean(values[0], classes)}")
    if has_patient and not (rec.get(cfg.patient_column) or "").strip() and not (rec.get(SPLIT_COLUMN) or "").strip() \
            and not cfg.split_file:
        return (f"the patient id ('{cfg.patient_column}') is empty; a patient-level split needs one on every row "
                f"(use the image's own name if it is the patient's only image)")
    split = (rec.get(SPLIT_COLUMN) or "").strip().lower()
    if split and split not in SPLIT_NAMES:
        return f"split {split!r} must be train, val or test{did_you_mean(split, SPLIT_NAMES)}"
    return None


def _fail_or_skip(bad: list[BadRow], cfg: DataConfig, src: Path, stage: str) -> None:
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


def natural_key(s: str) -> tuple:
    """Sort key putting ``img2`` before ``img10``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s) if t)


# --- 2. decode once, cached -------------------------------------------------------------------------


@dataclass
class Decoded:
    """Every usable row decoded and preprocessed, with the hashes the leakage checks need."""

    images: np.ndarray  # uint8 (N, size, size, C)
    content_hashes: list[str]
    perceptual_hashes: list[int]
    keep: list[int]  # manifest indices that decoded (the others are in bad)
    bad: list[BadRow]
    seconds: float
    cached: bool
    source_sizes: list[tuple[int, int]]


def decode_manifest(m: Manifest, cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> Decoded:
    """Decode and preprocess every row of ``m`` (or load the cached result of an identical earlier decode)."""
    key, cache_dir = _cache_key(m, cfg), _cache_dir(cfg)
    npy, info = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if cfg.cache and npy.is_file() and info.is_file():
        t0 = time.perf_counter()
        try:
            facts = read_json(info)
            images = np.load(npy, mmap_mode="r")
            if len(images) == len(facts["keep"]):
                log.info("decoded images from the cache %s (%d images)", npy, len(images))
                return Decoded(images, facts["content_hashes"], [int(h) for h in facts["perceptual_hashes"]],
                               facts["keep"], [BadRow(**b) for b in facts["bad"]], time.perf_counter() - t0, True,
                               [tuple(s) for s in facts["source_sizes"]])
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring a damaged decode cache %s (%s); decoding again", npy, e)
    d = _decode_all(m, cfg, progress)
    if cfg.cache and len(d.keep):
        try:
            buf = io.BytesIO()
            np.save(buf, d.images)
            atomic_write_bytes(npy, buf.getvalue())
            atomic_write_json(info, {"keep": d.keep, "content_hashes": d.content_hashes,
                                     "perceptual_hashes": [str(h) for h in d.perceptual_hashes],
                                     "bad": [b.__dict__ for b in d.bad], "source_sizes": d.source_sizes,
                                     "seconds": round(d.seconds, 3)})
            d.images = np.load(npy, mmap_mode="r")
        except OSError as e:
            log.warning("could not write the decode cache in %s (%s); the next run will decode again", cache_dir, e)
    return d


def _decode_all(m: Manifest, cfg: DataConfig, progress: Callable[[int, int], None] | None) -> Decoded:
    from ..transforms.preprocess import output_channels, preprocess, resolve_steps
    from .leakage import content_hash, perceptual_hash
    from .readers import read_file

    resolve_steps(cfg.preprocess)  # contradictory settings fail once, here, not once per file
    if cfg.channels == 1 and output_channels(cfg.preprocess, 1) == 3:
        raise ConfigError("data.channels=1 cannot hold several stacked CT windows (data.preprocess). Use "
                          "data.channels=3, or a single window.")
    frame: str | int = "middle" if cfg.frame == "middle" else int(cfg.frame)
    images, chashes, phashes, keep, bad, sizes, natural = [], [], [], [], [], [], []
    t0 = last = time.perf_counter()
    for i, (row, rel) in enumerate(zip(m.rows, m.paths)):
        full = m.root / rel
        try:
            if not full.is_file():
                raise DataError(f"file '{full}' does not exist" + (" (it is a folder)" if full.is_dir() else ""))
            dec = read_file(full, frame=frame)
            img = preprocess(dec, cfg.preprocess, cfg.size, channels=cfg.channels, where=str(full))
        except DataError as e:
            bad.append(BadRow(row, rel, str(e)))
            continue
        except (ConfigError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - a third-party decoder failing on one file must not stop the rest
            bad.append(BadRow(row, rel, f"could not be decoded ({type(e).__name__}: {str(e)[:200]})"))
            continue
        images.append(img)
        chashes.append(content_hash(dec.pixels))
        phashes.append(perceptual_hash(dec.pixels))
        sizes.append(tuple(int(s) for s in dec.pixels.shape[:2]))
        natural.append((row, rel, dec.pixels.shape[-1]))
        keep.append(i)
        now = time.perf_counter()
        if progress is not None:
            progress(i + 1, len(m))
        elif now - last > 10:
            rate = (i + 1) / (now - t0)
            log.info("decoded %d/%d images (%.0f/s, about %.0fs left)", i + 1, len(m), rate, (len(m) - i - 1) / rate)
            last = now
    if cfg.channels is None and len({img.shape[-1] for img in images}) > 1:
        grey = next(n for n, img in zip(natural, images) if img.shape[-1] == 1)
        colour = next(n for n, img in zip(natural, images) if img.shape[-1] == 3)
        raise DataError(f"Manifest '{m.source}' mixes grey and colour images, e.g. row {grey[0]} ('{grey[1]}') is "
                        f"grey and row {colour[0]} ('{colour[1]}') is colour. Set data.channels=1 to convert all to "
                        f"grey or data.channels=3 to treat all as colour.")
    stacked = np.stack(images) if images else np.zeros((0, cfg.size, cfg.size, cfg.channels or 1), np.uint8)
    return Decoded(stacked, chashes, phashes, keep, bad, time.perf_counter() - t0, False, sizes)


def _cache_dir(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    from .download import default_cache_dir

    return Path(default_cache_dir()) / "decoded"


def _cache_key(m: Manifest, cfg: DataConfig) -> str:
    """Changes when any file (size, modification time), the row order or the preprocessing changes."""
    h = hashlib.sha256()
    settings = {"version": CACHE_VERSION, "size": cfg.size, "channels": cfg.channels, "frame": cfg.frame,
                "preprocess": config_to_dict(cfg.preprocess)}
    h.update(json.dumps(settings, sort_keys=True).encode())
    for rel in m.paths:
        full = m.root / rel
        try:
            st = full.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{full.resolve()}|{stamp}\n".encode())
    return h.hexdigest()[:32]


# --- 3 and 4. split, leakage, dataset --------------------------------------------------------------


@dataclass
class ManifestCheck:
    """What :func:`check_manifest` found: the usable rows, their split, the leakage report and the bad rows."""

    manifest: Manifest
    decoded: Decoded
    split: list[str]
    bad: list[BadRow]
    leakage: object | None  # medclass.data.leakage.LeakageReport

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
        for name in SPLIT_NAMES:
            idx = np.flatnonzero(split == name)
            if m.task == "multilabel":
                per = ", ".join(f"{c} {int((m.labels[idx, k] == 1).sum())}" for k, c in enumerate(m.classes))
            elif m.task == "regression":
                v = m.labels[idx]
                per = f"{m.classes[0]} mean {v.mean():.3g}, sd {v.std():.3g}" if len(v) else "empty"
            elif m.task == "multitask":
                bounds = np.cumsum([0, *m.facts["heads"]])
                per = "; ".join(", ".join(f"{c} {int((m.labels[idx, h] == k).sum())}"
                                          for k, c in enumerate(m.classes[bounds[h]:bounds[h + 1]]))
                                for h in range(len(m.facts["heads"])))
            else:
                per = ", ".join(f"{c} {int((m.labels[idx] == k).sum())}" for k, c in enumerate(m.classes))
            pats = f", {len({groups[i] for i in idx})} patients" if groups is not None else ""
            lines.append(f"  {name:<5} {len(idx):>6} images{pats}: {per}")
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
    from .leakage import check_leakage

    m = read_manifest(replace(cfg, skip_bad=True))
    dec = decode_manifest(m, cfg, progress)
    bad = m.bad + dec.bad
    m = m.subset(dec.keep)
    if not len(m):
        raise DataError(f"Manifest '{m.source}': no image could be read. First problems:\n  "
                        + "\n  ".join(str(b) for b in bad[:MAX_LISTED]))
    split = _assign_splits(m, cfg, split_file)
    report = check_leakage(split, patient_ids=m.patient_ids, content_hashes=dec.content_hashes,
                           perceptual_hashes=dec.perceptual_hashes, paths=m.paths, rows=m.rows,
                           near_duplicate_bits=cfg.near_duplicate_bits)
    return ManifestCheck(m, dec, split, bad, report)


def load_manifest_dataset(cfg: DataConfig, *, split_file: str | os.PathLike | None = None,
                          check_leakage: bool = True,
                          progress: Callable[[int, int], None] | None = None) -> ImageDataset:
    """The :class:`ImageDataset` of a manifest: decoded (cached), split by patient, checked for leakage.

    Args:
        cfg: the data settings (``cfg.manifest`` set).
        split_file: a saved ``split.csv`` to reuse (overrides ``cfg.split_file``).
        check_leakage: run the leakage checks and apply ``cfg.leakage`` (off when re-loading a run's data).
        progress: ``fn(done, total)`` while decoding.
    """
    from .leakage import check_leakage as leakage_report
    from .leakage import enforce
    from .splits import check_split_classes, split_csv_text

    m = read_manifest(cfg)
    dec = decode_manifest(m, cfg, progress)
    _fail_or_skip(dec.bad, cfg, m.source, "(unreadable or invalid images)")
    bad = m.bad + dec.bad
    m = m.subset(dec.keep)
    if not len(m):
        raise DataError(f"Manifest '{m.source}': no image could be read.")
    assignment = _assign_splits(m, cfg, split_file)
    if m.task not in ("regression", "multitask"):
        check_split_classes(assignment, m.labels, m.classes, str(m.source))
    groups = m.patient_ids if m.patient_ids is not None else [f"row-{r}" for r in m.rows]
    files: dict[str, str] = {"split.csv": split_csv_text(m.paths, assignment, groups)}
    facts: dict = {"manifest": str(m.source), "image_root": str(m.root),
                   "preprocess": config_to_dict(cfg.preprocess),
                   "decode": {"seconds": round(dec.seconds, 3), "from_cache": dec.cached,
                              "source_sizes": _size_range(dec.source_sizes)},
                   "patients": len(set(groups)) if m.patient_ids is not None else None,
                   "bad_rows": len(bad), **m.facts}
    if bad:
        files["bad_rows.csv"] = _bad_rows_csv(bad)
    if check_leakage and cfg.leakage != "off":
        report = leakage_report(assignment, patient_ids=m.patient_ids, content_hashes=dec.content_hashes,
                                perceptual_hashes=dec.perceptual_hashes, paths=m.paths, rows=m.rows,
                                near_duplicate_bits=cfg.near_duplicate_bits)
        files["leakage.json"] = json.dumps(report.to_dict(), indent=2) + "\n"
        facts["leakage"] = {"ok": report.ok, "leaks": len(report.leaks), "policy": cfg.leakage}
        enforce(report, cfg.leakage)
    images = np.asarray(dec.images)
    splits = {}
    assignment = np.asarray(assignment)
    for name in SPLIT_NAMES:
        idx = np.flatnonzero(assignment == name)
        meta = {"path": np.array([m.paths[i] for i in idx]), "row": np.array([str(m.rows[i]) for i in idx])}
        if m.patient_ids is not None:
            meta["patient_id"] = np.array([m.patient_ids[i] for i in idx])
        for col, values in m.metadata.items():
            meta[col] = np.array([values[i] for i in idx])
        splits[name] = ArraySplit(images=np.ascontiguousarray(images[idx]), labels=m.labels[idx], meta=meta)
    facts["subgroup_columns"] = [c for c, v in m.metadata.items() if 1 < len(set(v)) <= SUBGROUP_MAX_VALUES]
    return ImageDataset(name=m.source.stem, task=m.task, labels=m.classes, channels=int(images.shape[-1]),
                        size=cfg.size, splits=splits, license="your data", citation="", source=str(m.source),
                        positive_label=1 if m.task == "binary" else None, path=str(m.source), files=files,
                        facts=facts)


def _assign_splits(m: Manifest, cfg: DataConfig, split_file: str | os.PathLike | None) -> list[str]:
    from .splits import apply_split, cross_validation_splits, load_split, split_by_ratios

    split_file = split_file or cfg.split_file
    if split_file:
        return list(apply_split(load_split(split_file), m.paths, str(split_file)))
    groups = m.patient_ids
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
