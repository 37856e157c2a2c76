"""Cases of several images: the manifest's rows grouped by ``case_id`` into one example each.

A chest X-ray study has a frontal and a lateral view, a screening mammogram four, a stack of slices many; the
label belongs to the case, and so must the split, the bootstrap and the metrics. A manifest with a case column
(``data.case_column``, default ``case_id``)::

    path,label,case_id,view,patient_id
    s1/frontal.png,pneumonia,s1,frontal,p01
    s1/lateral.png,pneumonia,s1,lateral,p01

becomes one example per case: a uint8 ``(V, H, W, C)`` stack of its images in the configured view order
(``data.views``; unset: the view column's values sorted; without a view column the rows are slices ordered by
path). Every image is decoded exactly as a single image would be; :func:`group_cases` only checks and stacks:

- every row of a case has the same label, split, patient and (DICOM) modality;
- named views: each case holds each view exactly once (a missing or repeated view is an error naming the case
  and its rows); slices: every case holds the same number of images (the network's input has one shape).

Splits are made on the rows with the case (or, above it, the patient) as the group, so a case never straddles two
splits. The case's ``path`` in predictions is its images' paths joined by ``;``, its ``row`` their CSV rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .manifest import MAX_LISTED, Manifest, natural_key

__all__ = ["CaseTable", "group_cases"]


@dataclass
class CaseTable:
    """Cases built from a manifest's rows: ``images`` uint8 ``(cases, V, H, W, C)``, one label, split and meta
    entry per case, and the view names (``slice 1`` ... for slices)."""

    images: np.ndarray
    labels: np.ndarray
    split: list[str]
    meta: dict[str, np.ndarray]
    views: tuple[str, ...]
    named_views: bool
    n_images: int

    def facts(self) -> dict:
        return {"unit": "case", "views": list(self.views), "view_kind": "views" if self.named_views else "slices",
                "cases": len(self.labels), "images": self.n_images}


def group_cases(m: Manifest, images: np.ndarray, split: Sequence[str], views: Sequence[str] = (),
                modalities: Sequence[str | None] | None = None, *, case_column: str = "case_id",
                view_column: str = "view") -> CaseTable:
    """Group the decoded rows of ``m`` (``images[i]`` is row ``i``, ``split[i]`` its split) by ``m.case_ids``.

    Args:
        views: the configured view order (``data.views``); empty: the view column's values, sorted.
        modalities: each row's DICOM modality (``None`` for other files), to refuse a case mixing modalities.
        case_column, view_column: the columns' names, for messages.
    """
    if m.case_ids is None:
        raise ValueError("group_cases needs a manifest with a case column.")
    src = m.source
    order: dict[str, list[int]] = {}
    for i, c in enumerate(m.case_ids):
        order.setdefault(c, []).append(i)
    named = m.views is not None
    if named:
        view_names = tuple(views) or tuple(sorted(set(m.views), key=natural_key))
    else:
        counts = {len(rows) for rows in order.values()}
        if len(counts) > 1:
            sizes = {c: len(r) for c, r in order.items()}
            lo, hi = min(sizes, key=sizes.get), max(sizes, key=sizes.get)
            raise DataError(f"Manifest '{src}': the cases hold different numbers of images (case {lo!r}: "
                            f"{sizes[lo]}, case {hi!r}: {sizes[hi]}), and without a view column they are slices of "
                            f"one stack, which must all have the same length. Give every case the same number of "
                            f"slices, or name each row's view in a '{view_column}' column (data.view_column).")
        view_names = tuple(f"slice {k + 1}" for k in range(counts.pop()))
    problems: list[str] = []
    picked: list[list[int]] = []
    for case, rows in order.items():
        problem = _case_problem(m, case, rows, split, modalities)
        if problem is None:
            rows, problem = _arrange(m, case, rows, view_names) if named else (
                sorted(rows, key=lambda i: natural_key(m.paths[i])), None)
        if problem:
            problems.append(problem)
        else:
            picked.append(rows)
    if problems:
        listing = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        hint = ""
        if named and not views:
            held = {v: sum(v in {m.views[i] for i in rows} for rows in order.values()) for v in view_names}
            rare = [f"{v!r} is in {k} of {len(order)} cases" for v, k in held.items() if k < len(order)]
            hint = (f" The views were read from the '{view_column}' column ({', '.join(view_names)}) and "
                    f"{'; '.join(rare)}: set data.views to the views every case holds.") if rare else ""
        raise DataError(f"Manifest '{src}': {len(problems)} case(s) cannot be used:\n  {listing}{more}\n"
                        f"Every row of a case ('{case_column}') must share its label, split, patient and modality, "
                        f"and hold each view once.{hint}")
    idx = np.asarray(picked)  # (cases, V)
    first = idx[:, 0]
    meta = {"path": np.array([";".join(m.paths[i] for i in rows) for rows in picked]),
            "row": np.array([";".join(str(m.rows[i]) for i in rows) for rows in picked]),
            "case_id": np.array([m.case_ids[i] for i in first])}
    if m.patient_ids is not None:
        meta["patient_id"] = np.array([m.patient_ids[i] for i in first])
    for col, values in m.metadata.items():
        if all(len({values[i] for i in rows}) == 1 for rows in picked):  # per-image columns are not the case's
            meta[col] = np.array([values[i] for i in first])
    return CaseTable(images=np.ascontiguousarray(np.asarray(images)[idx]), labels=m.labels[first],
                     split=[split[i] for i in first], meta=meta, views=view_names, named_views=named,
                     n_images=int(idx.size))


def _rows(m: Manifest, rows: Sequence[int]) -> str:
    shown = ", ".join(str(m.rows[i]) for i in rows[:6])
    return f"row{'s' if len(rows) > 1 else ''} {shown}{' ...' if len(rows) > 6 else ''}"


def _case_problem(m: Manifest, case: str, rows: list[int], split: Sequence[str],
                  modalities: Sequence[str | None] | None) -> str | None:
    where = f"case {case!r} ({_rows(m, rows)})"
    labels = m.labels[rows]
    if not (labels == labels[:1]).all():
        return f"{where}: its rows have different labels"
    if m.patient_ids is not None and len({m.patient_ids[i] for i in rows}) > 1:
        return f"{where}: its rows belong to different patients ({', '.join(sorted({m.patient_ids[i] for i in rows}))})"
    if len({split[i] for i in rows}) > 1:
        return (f"{where}: its rows fall in different splits ({', '.join(sorted({split[i] for i in rows}))}); a "
                f"case's rows must share one split (fix the split column or split file)")
    if modalities is not None:
        kinds = {modalities[i] for i in rows} - {None}
        if len(kinds) > 1:
            return (f"{where}: its images differ in modality ({', '.join(sorted(kinds))}); a case is one study of "
                    f"one modality")
    return None


def _arrange(m: Manifest, case: str, rows: list[int], views: tuple[str, ...]) -> tuple[list[int], str | None]:
    """The case's rows in ``views`` order, or the problem (a view missing, repeated or not configured)."""
    where = f"case {case!r} ({_rows(m, rows)})"
    by_view: dict[str, list[int]] = {}
    for i in rows:
        by_view.setdefault(m.views[i], []).append(i)
    unknown = sorted(set(by_view) - set(views))
    if unknown:
        return rows, f"{where}: view(s) {', '.join(map(repr, unknown))} not in the view list ({', '.join(views)})"
    repeated = [v for v, r in by_view.items() if len(r) > 1]
    if repeated:
        return rows, f"{where}: view(s) {', '.join(map(repr, repeated))} appear more than once"
    missing = [v for v in views if v not in by_view]
    if missing:
        return rows, f"{where}: lacks the view(s) {', '.join(map(repr, missing))}"
    return [by_view[v][0] for v in views], None
