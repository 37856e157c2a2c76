"""Saved predictions: one CSV row per image with its label(s) and class probabilities.

Columns: ``index``, ``y`` (or ``y_0 .. y_{L-1}`` for multi-label), ``p_0 .. p_{K-1}``. Metrics can be
recomputed from this file alone, by medclass or by anyone else.
"""

from __future__ import annotations

import io
import os

import numpy as np

from ..utils.io import atomic_write_text

__all__ = ["write_predictions", "read_predictions"]


def write_predictions(path: str | os.PathLike, labels: np.ndarray, probs: np.ndarray) -> None:
    labels = np.asarray(labels)
    y_cols = ["y"] if labels.ndim == 1 else [f"y_{i}" for i in range(labels.shape[1])]
    p_cols = [f"p_{i}" for i in range(probs.shape[1])]
    buf = io.StringIO()
    buf.write(",".join(["index", *y_cols, *p_cols]) + "\n")
    y2 = labels.reshape(len(labels), -1)
    for i in range(len(labels)):
        buf.write(",".join([str(i), *map(str, y2[i].tolist()), *(f"{v:.8g}" for v in probs[i])]) + "\n")
    atomic_write_text(path, buf.getvalue())


def read_predictions(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, probs)`` from a predictions CSV written by :func:`write_predictions`."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    y_idx = [i for i, c in enumerate(header) if c == "y" or c.startswith("y_")]
    p_idx = [i for i, c in enumerate(header) if c.startswith("p_")]
    labels = data[:, y_idx].astype(np.int64)
    return (labels[:, 0] if header[y_idx[0]] == "y" else labels), data[:, p_idx]
