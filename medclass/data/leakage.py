"""Leakage checks across splits: the same patient, the same image, or nearly the same image in two splits.

A model graded on a patient or an image it was trained on scores too well, and nothing downstream can
tell. So before training, :func:`check_leakage` looks for three things, and :func:`enforce` refuses
(by default), warns or stays silent according to ``data.leakage``:

- **patient**: one patient id in two splits. Splits are made per patient; this catches a split file
  or a manifest ``split`` column that was made per image.
- **duplicate**: the same decoded pixels in two splits (:func:`content_hash`, SHA-256 of dtype, shape
  and bytes), whatever the file names or containers.
- **near-duplicate**: two images in different splits whose perceptual hashes differ in at most
  ``near_duplicate_bits`` of 64 bits and which are not exact duplicates: a re-saved JPEG, a resized or
  re-windowed copy, a brightness change.

The manifest code hashes each image once, when it decodes it, and passes the hashes here; this module
never reads files. Copies inside one split are not leaks; they are counted in
``checked['within_split_duplicates']``.

The hashes and the grouping of near-duplicates are :mod:`medclass.data.hashing`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, DataError, did_you_mean
from .hashing import HashNodes, content_hash, hamming, hash_nodes, linked_groups, perceptual_hash

# content_hash, perceptual_hash and hamming live in .hashing and are re-exported for existing imports
__all__ = ["POLICIES", "Leak", "LeakageError", "LeakageReport", "check_leakage", "content_hash", "enforce",
           "hamming", "perceptual_hash"]

logger = logging.getLogger(__name__)

POLICIES = ("refuse", "warn", "off")
_KINDS = ("patient", "duplicate", "near-duplicate")
_LIST_PER_KIND = 20  # offending items listed per kind in a summary
_LIST_PER_SPLIT = 5  # images named per split inside one item


# --- the report -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Leak:
    """One patient, or one group of identical or near-identical images, found in more than one split."""
    kind: str  # "patient", "duplicate" or "near-duplicate"
    splits: tuple[str, ...]  # the splits involved, in the order they first appear in the data
    detail: str  # one line for a person: the patient or images, with their splits, CSV rows and paths
    rows: tuple[int, ...]  # CSV rows of every image involved (header = row 1)
    distance: int | None = None  # near-duplicates: largest pHash distance linking the group; else None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "splits": list(self.splits), "detail": self.detail, "rows": list(self.rows),
                "distance": self.distance}


@dataclass(frozen=True)
class LeakageReport:
    """What :func:`check_leakage` checked and what it found."""

    leaks: tuple[Leak, ...]
    checked: dict = field(default_factory=dict)  # images, splits, patients, which checks ran, thresholds

    @property
    def ok(self) -> bool:
        """True when nothing is shared across splits (checks that could not run count as passed)."""
        return not self.leaks

    def by_kind(self, kind: str) -> tuple[Leak, ...]:
        return tuple(leak for leak in self.leaks if leak.kind == kind)

    def summary(self) -> str:
        """A human report: one line per check, then the offending items (at most 20 listed per kind)."""
        c = self.checked
        splits = ", ".join(f"{name} {count}" for name, count in c.get("splits", {}).items())
        verdict = "nothing shared across splits" if self.ok else f"{_plural(len(self.leaks), 'leak')} found"
        lines = [f"Leakage check of {c.get('images', 0)} images ({splits}): {verdict}."]
        n = {kind: len(self.by_kind(kind)) for kind in _KINDS}

        if not c.get("patient_ids"):
            lines.append("patients: not checked (no patient ids)")
        else:
            found = f"{_plural(n['patient'], 'patient')} in more than one split" if n["patient"] \
                else "none shared across splits"
            missing = c.get("images_without_patient_id", 0)
            extra = f"; {_plural(missing, 'image')} without a patient id not checked" if missing else ""
            lines.append(f"patients: {found} ({_plural(c.get('patients', 0), 'patient')}{extra})")

        if not c.get("content_hashes"):
            lines.append("exact duplicates: not checked (no content hashes)")
        else:
            found = f"{_plural(n['duplicate'], 'group')} of identical images across splits" if n["duplicate"] \
                else "none across splits"
            within = c.get("within_split_duplicates", 0)
            extra = f"; {_plural(within, 'image')} repeating another image of the same split (not a leak)" \
                if within else ""
            lines.append(f"exact duplicates: {found} (identical decoded pixels{extra})")

        if not c.get("perceptual_hashes"):
            lines.append("near-duplicates: not checked (no perceptual hashes)")
        else:
            found = f"{_plural(n['near-duplicate'], 'group')} across splits" if n["near-duplicate"] \
                else "none across splits"
            lines.append(f"near-duplicates: {found} (perceptual hashes within {c.get('near_duplicate_bits')} "
                         f"of 64 bits)")

        for kind in _KINDS:
            items = self.by_kind(kind)
            lines += [f"  {kind}: {leak.detail}" for leak in items[:_LIST_PER_KIND]]
            if len(items) > _LIST_PER_KIND:
                lines.append(f"  ... and {len(items) - _LIST_PER_KIND} more {kind} leaks (all in leakage.json)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-friendly form, for ``leakage.json`` in the run folder."""
        return {"ok": self.ok, "checked": dict(self.checked), "leaks": [leak.to_dict() for leak in self.leaks]}


class LeakageError(DataError):
    """Patients or images are shared across splits and ``data.leakage`` is ``refuse``."""

    def __init__(self, report: LeakageReport, message: str | None = None):
        self.report = report
        super().__init__(message if message is not None else report.summary())


_ADVICE = ("Training stopped: validation and test results would be too good, because the model would be graded "
           "on patients or images it was trained on. Fix the split so each patient and each image is in one "
           "split only (split by patient: data.patient_column; delete or merge the duplicate files), or set "
           "data.leakage=warn (e.g. --set data.leakage=warn) to proceed knowingly; the leaks are then recorded "
           "in leakage.json in the run folder.")


def enforce(report: LeakageReport, policy: str) -> None:
    """Act on a report as ``data.leakage`` says.

    Args:
        report: from :func:`check_leakage`.
        policy: ``"refuse"`` raises :class:`LeakageError` (the summary and what to do) when anything leaks;
            ``"warn"`` logs the summary as a warning; ``"off"`` does nothing.
    """
    if policy not in POLICIES:
        raise ConfigError(f"data.leakage must be one of {', '.join(POLICIES)}; got {policy!r}."
                          f"{did_you_mean(policy, POLICIES)}")
    if policy == "off" or report.ok:
        return
    if policy == "refuse":
        raise LeakageError(report, f"{report.summary()}\n{_ADVICE}")
    logger.warning("%s\nProceeding because data.leakage=warn.", report.summary())


# --- the check --------------------------------------------------------------------------------------

def check_leakage(
    split: Sequence[str],
    *,
    patient_ids: Sequence[str | None] | None = None,
    content_hashes: Sequence[str | None] | None = None,
    perceptual_hashes: Sequence[int | None] | None = None,
    paths: Sequence[str],
    rows: Sequence[int],
    near_duplicate_bits: int = 4,
) -> LeakageReport:
    """Find patients, identical images and near-identical images that appear in more than one split.

    Every argument holds one entry per image, in the same order. An entry of ``None`` (or an empty or NaN
    patient id) leaves that image out of the one check; a whole argument of ``None`` skips the check.

    Args:
        split: the split of each image, e.g. ``"train"``, ``"val"``, ``"test"`` (any names).
        patient_ids: patient (or study) id of each image.
        content_hashes: :func:`content_hash` of each decoded image.
        perceptual_hashes: :func:`perceptual_hash` of each decoded image.
        paths: file of each image, as named in the manifest (for messages).
        rows: CSV row of each image as the user sees it (header = row 1, first image = row 2).
        near_duplicate_bits: images in different splits whose perceptual hashes differ in at most this many
            bits, and whose pixels are not identical, are near-duplicates. 0 keeps identical hashes only.

    Returns:
        A :class:`LeakageReport`; pass it to :func:`enforce`.

    Example:
        >>> report = check_leakage(["train", "test"], patient_ids=["P1", "P1"], content_hashes=None,
        ...                        perceptual_hashes=None, paths=["a.png", "b.png"], rows=[2, 3])
        >>> report.leaks[0].detail
        "patient P1 in train (row 2 'a.png') and test (row 3 'b.png')"
    """
    split = [str(s) for s in split]
    n = len(split)
    for name, values in (("patient_ids", patient_ids), ("content_hashes", content_hashes),
                         ("perceptual_hashes", perceptual_hashes), ("paths", paths), ("rows", rows)):
        if values is not None and len(values) != n:
            raise DataError(f"check_leakage: {name} has {len(values)} entries but split has {n}; every argument "
                            f"needs one entry per image, in the same order.")
    if isinstance(near_duplicate_bits, bool) or not isinstance(near_duplicate_bits, (int, np.integer)) \
            or not 0 <= near_duplicate_bits <= 64:
        raise ConfigError(f"data.near_duplicate_bits must be an integer from 0 to 64 (bits of a 64-bit hash); "
                          f"got {near_duplicate_bits!r}.")
    where = _Where(split, [str(p) for p in paths], [int(r) for r in rows])
    checked: dict = {
        "images": n,
        "splits": {name: split.count(name) for name in where.order},
        "patient_ids": patient_ids is not None,
        "content_hashes": content_hashes is not None,
        "perceptual_hashes": perceptual_hashes is not None,
        "near_duplicate_bits": int(near_duplicate_bits),
    }
    leaks: list[Leak] = []
    if patient_ids is not None:
        leaks += _patient_leaks(patient_ids, where, checked)
    if content_hashes is not None:
        leaks += _duplicate_leaks(content_hashes, where, checked)
    if perceptual_hashes is not None:
        leaks += _near_duplicate_leaks(perceptual_hashes, content_hashes, int(near_duplicate_bits), where, checked)
    return LeakageReport(leaks=tuple(leaks), checked=checked)


class _Where:
    """Names images for messages: ``train (row 3 'a.png', row 8 'b.png') and test (row 41 'c.png')``."""
    def __init__(self, split: list[str], paths: list[str], rows: list[int]):
        self.split, self.paths, self.rows = split, paths, rows
        self.order = list(dict.fromkeys(split))
        self.rank = {name: k for k, name in enumerate(self.order)}

    def splits(self, idx: Sequence[int]) -> tuple[str, ...]:
        return tuple(sorted({self.split[i] for i in idx}, key=self.rank.__getitem__))

    def sorted(self, idx: Sequence[int]) -> list[int]:
        return sorted(idx, key=lambda i: (self.rank[self.split[i]], self.rows[i], i))

    def rows_of(self, idx: Sequence[int]) -> tuple[int, ...]:
        return tuple(self.rows[i] for i in self.sorted(idx))

    def __call__(self, idx: Sequence[int]) -> str:
        per_split: dict[str, list[int]] = defaultdict(list)
        for i in self.sorted(idx):
            per_split[self.split[i]].append(i)
        parts = []
        for name, members in per_split.items():
            named = [f"row {self.rows[i]} {self.paths[i]!r}" for i in members[:_LIST_PER_SPLIT]]
            if len(members) > _LIST_PER_SPLIT:
                named.append(f"and {len(members) - _LIST_PER_SPLIT} more")
            parts.append(f"{name} ({', '.join(named)})")
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _patient_leaks(patient_ids: Sequence[str | None], where: _Where, checked: dict) -> list[Leak]:
    groups: dict[str, list[int]] = defaultdict(list)
    missing = 0
    for i, pid in enumerate(patient_ids):
        if _missing(pid):
            missing += 1
        else:
            groups[str(pid).strip()].append(i)
    checked["patients"] = len(groups)
    checked["images_without_patient_id"] = missing
    return [Leak("patient", where.splits(idx), f"patient {pid} in {where(idx)}", where.rows_of(idx))
            for pid, idx in groups.items() if len(where.splits(idx)) > 1]


def _duplicate_leaks(content_hashes: Sequence[str | None], where: _Where, checked: dict) -> list[Leak]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(content_hashes):
        if h is not None:
            groups[h].append(i)
    leaks, within, examples = [], 0, []
    for idx in groups.values():
        if len(idx) < 2:
            continue
        splits = where.splits(idx)
        extra = len(idx) - len({where.split[i] for i in idx})  # copies beyond the first in each split
        within += extra
        if extra and len(examples) < _LIST_PER_KIND:
            examples.append(list(where.rows_of(idx)))
        if len(splits) > 1:
            leaks.append(Leak("duplicate", splits, f"identical pixels in {where(idx)}", where.rows_of(idx)))
    checked["within_split_duplicates"] = within
    checked["within_split_duplicate_rows"] = examples  # the first groups, as CSV rows
    checked["images_without_content_hash"] = len(content_hashes) - sum(len(g) for g in groups.values())
    return leaks


def _near_duplicate_leaks(perceptual_hashes: Sequence[int | None], content_hashes: Sequence[str | None] | None,
                          max_bits: int, where: _Where, checked: dict) -> list[Leak]:
    have = [i for i, h in enumerate(perceptual_hashes) if h is not None]
    checked["images_without_perceptual_hash"] = len(perceptual_hashes) - len(have)
    try:
        values = np.array([int(perceptual_hashes[i]) for i in have], dtype=np.uint64)
    except (OverflowError, ValueError, TypeError):
        bad = next(i for i in have if not _is_hash(perceptual_hashes[i]))
        raise DataError(f"check_leakage: perceptual hash {perceptual_hashes[bad]!r} of row {where.rows[bad]} "
                        f"({where.paths[bad]!r}) is not a 64-bit hash (an int from 0 to 2**64-1).") from None
    ranks = np.array([where.rank[where.split[i]] for i in have], dtype=np.int64)
    nodes = hash_nodes(values, np.array(have, dtype=np.int64), ranks, len(where.order))
    drop = None if content_hashes is None else _exact_copy_links(nodes, content_hashes)
    hashes = nodes.hashes
    leaks = []
    for group in linked_groups(nodes, max_bits, drop):
        idx = np.concatenate([nodes.members[k] for k in group.nodes]).tolist()
        if len(idx) == 2:
            what = f"near-identical images (pHash distance {group.farthest})"
        else:
            span = f"{group.closest}-{group.farthest}" if group.closest != group.farthest else f"{group.farthest}"
            what = f"{len(idx)} near-identical images (pHash distance {span} between linked images)"
        if (hashes[group.nodes] == 0).any():
            what += ", blank or constant images among them (perceptual hash 0)"
        leaks.append(Leak("near-duplicate", where.splits(idx), f"{what} in {where(idx)}", where.rows_of(idx),
                          distance=group.farthest))
    leaks.sort(key=lambda leak: (leak.rows[0], leak.rows))
    return leaks


def _exact_copy_links(nodes: HashNodes, content_hashes: Sequence[str | None]):
    """A link filter for :func:`~medclass.data.hashing.linked_groups`: links made only of exact duplicates
    (reported as duplicates already) are dropped."""

    def drop(i: np.ndarray, j: np.ndarray, dist: np.ndarray) -> np.ndarray:
        out = np.zeros(len(i), bool)
        same = np.flatnonzero(dist == 0)
        out[same] = [_all_identical(nodes.members[a], nodes.members[b], content_hashes)
                     for a, b in zip(i[same], j[same])]
        return out

    return drop


def _is_hash(value: object) -> bool:
    try:
        return 0 <= int(value) < 2**64  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def _all_identical(a: np.ndarray, b: np.ndarray, content_hashes: Sequence[str | None]) -> bool:
    """True when every image of both nodes has the same (known) content hash: exact copies, not near ones."""
    seen = {content_hashes[k] for k in np.concatenate([a, b])}
    return len(seen) == 1 and None not in seen


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"
