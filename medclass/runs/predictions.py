"""Saved predictions: one CSV row per image with its label(s) and class probabilities.

Columns: ``index``, ``y`` (or ``y_0 .. y_{L-1}`` for multi-label), ``p_0 .. p_{K-1}``. Metrics can be
recomputed from this file alone, by medclass or by anyone else.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..utils.io import atomic_write_text

__all__ = ["write_predictions", "read_predictions"]


def write_predictions(path: str | os.PathLike, labels: np.ndarray, probs: np.ndarray,
                      extra: dict[str, np.ndarray] | None = None) -> None:
    """Write the predictions CSV; ``extra`` adds per-image columns (file path, patient id, metadata)."""
    import csv

    labels = np.asarray(labels)
    extra = {k: v for k, v in (extra or {}).items() if len(v) == len(labels)}
    y_cols = ["y"] if labels.ndim == 1 else [f"y_{i}" for i in range(labels.shape[1])]
    p_cols = [f"p_{i}" for i in range(probs.shape[1])]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", *y_cols, *p_cols, *extra])
    y2 = labels.reshape(len(labels), -1)
    for i in range(len(labels)):
        w.writerow([str(i), *map(str, y2[i].tolist()), *(f"{v:.8g}" for v in probs[i]),
                    *(str(v[i]) for v in extra.values())])
    atomic_write_text(path, buf.getvalue())


def read_predictions(path: str | os.PathLike, extra_columns: tuple[str, ...] = (), *, values: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(labels, probs, extra)`` from a predictions CSV.

    Labels are the ``y`` column (or ``y_0 .. y_{L-1}``; -1 marks a missing label), probabilities the
    ``p_*`` columns in order; ``extra`` holds the requested other columns (patient id, site...) as strings.
    With ``values`` (regression) labels and predictions are real numbers, not classes and probabilities.
    """
    import csv

    from ..errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Predictions file '{path}' does not exist.")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0]) if rows else []
    y_cols = [c for c in header if c == "y" or (c.startswith("y_") and c[2:].isdigit())]
    p_cols = sorted((c for c in header if c.startswith("p_") and c[2:].isdigit()), key=lambda c: int(c[2:]))
    missing = [c for c in extra_columns if c not in header]
    if not rows or not y_cols or not p_cols or missing:
        raise DataError(f"'{path}' must have a header with a 'y' (or y_0, y_1, ...) column and p_0, p_1, ... "
                        f"probability columns{'; missing columns: ' + ', '.join(missing) if missing else ''}. "
                        f"Found: {', '.join(header) or 'no rows'}.")
    try:
        labels = np.array([[float(r[c]) if values else int(float(r[c])) for c in y_cols] for r in rows],
                          dtype=np.float64 if values else np.int64)
        probs = np.array([[float(r[c]) for c in p_cols] for r in rows], dtype=float)
    except ValueError as e:
        bad = next(i for i, r in enumerate(rows, start=2)
                   if not all(_is_number(r[c]) for c in (*y_cols, *p_cols)))
        raise DataError(f"'{path}', row {bad}: {e}. Labels must be integers and probabilities numbers.") from None
    if not np.isfinite(probs).all() or (not values and (probs.min() < 0 or probs.max() > 1)):
        raise DataError(f"'{path}': probabilities must lie in [0, 1] (found {probs.min():g} to {probs.max():g}).")
    extra = {c: np.array([r[c] for r in rows]) for c in extra_columns}
    return (labels[:, 0] if y_cols == ["y"] else labels), probs, extra


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
